import { useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent, type RefObject } from "react";
import { useQueryClient } from "@tanstack/react-query";
import type { Message } from "../api/client";
import { excerpt } from "../changes";
import { loadDraft, saveDraft } from "../drafts";
import { live } from "../live";
import { pendingStore } from "../pending";
import { send } from "../send";
import { useMentionPicker } from "./MentionPicker";
import { Button, tap } from "./ui";

/** The server's limit on a message, in characters after trimming. */
export const MAX_CHARS = 4000;
/** From here on the composer shows how many characters are left. */
const COUNT_FROM = 3500;
/** The composer grows with its text up to this share of the window, then scrolls. */
const MAX_HEIGHT = 0.4;

/** Puts the focus in the open chat's composer: for a chat chosen again while it is open. */
export function focusComposer(): void {
  document.getElementById("composer")?.focus();
}

type Props = {
  chatId: string;
  meId: string;
  /** The message being answered (the quote bar above the composer), if any. */
  replyTo?: Message;
  onCancelReply: () => void;
  /** Whether the caller may mention @everyone (an admin or the owner of a group). */
  canMentionEveryone: boolean;
};

export function Composer({ chatId, meId, replyTo, onCancelReply, canMentionEveryone }: Props) {
  // The draft left in this chat, if any: a chat switch or a reload loses nothing.
  const [text, setText] = useState(() => loadDraft(meId, chatId));
  const [caret, setCaret] = useState(0);
  // Where the caret goes once the text a mention changed is in the textarea.
  const placeCaret = useRef<number | null>(null);
  const queryClient = useQueryClient();
  const length = [...text.trim()].length;
  const tooLong = length > MAX_CHARS;
  const input = useRef<HTMLTextAreaElement>(null);
  useEffect(() => saveDraft(meId, chatId, text), [meId, chatId, text]);
  useAutoHeight(input, text);
  const mention = useMentionPicker(chatId, meId, text, caret, canMentionEveryone, (next, at) => {
    placeCaret.current = at;
    setText(next);
    setCaret(at);
  });
  useLayoutEffect(() => {
    const at = placeCaret.current;
    if (at === null || !input.current) return;
    placeCaret.current = null;
    input.current.setSelectionRange(at, at);
  }, [text]);

  // A chat that opens is ready to be written in. Not on a touch screen, where the keyboard
  // would come up over the messages.
  useEffect(() => {
    if (!matchMedia("(pointer: coarse)").matches) input.current?.focus();
  }, []);

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
    // As it reads now: the server quotes the same in the frame it sends.
    const quote = replyTo && { id: replyTo.id, author: replyTo.author, excerpt: excerpt(replyTo.content), deleted: false };
    send(queryClient, chatId, content, quote);
    live.typingDone(chatId);
    // The draft goes with it, and so does the reply.
    setText("");
    setCaret(0);
    if (replyTo) onCancelReply();
  }

  function onKey(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (mention.onKeyDown(event)) return;
    // Enter while an input method composes a word picks the word; it sends nothing.
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) submit(event);
    else if (event.key === "Escape" && replyTo) {
      // Escape takes the reply back; the text stays.
      event.preventDefault();
      event.stopPropagation();
      onCancelReply();
    }
  }

  return (
    <div className="relative border-t border-zinc-200 dark:border-zinc-800">
      {mention.list}
      {replyTo && <ReplyBar message={replyTo} onCancel={() => { onCancelReply(); input.current?.focus(); }} />}
      <form onSubmit={submit} className="flex items-end gap-2 p-3">
        <label htmlFor="composer" className="sr-only">Message</label>
        <textarea ref={input} id="composer" rows={1} value={text} onChange={(e) => {
            setText(e.target.value);
            setCaret(e.target.selectionStart);
            if (e.target.value.trim()) live.typing(chatId);
          }} onKeyDown={onKey} onSelect={(e) => setCaret(e.currentTarget.selectionStart)}
          onBlur={() => setCaret(-1)} {...mention.inputProps} aria-describedby={replyTo ? "reply-bar-text" : undefined}
          placeholder="Write a message" title="Enter sends; Shift+Enter starts a new line"
          className="min-h-10 flex-1 resize-none rounded-md border border-zinc-300 bg-white px-3 py-2 dark:border-zinc-700 dark:bg-zinc-900" />
        {length >= COUNT_FROM && (
          <span data-testid="composer-count" aria-live="polite"
            className={`self-center text-xs tabular-nums ${tooLong ? "font-semibold text-red-600 dark:text-red-400" : "text-zinc-600 dark:text-zinc-400"}`}>
            {length} / {MAX_CHARS}
          </span>
        )}
        <Button type="submit" disabled={!text.trim() || tooLong}>Send</Button>
      </form>
    </div>
  );
}

/** Above the composer while replying: who and what is answered, and a way out (or Escape). */
function ReplyBar({ message, onCancel }: { message: Message; onCancel: () => void }) {
  return (
    <div data-testid="reply-bar" className="flex items-center gap-2 px-3 pt-2 text-sm">
      <span aria-hidden className="text-zinc-600 dark:text-zinc-400">↪</span>
      <p id="reply-bar-text" className="min-w-0 flex-1 truncate text-zinc-700 dark:text-zinc-300">
        Replying to <span className="font-semibold">{message.author.display_name}</span>
        <span className="text-zinc-600 dark:text-zinc-400">: {excerpt(message.content)}</span>
      </p>
      <button type="button" aria-label="Cancel reply" title="Cancel reply (Escape)" onClick={onCancel}
        className={`${tap} rounded-md px-2 py-0.5 text-zinc-700 hover:bg-zinc-100 dark:text-zinc-200 dark:hover:bg-zinc-800`}>✕</button>
    </div>
  );
}

/** Fits the textarea to its text, up to MAX_HEIGHT of the window; past that it scrolls. */
export function useAutoHeight(ref: RefObject<HTMLTextAreaElement | null>, text: string) {
  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const fit = () => {
      el.style.height = "auto";
      const max = window.innerHeight * MAX_HEIGHT;
      // scrollHeight leaves out the borders, which the box's height (border-box) counts.
      const wanted = el.scrollHeight + el.offsetHeight - el.clientHeight;
      el.style.height = `${Math.min(wanted, max)}px`;
      el.style.overflowY = wanted > max ? "auto" : "hidden";
    };
    fit();
    window.addEventListener("resize", fit);
    return () => window.removeEventListener("resize", fit);
  }, [ref, text]);
}
