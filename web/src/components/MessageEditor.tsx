// Editing one's message in place: Enter saves, Shift+Enter starts a line, Escape cancels. The
// text stays while the server says no, with why.
import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import { ApiError } from "../api/client";
import { MAX_CHARS, useAutoHeight } from "./Composer";
import { Button } from "./ui";

type Props = { initial: string; onSave: (content: string) => Promise<void>; onDone: () => void };

/** Why an edit was refused, in words. */
function refusal(e: unknown): string {
  if (!(e instanceof ApiError)) return "Harmony is not reachable. Try again.";
  if (e.code === "message_deleted") return "This message was deleted.";
  if (e.code === "not_author") return "Only its author can edit a message.";
  const field = e.fields.content;
  return field ? `The message ${field}.` : e.message;
}

export function MessageEditor({ initial, onSave, onDone }: Props) {
  const id = useId();
  const [text, setText] = useState(initial);
  const [error, setError] = useState("");
  const [saving, setSaving] = useState(false);
  const input = useRef<HTMLTextAreaElement>(null);
  useAutoHeight(input, text);
  useEffect(() => {
    const el = input.current;
    if (!el) return;
    el.focus();
    el.setSelectionRange(el.value.length, el.value.length);
  }, []);

  async function save() {
    const content = text.trim();
    if (saving) return;
    if (content === initial.trim()) return onDone();
    if (!content) return setError("A message needs some text: delete it instead.");
    if ([...content].length > MAX_CHARS) return setError(`A message has at most ${MAX_CHARS} characters.`);
    setSaving(true);
    try {
      await onSave(content);
      onDone();
    } catch (e) {
      setError(refusal(e));
      setSaving(false);
    }
  }

  function onKey(event: KeyboardEvent<HTMLTextAreaElement>) {
    if (event.key === "Enter" && !event.shiftKey && !event.nativeEvent.isComposing) {
      event.preventDefault();
      void save();
    } else if (event.key === "Escape") {
      // The editor's Escape: not the reply bar's or a panel's.
      event.preventDefault();
      event.stopPropagation();
      onDone();
    }
  }

  return (
    <div className="mt-0.5 flex flex-col gap-1">
      <label htmlFor={`${id}-edit`} className="sr-only">Edit message</label>
      <textarea ref={input} id={`${id}-edit`} rows={1} value={text} onChange={(e) => setText(e.target.value)} onKeyDown={onKey}
        aria-invalid={error ? true : undefined} aria-describedby={`${id}-hint${error ? ` ${id}-error` : ""}`} readOnly={saving}
        className="min-h-10 w-full resize-none rounded-md border border-zinc-300 bg-white px-3 py-2 dark:border-zinc-700 dark:bg-zinc-900" />
      {error && <p id={`${id}-error`} role="alert" className="text-sm text-red-700 dark:text-red-400">{error}</p>}
      <div className="flex items-center gap-2">
        <p id={`${id}-hint`} className="flex-1 text-xs text-zinc-600 dark:text-zinc-400">Escape to cancel · Enter to save</p>
        <Button type="button" variant="ghost" onClick={onDone}>Cancel</Button>
        <Button type="button" disabled={saving} onClick={() => void save()}>{saving ? "Saving…" : "Save"}</Button>
      </div>
    </div>
  );
}
