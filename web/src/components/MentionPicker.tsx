// "@" in the composer offers the chat's members: the arrow keys choose, Enter or Tab puts
// "@username " in, Escape closes. The textarea keeps the focus (aria-activedescendant points at
// the option chosen), so typing goes on narrowing the list.
import { useState, type KeyboardEvent, type ReactNode } from "react";
import { useMembers } from "../data";
import { Avatar } from "./ui";

/** At most this many people are offered at once. */
const MAX_OPTIONS = 8;
const LIST_ID = "mention-options";
const optionId = (i: number) => `mention-option-${i}`;

type Option = { username: string; display_name: string; id: string };
const EVERYONE: Option = { id: "everyone", username: "everyone", display_name: "Everyone in this chat" };

/** The "@name" being typed just before the caret: where its "@" is, and the name so far. */
export function mentionAt(text: string, caret: number): { start: number; query: string } | null {
  // No caret: the composer does not have the focus.
  if (caret < 0) return null;
  const m = text.slice(0, caret).match(/(?:^|\s)@([\p{L}\p{N}_.-]*)$/u);
  return m ? { start: caret - m[1].length - 1, query: m[1] } : null;
}

type Picker = {
  /** What to render above the composer (null while closed). */
  list: ReactNode;
  /** The textarea's combobox attributes. */
  inputProps: { "aria-autocomplete": "list"; "aria-controls"?: string; "aria-activedescendant"?: string };
  /** Handles the picker's keys; true when the key was used. */
  onKeyDown: (event: KeyboardEvent<HTMLTextAreaElement>) => boolean;
};

/** The mention picker for the composer's `text` with its caret at `caret`; `insert` puts the
 *  text back with the caret at the given place. `everyone`: the caller may mention @everyone. */
export function useMentionPicker(chatId: string, meId: string, text: string, caret: number, everyone: boolean,
  insert: (text: string, caret: number) => void): Picker {
  const members = useMembers(chatId);
  const at = mentionAt(text, caret);
  const [active, setActive] = useState(0);
  // Escape closes the list for this "@" only: the next one opens it again.
  const [dismissed, setDismissed] = useState<number | null>(null);
  const [forQuery, setForQuery] = useState<string | null>(null);
  const query = at?.query.toLowerCase() ?? null;
  if (query !== forQuery) {
    setForQuery(query);
    setActive(0);
    if (at === null) setDismissed(null);
  }
  const matches = (o: Option) => o.username.toLowerCase().startsWith(query ?? "") ||
    o.display_name.toLowerCase().split(/\s+/).some((w) => w.startsWith(query ?? ""));
  const options = at === null || dismissed === at.start ? [] : [
    ...(members.data ?? []).map((m) => m.user).filter((u) => u.id !== meId && matches(u)),
    ...(everyone && matches(EVERYONE) ? [EVERYONE] : []),
  ].slice(0, MAX_OPTIONS);
  const open = options.length > 0 && at !== null;
  const chosen = Math.min(active, options.length - 1);

  function pick(o: Option) {
    if (!at) return;
    const before = `${text.slice(0, at.start)}@${o.username} `;
    // A space already after the caret is not doubled.
    const after = text.slice(caret).replace(/^ /, "");
    insert(before + after, before.length);
  }

  function onKeyDown(event: KeyboardEvent<HTMLTextAreaElement>): boolean {
    if (!open || event.nativeEvent.isComposing) return false;
    const n = options.length;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") setActive((chosen + (event.key === "ArrowDown" ? 1 : n - 1)) % n);
    else if ((event.key === "Enter" && !event.shiftKey) || event.key === "Tab") pick(options[chosen]);
    else if (event.key === "Escape") setDismissed(at.start);
    else return false;
    event.preventDefault();
    event.stopPropagation();
    return true;
  }

  const list = open && (
    <>
      <ul id={LIST_ID} role="listbox" aria-label="People to mention" data-testid="mention-options"
        className="absolute bottom-full left-3 z-20 mb-1 w-72 max-w-[calc(100%-1.5rem)] overflow-hidden rounded-lg border border-zinc-200 bg-white py-1 shadow-lg dark:border-zinc-700 dark:bg-zinc-900">
        {options.map((o, i) => (
          <li key={o.id} id={optionId(i)} role="option" aria-selected={i === chosen}
            // The textarea keeps the focus: a click picks without taking it.
            onMouseDown={(e) => { e.preventDefault(); pick(o); }} onMouseEnter={() => setActive(i)}
            className={`flex cursor-pointer items-center gap-2 px-3 py-1.5 text-sm max-md:min-h-11 ${i === chosen ? "bg-indigo-50 dark:bg-indigo-950" : ""}`}>
            <Avatar name={o.display_name} />
            <span className="min-w-0 flex-1 truncate">{o.display_name}</span>
            <span className="text-xs text-zinc-600 dark:text-zinc-400">@{o.username}</span>
          </li>
        ))}
      </ul>
      <p className="sr-only" aria-live="polite">
        {`${options.length} ${options.length === 1 ? "person" : "people"} to mention: arrow keys to choose, Enter to pick, Escape to close.`}
      </p>
    </>
  );
  return {
    list: list || null,
    inputProps: { "aria-autocomplete": "list", "aria-controls": open ? LIST_ID : undefined, "aria-activedescendant": open ? optionId(chosen) : undefined },
    onKeyDown,
  };
}
