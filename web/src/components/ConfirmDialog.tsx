// A question before something that cannot be undone (removing a member, leaving, deleting): an
// in-page alert dialog. Focus starts on the safe button, Escape or a click outside cancels, and
// focus goes back where it was.
import { useEffect, useId, useRef, useState, type KeyboardEvent, type ReactNode } from "react";
import { Button } from "./ui";

export type Question = { title: string; body: string; confirm: string; onConfirm: () => void };

/** The dialog to render (null while nothing is asked) and `ask`, which opens it. */
export function useConfirm(): [ReactNode, (q: Question) => void] {
  const [question, setQuestion] = useState<Question | null>(null);
  const dialog = question && (
    <ConfirmDialog question={question} onClose={(confirmed) => {
      setQuestion(null);
      if (confirmed) question.onConfirm();
    }} />
  );
  return [dialog, setQuestion];
}

function ConfirmDialog({ question, onClose }: { question: Question; onClose: (confirmed: boolean) => void }) {
  const id = useId();
  const dialog = useRef<HTMLDialogElement>(null);
  const cancel = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    const back = document.activeElement;
    if (dialog.current && !dialog.current.open) dialog.current.showModal();
    cancel.current?.focus();
    return () => {
      if (back instanceof HTMLElement && back.isConnected) back.focus();
    };
  }, []);

  function onKeyDown(e: KeyboardEvent) {
    // This dialog's Escape, not the panel's behind it.
    if (e.key !== "Escape") return;
    e.preventDefault();
    e.stopPropagation();
    onClose(false);
  }

  return (
    <dialog ref={dialog} role="alertdialog" aria-modal="true" aria-labelledby={`${id}-title`} aria-describedby={`${id}-body`}
      onKeyDown={onKeyDown} onCancel={(e) => { e.preventDefault(); onClose(false); }}
      onClick={(e) => { if (e.target === e.currentTarget) onClose(false); }}
      className="mx-auto mt-[20vh] w-[min(26rem,calc(100%-2rem))] rounded-xl bg-white p-0 text-zinc-900 shadow-2xl backdrop:bg-black/40 dark:bg-zinc-900 dark:text-zinc-100">
      <div className="flex flex-col gap-3 p-4">
        <h2 id={`${id}-title`} className="text-lg font-semibold">{question.title}</h2>
        <p id={`${id}-body`} className="text-sm text-zinc-700 dark:text-zinc-300">{question.body}</p>
        <div className="flex justify-end gap-2">
          <Button ref={cancel} variant="ghost" onClick={() => onClose(false)}>Cancel</Button>
          <Button variant="danger" className="border border-red-300 dark:border-red-800" onClick={() => onClose(true)}>{question.confirm}</Button>
        </div>
      </div>
    </dialog>
  );
}
