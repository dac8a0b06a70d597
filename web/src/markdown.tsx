// Message text with a small Markdown subset: links, **bold**, *italic* or _italic_, `code`,
// ``` fenced blocks and "> " quote lines. Everything becomes React elements, never HTML, so
// "<b>x</b>" shows as typed; only http(s) addresses become links.
import type { ReactNode } from "react";

type Block = { kind: "text" | "quote" | "code"; text: string };

/** An opening fence: ``` and an optional language, no more backticks (```x``` is inline). */
const FENCE = /^\s*```[^`]*$/;
const CLOSE = /^\s*```\s*$/;
/** "> " starts a quote line; ">_<" and the like stay text. */
const QUOTE = /^>(?: |$)/;

/** A message as runs of plain lines, quote lines and fenced code. */
export function blocks(content: string): Block[] {
  const lines = content.split("\n");
  const out: Block[] = [];
  const add = (kind: "text" | "quote", line: string) => {
    const last = out.at(-1);
    if (last?.kind === kind) last.text += `\n${line}`;
    else out.push({ kind, text: line });
  };
  for (let i = 0; i < lines.length; i++) {
    if (FENCE.test(lines[i])) {
      // To the closing fence; one never closed runs to the end, as in CommonMark.
      let end = i + 1;
      while (end < lines.length && !CLOSE.test(lines[end])) end++;
      out.push({ kind: "code", text: lines.slice(i + 1, end).join("\n") });
      i = end;
    } else if (QUOTE.test(lines[i])) add("quote", lines[i].replace(QUOTE, ""));
    else add("text", lines[i]);
  }
  return out;
}

// At each position the first alternative that matches wins: code, then a link, then emphasis.
// Emphasis stays on one line, and _x_ only between words, so snake_case_names stay as typed.
const INLINE = new RegExp([
  /(`+)([^`\n](?:[^\n]*?[^`\n])?)\1(?!`)/.source, // 1, 2: `code`
  /(?<![\w@.\/-])((?:https?:\/\/|www\.)[^\s<>]+)/.source, // 3: a link, not inside a word or an address
  /\*\*([^\s*](?:[^\n]*?[^\s])?)\*\*/.source, // 4: **bold**
  /\*([^\s*](?:[^\n]*?[^\s*])?)\*/.source, // 5: *italic*
  /(?<![\p{L}\p{N}_])_([^\s_](?:[^\n]*?[^\s_])?)_(?![\p{L}\p{N}_])/u.source, // 6: _italic_
].join("|"), "giu");

/** Punctuation after an address ends the sentence, not the address; a ")" closes one only when
 *  the address opened it (https://en.wikipedia.org/wiki/Rust_(programming_language)). */
function trimUrl(url: string): string {
  let end = url.length;
  for (;;) {
    const c = url[end - 1];
    const open = url.slice(0, end).split("(").length;
    const close = url.slice(0, end).split(")").length;
    if (end > 1 && (".,;:!?'\"*_]".includes(c) || (c === ")" && close > open))) end--;
    else return url.slice(0, end);
  }
}

/** The address a link goes to, or null: only http and https, whatever the text says. */
export function safeHref(text: string): string | null {
  try {
    const url = new URL(/^www\./i.test(text) ? `https://${text}` : text);
    return url.protocol === "http:" || url.protocol === "https:" ? url.href : null;
  } catch {
    return null;
  }
}

const codeStyle = "rounded bg-zinc-100 px-1 font-mono text-[0.9em] dark:bg-zinc-800";
const linkStyle = "text-indigo-700 underline hover:text-indigo-500 dark:text-indigo-300";

const markStyle = "rounded bg-amber-200 px-0.5 font-medium text-amber-950 dark:bg-amber-700/60 dark:text-amber-50";

/** "@name" tokens to highlight (the reader's own name, "@everyone"), as a pattern: not inside a
 *  word or an address, and not the start of a longer name. */
function markPattern(marks: string[]): RegExp | null {
  if (marks.length === 0) return null;
  const names = marks.map((m) => m.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")).join("|");
  return new RegExp(`(?<![\\p{L}\\p{N}_.@-])@(?:${names})(?![\\p{L}\\p{N}_-])`, "giu");
}

/** Plain text, with the mentions to highlight in <mark>. */
function marked(text: string, key: string, marks: RegExp | null): ReactNode[] {
  if (!marks) return [text];
  const out: ReactNode[] = [];
  const re = new RegExp(marks.source, marks.flags);
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    out.push(<mark key={`${key}.m${out.length}`} data-testid="mention" className={markStyle}>{m[0]}</mark>);
    at = re.lastIndex;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function inline(text: string, key: string, marks: RegExp | null = null): ReactNode[] {
  const out: ReactNode[] = [];
  // A fresh regex per call: emphasis recurses, and each level keeps its own place.
  const re = new RegExp(INLINE.source, INLINE.flags);
  let at = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    const k = `${key}.${out.length}`;
    let node: ReactNode;
    if (m[2] !== undefined) node = <code key={k} className={codeStyle}>{m[2]}</code>;
    else if (m[3] !== undefined) {
      const url = trimUrl(m[3]);
      re.lastIndex = m.index + url.length;
      const href = safeHref(url);
      node = href ? <a key={k} href={href} target="_blank" rel="noopener noreferrer" className={linkStyle}>{url}</a> : url;
    } else if (m[4] !== undefined) node = <strong key={k}>{inline(m[4], k, marks)}</strong>;
    else node = <em key={k}>{inline(m[5] ?? m[6], k, marks)}</em>;
    if (m.index > at) out.push(...marked(text.slice(at, m.index), `${k}.t`, marks));
    out.push(node);
    at = re.lastIndex;
  }
  if (at < text.length) out.push(...marked(text.slice(at), `${key}.end`, marks));
  return out;
}

/** A message's text, formatted. The caller's box keeps line breaks (whitespace-pre-wrap).
 *  `marks`: names mentioned ("ann", "everyone") whose "@name" is highlighted. */
export function MessageText({ content, marks = [] }: { content: string; marks?: string[] }) {
  const pattern = markPattern(marks);
  return blocks(content).map((b, i) =>
    b.kind === "code" ? (
      <pre key={i} className="my-1 overflow-x-auto rounded-md bg-zinc-100 p-2 font-mono text-sm dark:bg-zinc-900"><code>{b.text}</code></pre>
    ) : b.kind === "quote" ? (
      <blockquote key={i} className="my-0.5 border-l-4 border-zinc-300 pl-2 text-zinc-600 dark:border-zinc-700 dark:text-zinc-400">{inline(b.text, `${i}`, pattern)}</blockquote>
    ) : (
      <p key={i}>{inline(b.text, `${i}`, pattern)}</p>
    ),
  );
}
