import { useEffect, useRef, type RefObject } from "react";
import type { UseInfiniteQueryResult } from "@tanstack/react-query";
import type { User } from "../api/client";
import { flatten, type MessagePages } from "../data";
import { usePending, type Pending } from "../pending";
import { MessageText } from "../markdown";
import { useScrollback } from "../scrollback";
import { JumpToLatest } from "./JumpToLatest";
import { PendingNote } from "./PendingNote";
import { Avatar, Handle } from "./ui";

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const day = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });

/** A row: a message of the history, or one of mine not sent yet (`pending`). */
type Item = {
  key: string;
  author: { id: string; display_name: string; username: string };
  content: string;
  created_at: string;
  seq?: number;
  pending?: Pending;
};

type Props = { chatId: string; me: User; query: UseInfiniteQueryResult<MessagePages>; firstUnread?: number };

export function MessageList({ chatId, me, query, firstUnread }: Props) {
  const messages = flatten(query.data);
  const pending = usePending(chatId);
  // One the history holds already is shown there (its pending copy goes a moment later).
  const inHistory = new Set(messages.map((m) => m.client_msg_id));
  const items: Item[] = [
    ...messages.map((m) => ({ key: m.id, author: m.author, content: m.content, created_at: m.created_at, seq: m.seq })),
    // Not sent yet, but mine all the same: my name, grouped with my messages.
    ...pending.filter((p) => !inHistory.has(p.clientMsgId))
      .map((p) => ({ key: p.clientMsgId, author: me, content: p.content, created_at: p.createdAt, pending: p })),
  ];
  const shown = `${messages[0]?.seq}:${messages.length}:${pending.map((p) => p.status).join()}`;
  const scroller = useScrollback(query, shown);
  useShowFirstUnread(scroller, firstUnread);

  return (
    // The scroller, and the "Jump to latest" pill over it. column-reverse keeps the view pinned
    // to the newest message; useScrollback keeps it still when older pages load. Focusable, so
    // the keyboard can scroll it: the skip link lands here.
    <div className="relative flex min-h-0 flex-1 flex-col">
      <div ref={scroller} id="messages" tabIndex={0} role="region" aria-label="Message history" data-testid="messages"
        className="flex min-h-0 flex-1 flex-col-reverse overflow-y-auto px-4 py-2 [overflow-anchor:none] focus-visible:-outline-offset-2">
        <ol aria-label="Messages" className="flex flex-col">
          {query.isFetchingNextPage && <li className="py-2 text-center text-sm text-zinc-600 dark:text-zinc-400">Loading older messages…</li>}
          {!query.hasNextPage && query.isSuccess && <li className="py-4 text-center text-sm text-zinc-600 dark:text-zinc-400">This is the beginning of the chat.</li>}
          {items.map((item, i) => (
            <Row key={item.key} item={item} previous={items[i - 1]} mine={item.author.id === me.id} firstUnread={item.seq !== undefined && item.seq === firstUnread} />
          ))}
        </ol>
      </div>
      <JumpToLatest scroller={scroller} shown={shown} />
    </div>
  );
}

/** Opened with more unread than fits: the view starts at the "New messages" line. */
function useShowFirstUnread(scroller: RefObject<HTMLDivElement | null>, firstUnread: number | undefined) {
  const done = useRef(false);
  useEffect(() => {
    const el = scroller.current;
    const line = el?.querySelector<HTMLElement>('[data-testid="new-messages"]');
    if (done.current || !el || !line) return;
    done.current = true;
    const above = line.getBoundingClientRect().top - el.getBoundingClientRect().top;
    if (above < 0) el.scrollTop += above;
  }, [scroller, firstUnread]);
}

function Row({ item, previous, mine, firstUnread }: { item: Item; previous?: Item; mine: boolean; firstUnread: boolean }) {
  const at = new Date(item.created_at);
  const newDay = !previous || new Date(previous.created_at).toDateString() !== at.toDateString();
  const grouped = !newDay && !firstUnread && previous?.author.id === item.author.id && at.getTime() - Date.parse(previous.created_at) < GROUP_WINDOW_MS;
  const p = item.pending;
  const tone = !p ? "" : p.status === "failed" || p.status === "refused" ? "text-red-700 dark:text-red-400" : "opacity-60";
  return (
    <>
      {newDay && (
        <li className="my-3 flex items-center gap-3 text-xs text-zinc-600 dark:text-zinc-400">
          <span aria-hidden className="h-px flex-1 bg-zinc-200 dark:bg-zinc-800" />{day.format(at)}<span aria-hidden className="h-px flex-1 bg-zinc-200 dark:bg-zinc-800" />
        </li>
      )}
      {firstUnread && (
        <li data-testid="new-messages" className="my-2 flex items-center gap-3 text-xs font-semibold text-red-700 dark:text-red-400">
          <span aria-hidden className="h-px flex-1 bg-red-300 dark:bg-red-800" />New messages<span aria-hidden className="h-px flex-1 bg-red-300 dark:bg-red-800" />
        </li>
      )}
      <li data-testid={p ? "pending-message" : "message"} data-seq={item.seq} data-status={p?.status}
        className={`group flex gap-3 ${grouped ? "" : "mt-3"}`}>
        {grouped ? (
          // The time of a message under another's header: shown on hover.
          <span className="w-8 shrink-0 pt-1 text-right">
            {!p && <time dateTime={item.created_at} title={full.format(at)} data-testid="grouped-time"
              className="invisible text-[10px] text-zinc-600 group-hover:visible dark:text-zinc-400">{time.format(at)}</time>}
          </span>
        ) : <Avatar name={item.author.display_name} />}
        <div className="min-w-0 flex-1">
          {!grouped && (
            <p className="text-sm">
              <span className={`font-semibold ${mine ? "text-indigo-700 dark:text-indigo-300" : ""}`}>{item.author.display_name}</span>
              <Handle username={item.author.username} />{" "}
              {!p && <time dateTime={item.created_at} title={full.format(at)} className="text-xs text-zinc-600 dark:text-zinc-400">{time.format(at)}</time>}
            </p>
          )}
          <div className={`whitespace-pre-wrap break-words ${tone}`}><MessageText content={item.content} /></div>
          {p && <PendingNote pending={p} />}
        </div>
      </li>
    </>
  );
}
