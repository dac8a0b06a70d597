// Scrolling back through a chat: the page before the loaded history is asked for when the top
// comes near, one request at a time, and goes in above without moving what is on screen.
import { useCallback, useEffect, useLayoutEffect, useRef } from "react";
import type { UseInfiniteQueryResult } from "@tanstack/react-query";
import type { MessagePages } from "./data";

/** How near the top (px) the older page is asked for, so it is often there before the top is. */
const PRELOAD_PX = 300;

/** The message at the top of the view, and how far below the top its top is. */
type Anchor = { seq: string; offset: number };

/** For a scroller (column-reverse) holding one list of rows with `data-seq`; `shown` changes
 *  whenever the rows do. Returns the scroller's ref. */
export function useScrollback(query: UseInfiniteQueryResult<MessagePages>, shown: string) {
  const scroller = useRef<HTMLDivElement>(null);
  const anchor = useRef<Anchor | null>(null);
  const loading = useRef(false);
  const latest = useRef(query);
  useLayoutEffect(() => {
    latest.current = query;
  });

  /** Notes the anchor; none at the bottom, where the view follows new messages. */
  const measure = useCallback(() => {
    const el = scroller.current;
    const list = el?.firstElementChild;
    if (!el || !list) return;
    const box = el.getBoundingClientRect();
    const rows = el.querySelectorAll<HTMLElement>("[data-seq]");
    if (list.getBoundingClientRect().bottom <= box.bottom + 16 || rows.length === 0) {
      anchor.current = null;
      return;
    }
    // The first row whose bottom is below the top: rows are in order, so a binary search.
    let [lo, hi] = [0, rows.length - 1];
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (rows[mid].getBoundingClientRect().bottom > box.top) hi = mid;
      else lo = mid + 1;
    }
    anchor.current = { seq: rows[lo].dataset.seq ?? "", offset: rows[lo].getBoundingClientRect().top - box.top };
  }, []);

  const loadOlder = useCallback(() => {
    const el = scroller.current;
    const q = latest.current;
    // One request at a time: a wheel turning on, or a burst of scroll events, asks no more.
    if (!el?.firstElementChild || loading.current || !q.hasNextPage || q.isFetching) return;
    if (el.firstElementChild.getBoundingClientRect().top < el.getBoundingClientRect().top - PRELOAD_PX) return;
    loading.current = true;
    measure();
    void q.fetchNextPage({ cancelRefetch: false });
  }, [measure]);

  // Rows changed: the anchor goes back where it was (browsers keep a column-reverse view still
  // when rows go in above, but not all of them, and not when rows go in below). The native
  // scroll anchoring is off: it can pick the loading row above the new page, and follow it up.
  useLayoutEffect(() => {
    const el = scroller.current;
    const a = anchor.current;
    const row = a && el?.querySelector<HTMLElement>(`[data-seq="${a.seq}"]`);
    if (el && a && row) {
      const delta = row.getBoundingClientRect().top - el.getBoundingClientRect().top - a.offset;
      if (Math.abs(delta) >= 1) el.scrollTop += delta;
    }
    if (!query.isFetchingNextPage) loading.current = false;
  }, [shown, query.isFetchingNextPage]);

  // After a page (or at first), the top may still be in view: a short page, a tall window.
  useEffect(() => {
    if (!query.isFetchingNextPage) loadOlder();
  }, [shown, query.isFetchingNextPage, query.hasNextPage, loadOlder]);

  useEffect(() => {
    const el = scroller.current;
    if (!el) return;
    const onScroll = () => {
      measure();
      loadOlder();
    };
    el.addEventListener("scroll", onScroll, { passive: true });
    return () => el.removeEventListener("scroll", onScroll);
  }, [measure, loadOlder]);

  return scroller;
}
