import { useEffect, useRef, useState, type FormEvent, type KeyboardEvent } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { live } from "../live";
import { pendingStore } from "../pending";
import { send } from "../send";
import { Button } from "./ui";

/** The server's limit on a message, in characters after trimming. */
const MAX_CHARS = 4000;
/** From here on the composer shows how many characters are left. */
const COUNT_FROM = 3500;

export function Composer({ chatId }: { chatId: string }) {
  const [text, setText] = useState("");
  const queryClient = useQueryClient();
  const length = [...text.trim()].length;
  const tooLong = length > MAX_CHARS;
  const input = useRef<HTMLTextAreaElement>(null);

  // A message the server refused comes back here to be fixed, before anything typed since.
  useEffect(() => pendingStore.onEdit((chat, content) => {
    if (chat !== chatId) return;
    setText((t) => (t.trim() ? `${content}\n${t}` : content));
    input.current?.focus();
  }), [chatId]);

  function submit(event?: FormEvent) {
    event?.preventDefault();
    const content = text.trim();
    // Over the limit the text stays, so it can be shortened: nothing is sent or lost.
    if (!content || tooLong) return;
    send(queryClient, chatId, content);
    live.typingDone(chatId);
    setText("");
  }

  function onKey(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === "Enter" && !event.shiftKey) submit(event);
  }

  return (
    <form onSubmit={submit} className="flex items-end gap-2 border-t border-zinc-200 p-3 dark:border-zinc-800">
      <label htmlFor="composer" className="sr-only">Message</label>
      <textarea ref={input} id="composer" rows={1} value={text} onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim()) live.typing(chatId);
        }} onKeyDown={onKey}
        placeholder="Write a message" title="Enter sends; Shift+Enter starts a new line"
        className="max-h-40 min-h-10 flex-1 resize-y rounded-md border border-zinc-300 bg-white px-3 py-2 dark:border-zinc-700 dark:bg-zinc-900" />
      {length >= COUNT_FROM && (
        <span data-testid="composer-count" aria-live="polite"
          className={`self-center text-xs tabular-nums ${tooLong ? "font-semibold text-red-600 dark:text-red-400" : "text-zinc-600 dark:text-zinc-400"}`}>
          {length} / {MAX_CHARS}
        </span>
      )}
      <Button type="submit" disabled={!text.trim() || tooLong}>Send</Button>
    </form>
  );
}
