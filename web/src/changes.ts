// Messages people change (issue 16): an edit, a delete, a reaction added or removed is an entry
// of the chat's log, placed in its one order like a message. Each is applied to the loaded
// history as it comes, in order; applying one twice (a resume, or the answer to our own request
// and then its frame) changes nothing more. A reaction clicked here shows at once and is taken
// back if the server refuses it.
import type { QueryClient } from "@tanstack/react-query";
import { api, call, type ChatListItem, type Message, type MessageChange, type Reaction } from "./api/client";
import type { MessagePages } from "./data";

/** How much of the original a reply quotes: its first 100 characters, as the server does. */
const EXCERPT_CHARS = 100;
export const excerpt = (content: string) => [...content].slice(0, EXCERPT_CHARS).join("");

/** What a change needs to be applied: a frame's `change`, or one made here. */
type Change = Pick<MessageChange, "kind" | "target_id" | "at"> & { by: { id: string }; content?: string | null; emoji?: string | null };

/** The reactions after `userId` added (`on`) or removed an emoji: a set of users per emoji, in
 *  the order each emoji was first used. */
function react(reactions: Reaction[], emoji: string, userId: string, on: boolean): Reaction[] {
  const chip = reactions.find((r) => r.emoji === emoji);
  const has = chip?.user_ids.includes(userId) ?? false;
  if (has === on) return reactions;
  if (!chip) return [...reactions, { emoji, count: 1, user_ids: [userId] }];
  return reactions
    .map((r) => r !== chip ? r : on
      ? { ...r, count: r.count + 1, user_ids: [...r.user_ids, userId] }
      : { ...r, count: r.count - 1, user_ids: r.user_ids.filter((id) => id !== userId) })
    .filter((r) => r.count > 0);
}

/** The message a change targets, as it is after the change (the same object if nothing moved). */
function applyTo(m: Message, c: Change): Message {
  // A tombstone stays one: nothing is placed after a delete, but a late copy must not revive it.
  if (m.deleted_at) return m;
  switch (c.kind) {
    case "edit":
      return c.content == null || (c.content === m.content && m.edited_at) ? m : { ...m, content: c.content, edited_at: c.at };
    case "delete":
      return { ...m, content: "", deleted_at: c.at, reactions: [] };
    case "react":
    case "unreact": {
      if (!c.emoji) return m;
      const reactions = react(m.reactions ?? [], c.emoji, c.by.id, c.kind === "react");
      return reactions === m.reactions ? m : { ...m, reactions };
    }
    default:
      return m;
  }
}

/** A reply whose original changed: its quote reads as the original does now. */
function requote(m: Message, c: Change): Message {
  const quote = m.reply_to;
  if (!quote || quote.id !== c.target_id) return m;
  if (c.kind === "delete") return quote.deleted ? m : { ...m, reply_to: { ...quote, deleted: true, excerpt: "" } };
  if (c.kind === "edit" && c.content != null && !quote.deleted) return { ...m, reply_to: { ...quote, excerpt: excerpt(c.content) } };
  return m;
}

function applyToPages(data: MessagePages | undefined, c: Change): MessagePages | undefined {
  if (!data) return data;
  let moved = false;
  const pages = data.pages.map((page) => {
    let pageMoved = false;
    const messages = page.messages.map((m) => {
      const next = requote(m.id === c.target_id ? applyTo(m, c) : m, c);
      if (next !== m) pageMoved = true;
      return next;
    });
    if (!pageMoved) return page;
    moved = true;
    return { ...page, messages };
  });
  return moved ? { ...data, pages } : data;
}

/** Applies a change to the chat's loaded history and to its line in the chat list. */
export function applyChange(queryClient: QueryClient, chatId: string, c: Change): void {
  queryClient.setQueryData<MessagePages>(["messages", chatId], (data) => applyToPages(data, c));
  if (c.kind !== "edit" && c.kind !== "delete") return;
  queryClient.setQueryData<ChatListItem[]>(["chats"], (chats) => chats?.map((chat) =>
    chat.id === chatId && chat.last_message?.id === c.target_id ? { ...chat, last_message: applyTo(chat.last_message, c) } : chat));
}

/** Edits one of the caller's messages; the answer is applied at once (its frame follows). */
export async function editMessage(queryClient: QueryClient, chatId: string, messageId: string, content: string): Promise<void> {
  const change = await call(api.PATCH("/api/v1/chats/{id}/messages/{message_id}", {
    params: { path: { id: chatId, message_id: messageId } },
    body: { content, client_msg_id: crypto.randomUUID() },
  }));
  applyChange(queryClient, chatId, change);
}

/** Deletes a message (the caller's, or anyone's for an admin or the owner). */
export async function deleteMessage(queryClient: QueryClient, chatId: string, messageId: string, meId: string): Promise<void> {
  await call(api.DELETE("/api/v1/chats/{id}/messages/{message_id}", { params: { path: { id: chatId, message_id: messageId } } }));
  applyChange(queryClient, chatId, { kind: "delete", target_id: messageId, at: new Date().toISOString(), by: { id: meId } });
}

/** Requests for one reaction go out one after another, so the server sees the clicks in order. */
const reactionQueue = new Map<string, Promise<unknown>>();

/** Adds (`on`) or removes the caller's reaction: shown at once, taken back if refused. */
export function toggleReaction(queryClient: QueryClient, chatId: string, messageId: string, emoji: string, meId: string, on: boolean): Promise<void> {
  const change = (kind: "react" | "unreact"): Change => ({ kind, target_id: messageId, emoji, by: { id: meId }, at: new Date().toISOString() });
  applyChange(queryClient, chatId, change(on ? "react" : "unreact"));
  // openapi-fetch percent-encodes path parameters: the emoji goes as encodeURIComponent(emoji).
  const path = { id: chatId, message_id: messageId, emoji };
  const key = `${messageId} ${emoji}`;
  const request = (reactionQueue.get(key) ?? Promise.resolve())
    .catch(() => undefined)
    .then(() => call(on
      ? api.PUT("/api/v1/chats/{id}/messages/{message_id}/reactions/{emoji}", { params: { path } })
      : api.DELETE("/api/v1/chats/{id}/messages/{message_id}/reactions/{emoji}", { params: { path } })))
    .then(() => undefined, (e: unknown) => {
      applyChange(queryClient, chatId, change(on ? "unreact" : "react"));
      throw e;
    });
  reactionQueue.set(key, request);
  void request.finally(() => {
    if (reactionQueue.get(key) === request) reactionQueue.delete(key);
  }).catch(() => undefined);
  return request;
}

/** Whether a message mentions the user: by name, or @everyone. */
export function mentions(m: Pick<Message, "mentions" | "mentions_everyone">, meId: string): boolean {
  return !!m.mentions_everyone || (m.mentions ?? []).includes(meId);
}
