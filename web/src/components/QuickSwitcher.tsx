// The quick switcher: Ctrl+K (⌘K on a Mac), or "Jump to chat", opens a dialog that finds a chat by
// name; Enter opens the first match (or the one picked with the arrow keys), Escape closes it.
import { useEffect, useId, useRef, useState, type KeyboardEvent } from "react";
import type { User } from "../api/client";
import { useChats } from "../data";
import { navigate } from "../router";
import { useChatTitles } from "../titles";
import { focusComposer } from "./Composer";
import { Handle } from "./ui";

// On a Mac, Ctrl+K in a text field deletes to the end of the line: there it is ⌘K.
const mac = /Mac|iPhone|iPad/.test(navigator.userAgent);
export const shortcut = mac ? { aria: "Meta+K", label: "⌘K" } : { aria: "Control+K", label: "Ctrl+K" };

const openers = new Set<() => void>();
export function openQuickSwitcher(): void {
  openers.forEach((open) => open());
}

export function QuickSwitcher({ me }: { me: User }) {
  const [open, setOpen] = useState(false);
  useEffect(() => {
    const show = () => setOpen(true);
    const onKey = (e: globalThis.KeyboardEvent) => {
      if (e.key.toLowerCase() !== "k" || !(mac ? e.metaKey : e.ctrlKey) || e.altKey || e.shiftKey) return;
      e.preventDefault();
      show();
    };
    openers.add(show);
    window.addEventListener("keydown", onKey);
    return () => {
      openers.delete(show);
      window.removeEventListener("keydown", onKey);
    };
  }, []);
  return open ? <Switcher me={me} onClose={() => setOpen(false)} /> : null;
}

function Switcher({ me, onClose }: { me: User; onClose: () => void }) {
  const chats = useChats();
  const titles = useChatTitles(chats.data ?? [], me);
  const [filter, setFilter] = useState("");
  const [picked, setPicked] = useState(0);
  const q = filter.trim().toLowerCase();
  const matches = q ? titles.filter((t) => t.title.toLowerCase().includes(q) || t.peer?.username.includes(q)) : titles;
  const current = Math.min(picked, matches.length - 1);
  const id = useId();
  const optionId = (i: number) => `${id}-option-${i}`;
  const dialog = useRef<HTMLDialogElement>(null);
  const input = useRef<HTMLInputElement>(null);
  const chosen = useRef(false);

  // Modal: the page behind is inert, so focus stays in here. On closing, focus goes back where
  // it was, or, when a chat was chosen, into its composer.
  useEffect(() => {
    const back = document.activeElement;
    if (dialog.current && !dialog.current.open) dialog.current.showModal();
    input.current?.focus();
    return () => {
      if (chosen.current) focusComposer();
      else if (back instanceof HTMLElement && back.isConnected) back.focus();
    };
  }, []);
  // A block body: newer browsers return a promise from scrollIntoView, which is no cleanup.
  useEffect(() => {
    document.getElementById(`${id}-option-${current}`)?.scrollIntoView({ block: "nearest" });
  }, [id, current]);

  function choose(chatId: string | undefined) {
    if (!chatId) return;
    chosen.current = true;
    navigate(`/chats/${chatId}`);
    onClose();
  }

  function onKeyDown(e: KeyboardEvent) {
    // Handled here, and no further: Escape closes this dialog, not the members panel behind it.
    const keys: Record<string, () => void> = {
      Escape: onClose,
      Enter: () => choose(matches[current]?.chat.id),
      ArrowDown: () => setPicked(Math.min(current + 1, matches.length - 1)),
      ArrowUp: () => setPicked(Math.max(current - 1, 0)),
      // The filter is the one place for focus: the list is picked from with the arrow keys.
      Tab: () => input.current?.focus(),
    };
    const action = keys[e.key];
    if (!action) return;
    e.preventDefault();
    e.stopPropagation();
    action();
  }

  return (
    <dialog ref={dialog} aria-modal="true" aria-labelledby={`${id}-label`} onKeyDown={onKeyDown}
      onCancel={(e) => { e.preventDefault(); onClose(); }}
      // A click on the backdrop lands on the dialog itself; one inside lands on its content.
      onClick={(e) => { if (e.target === e.currentTarget) onClose(); }}
      className="mx-auto mt-[15vh] w-[min(32rem,calc(100%-2rem))] rounded-xl bg-white p-0 text-zinc-900 shadow-2xl backdrop:bg-black/40 dark:bg-zinc-900 dark:text-zinc-100">
      <div className="flex flex-col gap-2 p-3">
        <label id={`${id}-label`} htmlFor={`${id}-filter`} className="text-sm font-medium">Jump to a chat</label>
        <input ref={input} id={`${id}-filter`} value={filter} placeholder="Chat name" autoComplete="off"
          role="combobox" aria-expanded="true" aria-autocomplete="list" aria-controls={`${id}-list`}
          aria-activedescendant={matches.length > 0 ? optionId(current) : undefined}
          onChange={(e) => { setFilter(e.target.value); setPicked(0); }}
          className="rounded-md border border-zinc-300 bg-white px-3 py-2 dark:border-zinc-700 dark:bg-zinc-950" />
        <ul id={`${id}-list`} role="listbox" aria-label="Chats" className="max-h-[50vh] overflow-y-auto">
          {matches.map((m, i) => (
            <li key={m.chat.id} id={optionId(i)} role="option" aria-selected={i === current}
              onClick={() => choose(m.chat.id)} onMouseMove={() => setPicked(i)}
              className={`cursor-pointer truncate rounded-md px-3 py-2 ${i === current ? "bg-indigo-100 dark:bg-indigo-900/60" : ""}`}>
              {m.title}{m.peer && <Handle username={m.peer.username} />}
            </li>
          ))}
        </ul>
        {matches.length === 0 && <p className="px-3 py-2 text-sm text-zinc-600 dark:text-zinc-400">{chats.isPending ? "Loading…" : "No chat matches."}</p>}
        <p className="text-xs text-zinc-600 dark:text-zinc-400">↑ ↓ to pick, Enter to open, Esc to close</p>
      </div>
    </dialog>
  );
}
