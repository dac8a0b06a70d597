// One row of the history: a message (with its reply quote, reactions and actions), a tombstone
// where one was deleted, or one of mine not sent yet.
import { useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { ApiError, type Message, type ReplyTo, type User } from "../api/client";
import { deleteMessage, editMessage, mentions, toggleReaction } from "../changes";
import { MessageText } from "../markdown";
import type { Pending } from "../pending";
import type { Question } from "./ConfirmDialog";
import { MessageActions } from "./MessageActions";
import { MessageEditor } from "./MessageEditor";
import { EditedMark, Reactions, ReplyQuote } from "./MessageParts";
import { PendingNote } from "./PendingNote";
import { Avatar, Handle } from "./ui";

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });
const day = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });

/** A row: a message of the history (`message`), or one of mine not sent yet (`pending`). */
export type Item = {
  key: string;
  author: { id: string; display_name: string; username: string };
  content: string;
  created_at: string;
  seq?: number;
  message?: Message;
  pending?: Pending;
  replyTo?: ReplyTo | null;
};

/** What the list knows that a row needs. */
export type RowContext = {
  chatId: string;
  me: User;
  /** An admin or the owner of a group: may delete anyone's message. */
  canModerate: boolean;
  names: Map<string, string>;
  /** Ids of the messages loaded, which a reply quote can show. */
  loaded: Set<string>;
  editing: string | null;
  /** The message whose toolbar is the history's tab stop. */
  tabStop: string | undefined;
  setTabStop: (id: string) => void;
  setEditing: (id: string | null) => void;
  onReply: (m: Message) => void;
  onJump: (id: string) => void;
  ask: (q: Question) => void;
};

type Props = { item: Item; previous?: Item; firstUnread: boolean; highlighted: boolean; ctx: RowContext };

/** Puts the focus on a message's row, where it is. */
function focusRow(id: string) {
  document.querySelector<HTMLElement>(`[data-message-id="${CSS.escape(id)}"]`)?.focus({ preventScroll: true });
}

/** What went wrong, in a line under the message. */
const problem = (e: unknown, what: string) => `Could not ${what}: ${e instanceof ApiError ? e.message : "Harmony is not reachable"}.`;

export function Row({ item, previous, firstUnread, highlighted, ctx }: Props) {
  const queryClient = useQueryClient();
  const [error, setError] = useState("");
  const { me, chatId } = ctx;
  const m = item.message;
  const mine = item.author.id === me.id;
  const deleted = !!m?.deleted_at;
  const quote = deleted ? null : item.replyTo;
  const at = new Date(item.created_at);
  const newDay = !previous || new Date(previous.created_at).toDateString() !== at.toDateString();
  // A reply shows whose message it is: it starts a group of its own.
  const grouped = !newDay && !firstUnread && !quote && !previous?.message?.notice && previous?.author.id === item.author.id && at.getTime() - Date.parse(previous.created_at) < GROUP_WINDOW_MS;
  const p = item.pending;
  const tone = !p ? "" : p.status === "failed" || p.status === "refused" ? "text-red-700 dark:text-red-400" : "opacity-60";
  const editing = !!m && ctx.editing === m.id;
  const mentioned = !!m && !mine && !deleted && mentions(m, me.id);
  const marks = !m ? [] : [...((m.mentions ?? []).includes(me.id) ? [me.username] : []), ...(m.mentions_everyone ? ["everyone"] : [])];
  // A mention is marked by a bar at the left; other rows keep its place, so they line up.
  const background = highlighted ? `bg-amber-100 dark:bg-amber-900/40 ${mentioned ? "border-amber-400 dark:border-amber-500" : "border-transparent"}`
    : mentioned ? "border-amber-400 bg-amber-50 dark:border-amber-500 dark:bg-amber-950/40"
    : "border-transparent hover:bg-zinc-50 dark:hover:bg-zinc-900/60";

  const react = (emoji: string, on: boolean) => {
    if (!m) return;
    setError("");
    toggleReaction(queryClient, chatId, m.id, emoji, me.id, on).catch((e: unknown) => setError(problem(e, "react")));
  };
  const remove = () => ctx.ask({
    title: "Delete this message?",
    body: mine ? "It will be gone for everyone in this chat. This cannot be undone."
      : `${item.author.display_name}'s message will be gone for everyone in this chat. This cannot be undone.`,
    confirm: "Delete",
    onConfirm: () => {
      if (!m) return;
      // The actions go with the message: the focus stays on its row (the tombstone).
      deleteMessage(queryClient, chatId, m.id, me.id)
        .then(() => focusRow(m.id), (e: unknown) => setError(problem(e, "delete the message")));
    },
  });

  // A timeline line about the chat (a member added or removed, a rename): the server words it.
  if (m?.notice) {
    return (
      <li data-testid="timeline-line" data-message-id={m.id} className="py-1 text-center text-xs text-zinc-600 dark:text-zinc-400">
        {m.content} · <time dateTime={m.created_at}>{at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</time>
      </li>
    );
  }
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
      <li data-testid={p ? "pending-message" : "message"} data-seq={item.seq} data-status={p?.status} data-message-id={m?.id}
        data-mentioned={mentioned || undefined} data-highlighted={highlighted || undefined} tabIndex={m ? -1 : undefined}
        className={`group relative -mx-2 flex gap-3 rounded border-l-2 px-2 transition-colors duration-500 ${grouped ? "" : "mt-3"} ${background}`}>
        {grouped ? (
          // The time of a message under another's header: shown on hover, and while the message
          // or its actions have the focus, so the keyboard learns it too.
          <span className="w-8 shrink-0 pt-1 text-right leading-none">
            {!p && <time dateTime={item.created_at} title={full.format(at)} data-testid="grouped-time"
              className="invisible text-[10px] text-zinc-600 group-focus-within:visible group-hover:visible dark:text-zinc-400">{time.format(at)}</time>}
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
          {quote && <ReplyQuote quote={quote} onJump={m && ctx.loaded.has(quote.id) ? () => ctx.onJump(quote.id) : undefined} />}
          {deleted ? (
            <p data-testid="tombstone" className="text-sm text-zinc-600 italic dark:text-zinc-400">This message was deleted</p>
          ) : editing && m ? (
            <MessageEditor initial={m.content} onSave={(content) => editMessage(queryClient, chatId, m.id, content)}
              onDone={() => {
                ctx.setEditing(null);
                // Back to the message: the keyboard carries on from it.
                focusRow(m.id);
              }} />
          ) : (
            <div id={m && `text-${m.id}`} className={`whitespace-pre-wrap break-words [&>p:last-of-type]:inline ${tone}`}>
              <MessageText content={item.content} marks={marks} />
              {m?.edited_at && <EditedMark at={m.edited_at} />}
            </div>
          )}
          {m && !deleted && <Reactions reactions={m.reactions ?? []} meId={me.id} names={ctx.names} onToggle={react} />}
          {p && <PendingNote pending={p} />}
          {error && <p role="alert" className="text-xs text-red-700 dark:text-red-400">{error}</p>}
        </div>
        {m && !deleted && !editing && (
          <MessageActions author={item.author.display_name} describedBy={`text-${m.id}`} tabbable={ctx.tabStop === m.id}
            onFocus={() => ctx.setTabStop(m.id)} canEdit={mine} canDelete={mine || ctx.canModerate}
            onReact={(emoji) => react(emoji, !(m.reactions ?? []).some((r) => r.emoji === emoji && r.user_ids.includes(me.id)))}
            onReply={() => ctx.onReply(m)} onEdit={() => ctx.setEditing(m.id)} onDelete={remove} />
        )}
      </li>
    </>
  );
}
