import { useEffect, useLayoutEffect, useRef, useState, type FormEvent, type KeyboardEvent, type RefObject } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { loadDraft, saveDraft } from "../drafts";
import { live } from "../live";
import { pendingStore } from "../pending";
import { send } from "../send";
import { Button } from "./ui";

/** The server's limit on a message, in characters after trimming. */
const MAX_CHARS = 4000;
/** From here on the composer shows how many characters are left. */
const COUNT_FROM = 3500;
/** The composer grows with its text up to this share of the window, then scrolls. */
const MAX_HEIGHT = 0.4;

/** Puts the focus in the open chat's composer: for a chat chosen again while it is open. */
export function focusComposer(): void {
  document.getElementById("composer")?.focus();
}

export function Composer({ chatId, meId }: { chatId: string; meId: string }) {
  // The draft left in this chat, if any: a chat switch or a reload loses nothing.
  const [text, setText] = useState(() => loadDraft(meId, chatId));
  const queryClient = useQueryClient();
  const length = [...text.trim()].length;
  const tooLong = length > MAX_CHARS;
  const input = useRef<HTMLTextAreaElement>(null);
  useEffect(() => saveDraft(meId, chatId, text), [meId, chatId, text]);
  useAutoHeight(input, text);

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
    send(queryClient, chatId, content);
    live.typingDone(chatId);
    // The draft goes with it.
    setText("");
  }

  function onKey(event: KeyboardEvent<HTMLTextAreaElement>) {
    // Enter while an input method composes a word picks the word; it sends nothing.
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) submit(event);
  }

  return (
    <form onSubmit={submit} className="flex items-end gap-2 border-t border-zinc-200 p-3 dark:border-zinc-800">
      <label htmlFor="composer" className="sr-only">Message</label>
      <textarea ref={input} id="composer" rows={1} value={text} onChange={(e) => {
          setText(e.target.value);
          if (e.target.value.trim()) live.typing(chatId);
        }} onKeyDown={onKey}
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
  );
}

/** Fits the textarea to its text, up to MAX_HEIGHT of the window; past that it scrolls. */
function useAutoHeight(ref: RefObject<HTMLTextAreaElement | null>, text: string) {
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
