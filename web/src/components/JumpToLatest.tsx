import { useEffect, useState, type RefObject } from "react";

/** Further than this (px) from the newest message, the view is "scrolled up". */
const AWAY_PX = 150;

/** How far the bottom of the scroller's list is below its visible bottom. */
function belowView(el: HTMLElement): number {
  const list = el.firstElementChild;
  return list ? list.getBoundingClientRect().bottom - el.getBoundingClientRect().bottom : 0;
}

/** A pill over the bottom of the history while it is scrolled up (by hand, or by messages
 *  arriving below); it brings the newest message back into view. `shown` changes with the rows. */
export function JumpToLatest({ scroller, shown }: { scroller: RefObject<HTMLDivElement | null>; shown: string }) {
  const [away, setAway] = useState(false);
  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const update = () => setAway(belowView(el) > AWAY_PX);
    update();
    el.addEventListener("scroll", update, { passive: true });
    return () => el.removeEventListener("scroll", update);
  }, [scroller, shown]);
  if (!away) return null;
  return (
    <button type="button" data-testid="jump-to-latest"
      onClick={() => {
        const el = scroller.current;
        if (!el) return;
        el.scrollTop += belowView(el);
        // The pill goes: the keyboard carries on from the history itself.
        el.focus({ preventScroll: true });
        setAway(false);
      }}
      className="absolute bottom-3 left-1/2 z-10 -translate-x-1/2 rounded-full bg-indigo-600 px-4 py-1.5 max-md:min-h-11 text-sm font-medium text-white shadow-lg hover:bg-indigo-500">
      Jump to latest ↓
    </button>
  );
}
