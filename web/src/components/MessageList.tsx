import { useEffect, useRef, useState, type RefObject } from "react";
import type { UseInfiniteQueryResult } from "@tanstack/react-query";
import type { Member, Message, User } from "../api/client";
import { excerpt } from "../changes";
import { flatten, type MessagePages } from "../data";
import { usePending } from "../pending";
import { useScrollback } from "../scrollback";
import { useConfirm } from "./ConfirmDialog";
import { JumpToLatest } from "./JumpToLatest";
import { Row, type Item, type RowContext } from "./MessageRow";

/** How long the original of a reply stays highlighted once jumped to. */
const HIGHLIGHT_MS = 2000;

type Props = {
  chatId: string;
  me: User;
  query: UseInfiniteQueryResult<MessagePages>;
  firstUnread?: number;
  members?: Member[];
  /** An admin or the owner of a group: may delete anyone's message. */
  canModerate: boolean;
  onReply: (m: Message) => void;
};

export function MessageList({ chatId, me, query, firstUnread, members, canModerate, onReply }: Props) {
  const messages = flatten(query.data);
  const pending = usePending(chatId);
  // One the history holds already is shown there (its pending copy goes a moment later).
  const inHistory = new Set(messages.map((m) => m.client_msg_id));
  const byId = new Map(messages.map((m) => [m.id, m]));
  const items: Item[] = [
    ...messages.map((m) => ({ key: m.id, author: m.author, content: m.content, created_at: m.created_at, seq: m.seq, message: m, replyTo: quoteOf(m, byId) })),
    // Not sent yet, but mine all the same: my name, grouped with my messages.
    ...pending.filter((p) => !inHistory.has(p.clientMsgId))
      .map((p) => ({ key: p.clientMsgId, author: me, content: p.content, created_at: p.createdAt, pending: p, replyTo: p.replyTo })),
  ];
  const shown = `${messages[0]?.seq}:${messages.length}:${pending.map((p) => p.status).join()}`;
  const scroller = useScrollback(query, shown);
  useShowFirstUnread(scroller, firstUnread);
  const [editing, setEditing] = useState<string | null>(null);
  const [confirmDialog, ask] = useConfirm();
  const [highlighted, jumpTo] = useJump(scroller);
  // One tab stop for every message's actions: the last focused, else the newest message's.
  const [focusedActions, setTabStop] = useState<string>();
  const withActions = messages.filter((m) => !m.deleted_at && !m.notice && m.id !== editing);
  const tabStop = withActions.some((m) => m.id === focusedActions) ? focusedActions : withActions.at(-1)?.id;
  const ctx: RowContext = {
    chatId, me, canModerate, editing, setEditing, onReply, ask, onJump: jumpTo, tabStop, setTabStop,
    names: new Map(members?.map((mb) => [mb.user.id, mb.user.display_name])),
    loaded: new Set(byId.keys()),
  };

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
            <Row key={item.key} item={item} previous={items[i - 1]} ctx={ctx} highlighted={highlighted !== null && highlighted === item.message?.id}
              firstUnread={item.seq !== undefined && item.seq === firstUnread} />
          ))}
        </ol>
      </div>
      <JumpToLatest scroller={scroller} shown={shown} />
      {confirmDialog}
    </div>
  );
}

/** A reply's quote: when the original is loaded, as it reads now (whatever frames were missed). */
function quoteOf(m: Message, byId: Map<string, Message>): Message["reply_to"] {
  const quote = m.reply_to;
  const original = quote && byId.get(quote.id);
  if (!quote || !original) return quote;
  return { ...quote, author: original.author, deleted: !!original.deleted_at, excerpt: original.deleted_at ? "" : excerpt(original.content) };
}

/** Jumping to a loaded message (the original of a reply): into view, focused, and highlighted a
 *  moment. Returns the highlighted message's id and the jump. */
function useJump(scroller: RefObject<HTMLDivElement | null>): [string | null, (id: string) => void] {
  const [highlighted, setHighlighted] = useState<string | null>(null);
  const timer = useRef<number | undefined>(undefined);
  useEffect(() => () => window.clearTimeout(timer.current), []);
  const jump = (id: string) => {
    const row = scroller.current?.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(id)}"]`);
    if (!row) return;
    row.scrollIntoView({ block: "center" });
    row.focus({ preventScroll: true });
    setHighlighted(id);
    window.clearTimeout(timer.current);
    timer.current = window.setTimeout(() => setHighlighted(null), HIGHLIGHT_MS);
  };
  return [highlighted, jump];
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
