// The parts of a message row that changes add: the quote of the message a reply answers, the
// "(edited)" mark, and the reactions under it.
import type { Reaction, ReplyTo } from "../api/client";

const full = new Intl.DateTimeFormat(undefined, { dateStyle: "full", timeStyle: "short" });

/** The message a reply answers: its author and first words. Clicked, it shows the original, when
 *  it is loaded (`onJump`); a deleted original is said to be one. */
export function ReplyQuote({ quote, onJump }: { quote: ReplyTo; onJump?: () => void }) {
  const body = (
    <>
      <span aria-hidden className="text-zinc-500">↪</span>
      <span className="sr-only">In reply to </span>
      <span className="shrink-0 font-semibold">{quote.author.display_name}</span>
      <span className={`min-w-0 truncate ${quote.deleted ? "italic" : ""}`}>{quote.deleted ? "deleted message" : quote.excerpt}</span>
    </>
  );
  const style = "mb-0.5 flex max-w-full items-center gap-1.5 border-l-2 border-zinc-300 pl-2 text-left text-xs text-zinc-600 dark:border-zinc-600 dark:text-zinc-400";
  if (!onJump) return <div data-testid="reply-quote" className={style}>{body}</div>;
  return (
    <button type="button" data-testid="reply-quote" title="Show the original message" onClick={onJump}
      className={`${style} rounded-r max-md:min-h-11 hover:bg-zinc-100 hover:text-zinc-900 dark:hover:bg-zinc-800 dark:hover:text-zinc-100`}>
      {body}
    </button>
  );
}

/** After an edited message's text; when it was edited shows on hover. */
export function EditedMark({ at }: { at: string }) {
  return (
    <span data-testid="edited" title={`Edited ${full.format(new Date(at))}`} className="ml-1 text-xs text-zinc-600 dark:text-zinc-400">
      (edited)
    </span>
  );
}

type ReactionsProps = {
  reactions: Reaction[];
  meId: string;
  /** Display names by user id, for who reacted. */
  names: Map<string, string>;
  onToggle: (emoji: string, on: boolean) => void;
};

/** "👍 2" chips; the caller's own are pressed, and a click takes one back or adds it. */
export function Reactions({ reactions, meId, names, onToggle }: ReactionsProps) {
  if (reactions.length === 0) return null;
  return (
    <ul aria-label="Reactions" className="mt-1 flex flex-wrap gap-1">
      {reactions.map((r) => {
        const mine = r.user_ids.includes(meId);
        const who = r.user_ids.map((id) => (id === meId ? "you" : (names.get(id) ?? "someone"))).join(", ");
        return (
          <li key={r.emoji}>
            <button type="button" data-testid="reaction" aria-pressed={mine} title={`${who} reacted with ${r.emoji}`}
              onClick={() => onToggle(r.emoji, !mine)}
              className={`inline-flex items-center justify-center rounded-full border px-2 py-0.5 text-sm max-md:min-h-11 max-md:min-w-11 ${mine
                ? "border-indigo-400 bg-indigo-50 text-indigo-900 dark:border-indigo-500 dark:bg-indigo-950 dark:text-indigo-100"
                : "border-zinc-300 bg-white text-zinc-800 hover:bg-zinc-100 dark:border-zinc-700 dark:bg-zinc-900 dark:text-zinc-200 dark:hover:bg-zinc-800"}`}>
              {`${r.emoji} ${r.count}`}
            </button>
          </li>
        );
      })}
    </ul>
  );
}
