import { useEffect, useRef } from "react";
import { useQueryClient, type UseInfiniteQueryResult } from "@tanstack/react-query";
import type { Message, User } from "../api/client";
import { flatten, type MessagePages } from "../data";
import { usePending, type Pending } from "../pending";
import { deliver } from "../send";
import { Avatar, Handle } from "./ui";

const GROUP_WINDOW_MS = 5 * 60 * 1000;
const time = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const day = new Intl.DateTimeFormat(undefined, { weekday: "long", year: "numeric", month: "long", day: "numeric" });

export function MessageList({ chatId, me, query }: { chatId: string; me: User; query: UseInfiniteQueryResult<MessagePages> }) {
  const messages = flatten(query.data);
  const pending = usePending(chatId);
  const top = useRef<HTMLDivElement>(null);
  const scroller = useRef<HTMLDivElement>(null);

  // Infinite scroll: when the top comes into view, load the page before it.
  useEffect(() => {
    const node = top.current;
    if (!node) return;
    const observer = new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && query.hasNextPage && !query.isFetchingNextPage) void query.fetchNextPage();
    }, { root: scroller.current });
    observer.observe(node);
    return () => observer.disconnect();
  }, [query]);

  return (
    // column-reverse keeps the view pinned to the newest message and stable when older pages load.
    <div ref={scroller} className="flex min-h-0 flex-1 flex-col-reverse overflow-y-auto px-4 py-2" data-testid="messages">
      <ol aria-label="Messages" className="flex flex-col">
        <div ref={top} className="h-1" />
        {query.isFetchingNextPage && <li className="py-2 text-center text-sm text-zinc-500">Loading older messages…</li>}
        {!query.hasNextPage && query.isSuccess && <li className="py-4 text-center text-sm text-zinc-500">This is the beginning of the chat.</li>}
        {messages.map((m, i) => (
          <Row key={m.id} message={m} previous={messages[i - 1]} mine={m.author.id === me.id} />
        ))}
        {pending.map((p) => (
          <li key={p.clientMsgId} data-testid="pending-message" className="ml-11 py-0.5">
            <p className={`whitespace-pre-wrap break-words ${p.failed ? "text-red-700 dark:text-red-400" : "opacity-60"}`}>{p.content}</p>
            {p.failed ? <FailedNote pending={p} /> : <span className="text-xs text-zinc-500">Sending…</span>}
          </li>
        ))}
      </ol>
    </div>
  );
}

function Row({ message, previous, mine }: { message: Message; previous?: Message; mine: boolean }) {
  const at = new Date(message.created_at);
  const newDay = !previous || new Date(previous.created_at).toDateString() !== at.toDateString();
  const grouped = !newDay && previous?.author.id === message.author.id && at.getTime() - Date.parse(previous.created_at) < GROUP_WINDOW_MS;
  return (
    <>
      {newDay && (
        <li role="separator" className="my-3 flex items-center gap-3 text-xs text-zinc-500">
          <span className="h-px flex-1 bg-zinc-200 dark:bg-zinc-800" />{day.format(at)}<span className="h-px flex-1 bg-zinc-200 dark:bg-zinc-800" />
        </li>
      )}
      <li data-testid="message" data-seq={message.seq} className={`flex gap-3 ${grouped ? "" : "mt-3"}`}>
        {grouped ? <span className="w-8 shrink-0" /> : <Avatar name={message.author.display_name} />}
        <div className="min-w-0 flex-1">
          {!grouped && (
            <p className="text-sm">
              <span className={`font-semibold ${mine ? "text-indigo-700 dark:text-indigo-300" : ""}`}>{message.author.display_name}</span>
              <Handle username={message.author.username} />{" "}
              <time dateTime={message.created_at} className="text-xs text-zinc-500">{time.format(at)}</time>
            </p>
          )}
          <p className="whitespace-pre-wrap break-words">{message.content}</p>
        </div>
      </li>
    </>
  );
}

function FailedNote({ pending }: { pending: Pending }) {
  const queryClient = useQueryClient();
  return (
    <span role="alert" className="text-xs text-red-700 dark:text-red-400">
      Failed{pending.error ? `: ${pending.error}` : ""}.{" "}
      <button className="font-semibold underline" onClick={() => void deliver(queryClient, pending)}>Retry</button>
    </span>
  );
}
