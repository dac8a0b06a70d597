// What can be done to a message, shown on hover or keyboard focus: react, reply, and edit and
// delete. One tab stop for the whole history: Left and Right move along a message's toolbar (the
// ARIA toolbar pattern), Up and Down to the previous or next message's, so a long history is not
// hundreds of stops between the list and the composer.
import { useEffect, useLayoutEffect, useRef, useState, type KeyboardEvent } from "react";

/** The reactions on offer. */
export const EMOJI = ["👍", "👎", "❤️", "😂", "😮", "😢", "🎉", "🔥", "👀", "🙏", "💯", "🚀"];

type Action = { label: string; run: () => void; danger?: boolean };

type Props = {
  /** Whose message it is, for the toolbar's name. */
  author: string;
  /** The id of the message's text, which describes the toolbar. */
  describedBy?: string;
  /** This toolbar is the history's one tab stop. */
  tabbable: boolean;
  onFocus: () => void;
  canEdit: boolean;
  canDelete: boolean;
  onReact: (emoji: string) => void;
  onReply: () => void;
  onEdit: () => void;
  onDelete: () => void;
};

const button = "rounded px-2 py-1 text-xs font-medium hover:bg-zinc-100 dark:hover:bg-zinc-800 max-md:min-h-11 max-md:min-w-11";

/** Up and Down: the same button of the previous or next message's toolbar. */
function otherToolbar(event: KeyboardEvent<HTMLElement>) {
  const step = event.key === "ArrowUp" ? -1 : event.key === "ArrowDown" ? 1 : 0;
  const list = event.currentTarget.closest("ol");
  if (!step || !list) return;
  event.preventDefault();
  const toolbars = [...list.querySelectorAll<HTMLElement>('[role="toolbar"]')];
  const next = toolbars[toolbars.indexOf(event.currentTarget) + step];
  if (!next) return;
  const at = [...event.currentTarget.children].indexOf(document.activeElement as Element);
  const buttons = next.querySelectorAll<HTMLButtonElement>(":scope > button");
  (buttons[Math.min(Math.max(at, 0), buttons.length - 1)] ?? buttons[0])?.focus();
}

/** Moves the focus along a row of buttons with the arrow keys, Home and End. */
function arrowKeys(event: KeyboardEvent<HTMLElement>, orientation: "row" | "grid" = "row") {
  const buttons = [...event.currentTarget.querySelectorAll<HTMLButtonElement>(":scope > button")];
  const at = buttons.indexOf(document.activeElement as HTMLButtonElement);
  if (at < 0) return;
  const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: orientation === "grid" ? 6 : 0, ArrowUp: orientation === "grid" ? -6 : 0 }[event.key];
  const next = event.key === "Home" ? 0 : event.key === "End" ? buttons.length - 1 : step ? (at + step + buttons.length) % buttons.length : -1;
  if (next < 0) return;
  event.preventDefault();
  buttons[next].focus();
}

export function MessageActions({ author, describedBy, tabbable, onFocus, canEdit, canDelete, onReact, onReply, onEdit, onDelete }: Props) {
  const [picking, setPicking] = useState(false);
  // The toolbar's one tab stop: the button last focused in it.
  const [current, setCurrent] = useState(0);
  const reactButton = useRef<HTMLButtonElement>(null);
  const actions: Action[] = [
    { label: "React", run: () => setPicking((p) => !p) },
    { label: "Reply", run: onReply },
    ...(canEdit ? [{ label: "Edit", run: onEdit }] : []),
    ...(canDelete ? [{ label: "Delete", run: onDelete, danger: true }] : []),
  ];
  const closePicker = (refocus: boolean) => {
    setPicking(false);
    if (refocus) reactButton.current?.focus();
  };
  return (
    // Shown while the row is hovered or holds the focus, and while the picker is open.
    <div className={`absolute -top-3 right-2 z-10 ${picking ? "opacity-100" : "opacity-0 group-hover:opacity-100 group-focus-within:opacity-100"}`}>
      <div role="toolbar" aria-label={`Actions for ${author}'s message`} aria-describedby={describedBy} data-testid="message-actions"
        onFocus={onFocus} onKeyDown={(e) => {
          arrowKeys(e);
          otherToolbar(e);
        }}
        className="flex gap-0.5 rounded-md border border-zinc-200 bg-white p-0.5 shadow-sm dark:border-zinc-700 dark:bg-zinc-900">
        {actions.map((a, i) => (
          <button key={a.label} ref={i === 0 ? reactButton : undefined} type="button" tabIndex={tabbable && i === Math.min(current, actions.length - 1) ? 0 : -1}
            aria-expanded={i === 0 ? picking : undefined}
            onFocus={() => setCurrent(i)} onClick={a.run}
            className={`${button} ${a.danger ? "text-red-700 dark:text-red-400" : "text-zinc-700 dark:text-zinc-200"}`}>
            {a.label}
          </button>
        ))}
      </div>
      {picking && <EmojiPicker onPick={(emoji) => { closePicker(true); onReact(emoji); }} onClose={closePicker} />}
    </div>
  );
}

/** A small grid of emoji. Escape, a click outside or the focus leaving closes it. */
function EmojiPicker({ onPick, onClose }: { onPick: (emoji: string) => void; onClose: (refocus: boolean) => void }) {
  const box = useRef<HTMLDivElement>(null);
  // Below the toolbar, or above it when the history has no room below (the newest message).
  const [up, setUp] = useState(false);
  useLayoutEffect(() => {
    const el = box.current;
    const scroller = el?.closest("#messages");
    if (el && scroller && el.getBoundingClientRect().bottom > scroller.getBoundingClientRect().bottom) setUp(true);
  }, []);
  const close = useRef(onClose);
  useEffect(() => {
    close.current = onClose;
  });
  useEffect(() => {
    box.current?.querySelector("button")?.focus();
    const outside = (e: PointerEvent) => {
      // The React button toggles the picker itself.
      if (!box.current?.parentElement?.contains(e.target as Node)) close.current(false);
    };
    document.addEventListener("pointerdown", outside);
    return () => document.removeEventListener("pointerdown", outside);
  }, []);
  return (
    <div ref={box} role="group" aria-label="Pick a reaction" data-testid="emoji-picker"
      onKeyDown={(e) => {
        if (e.key === "Escape") {
          // This picker's Escape, not the editor's or the panel's.
          e.preventDefault();
          e.stopPropagation();
          onClose(true);
        } else arrowKeys(e, "grid");
      }}
      onBlur={(e) => {
        if (!e.currentTarget.parentElement?.contains(e.relatedTarget as Node | null) && e.relatedTarget) onClose(false);
      }}
      className={`absolute right-0 ${up ? "bottom-full mb-1" : "top-full mt-1"} grid w-max grid-cols-6 gap-0.5 rounded-lg border border-zinc-200 bg-white p-1 shadow-lg dark:border-zinc-700 dark:bg-zinc-900`}>
      {EMOJI.map((emoji) => (
        <button key={emoji} type="button" aria-label={`React with ${emoji}`} title={emoji} onClick={() => onPick(emoji)}
          className="rounded p-1 text-lg leading-none hover:bg-zinc-100 dark:hover:bg-zinc-800 max-md:min-h-11 max-md:min-w-11">
          {emoji}
        </button>
      ))}
    </div>
  );
}
