import type { UseInfiniteQueryResult } from "@tanstack/react-query";
import type { User } from "../api/client";
import { flatten, type MessagePages } from "../data";
import { usePending, type Pending } from "../pending";
import { MessageText } from "../markdown";
import { useScrollback } from "../scrollback";
import { PendingNote } from "./PendingNote";
import { Avatar, Handle } from "./ui";

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
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

export function MessageList({ chatId, me, query }: { chatId: string; me: User; query: UseInfiniteQueryResult<MessagePages> }) {
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

  return (
    // column-reverse keeps the view pinned to the newest message; useScrollback keeps it still
    // when older pages load.
    // Focusable, so the keyboard can scroll it: the skip link lands here.
    <div ref={scroller} id="messages" tabIndex={0} role="region" aria-label="Message history" data-testid="messages"
      className="flex min-h-0 flex-1 flex-col-reverse overflow-y-auto px-4 py-2 [overflow-anchor:none] focus-visible:-outline-offset-2">
      <ol aria-label="Messages" className="flex flex-col">
        {query.isFetchingNextPage && <li className="py-2 text-center text-sm text-zinc-500">Loading older messages…</li>}
        {!query.hasNextPage && query.isSuccess && <li className="py-4 text-center text-sm text-zinc-500">This is the beginning of the chat.</li>}
        {items.map((item, i) => (
          <Row key={item.key} item={item} previous={items[i - 1]} mine={item.author.id === me.id} />
        ))}
      </ol>
    </div>
  );
}

function Row({ item, previous, mine }: { item: Item; previous?: Item; mine: boolean }) {
  const at = new Date(item.created_at);
  const newDay = !previous || new Date(previous.created_at).toDateString() !== at.toDateString();
  const grouped = !newDay && previous?.author.id === item.author.id && at.getTime() - Date.parse(previous.created_at) < GROUP_WINDOW_MS;
  const p = item.pending;
  const tone = !p ? "" : p.status === "failed" || p.status === "refused" ? "text-red-700 dark:text-red-400" : "opacity-60";
  return (
    <>
      {newDay && (
        <li role="separator" className="my-3 flex items-center gap-3 text-xs text-zinc-500">
          <span className="h-px flex-1 bg-zinc-200 dark:bg-zinc-800" />{day.format(at)}<span className="h-px flex-1 bg-zinc-200 dark:bg-zinc-800" />
        </li>
      )}
      <li data-testid={p ? "pending-message" : "message"} data-seq={item.seq} data-status={p?.status}
        className={`flex gap-3 ${grouped ? "" : "mt-3"}`}>
        {grouped ? <span className="w-8 shrink-0" /> : <Avatar name={item.author.display_name} />}
        <div className="min-w-0 flex-1">
          {!grouped && (
            <p className="text-sm">
              <span className={`font-semibold ${mine ? "text-indigo-700 dark:text-indigo-300" : ""}`}>{item.author.display_name}</span>
              <Handle username={item.author.username} />{" "}
              {!p && <time dateTime={item.created_at} className="text-xs text-zinc-500">{time.format(at)}</time>}
            </p>
          )}
          <div className={`whitespace-pre-wrap break-words ${tone}`}><MessageText content={item.content} /></div>
          {p && <PendingNote pending={p} />}
        </div>
      </li>
    </>
  );
}
