// Server state: queries for chats and messages, and how live frames update them.
import { useEffect } from "react";
import { notifyManager, useInfiniteQuery, useQuery, useQueryClient, type InfiniteData, type QueryClient } from "@tanstack/react-query";
import { api, call, type ChatListItem, type Message, type ServerFrame } from "./api/client";
import { applyChange, mentions } from "./changes";
import { live } from "./live";
import { pendingStore } from "./pending";

type Page = { messages: Message[]; has_more: boolean };
export type MessagePages = InfiniteData<Page, unknown>;

export function useChats() {
  return useQuery({
    queryKey: ["chats"],
    queryFn: allChats,
    select: (chats) => [...chats].sort((a, b) => activity(b) - activity(a)),
  });
}

/** Every page of the chat list: the server links each page to the next (`Link: rel="next"`). */
async function allChats(): Promise<ChatListItem[]> {
  const all: ChatListItem[] = [];
  let cursor: string | undefined;
  do {
    const result = api.GET("/api/v1/chats", { params: { query: { cursor } } });
    const { response } = await result;
    all.push(...(await call(result)));
    cursor = nextCursor(response.headers.get("link"));
  } while (cursor);
  return withReads(all);
}

function nextCursor(link: string | null): string | undefined {
  const next = link?.match(/<([^>]*)>;\s*rel="next"/)?.[1];
  return next ? (new URL(next, location.origin).searchParams.get("cursor") ?? undefined) : undefined;
}

function activity(c: ChatListItem): number {
  return Date.parse(c.last_message?.created_at ?? c.created_at);
}

/** How far this tab has marked each chat read. A chat list the server made before it took a
 *  marker still counts those messages: they must not bring the badge back. */
const readUpTo = new Map<string, number>();

function withReads(chats: ChatListItem[]): ChatListItem[] {
  return chats.map((c) => {
    const read = readUpTo.get(c.id);
    if (read === undefined || (c.unread_count === 0 && !c.mention_count)) return c;
    // Seqs have no gaps: at most the entries after the marker are unread (changes take seqs
    // too, so this is a bound, never too low).
    const unread = Math.min(c.unread_count, Math.max(0, (c.last_message?.seq ?? 0) - read));
    // Mentions are among the unread messages.
    const mentioned = Math.min(c.mention_count ?? 0, unread);
    return unread === c.unread_count && mentioned === c.mention_count ? c : { ...c, unread_count: unread, mention_count: mentioned };
  });
}

function noteRead(chatId: string, seq: number): void {
  if (seq > (readUpTo.get(chatId) ?? 0)) readUpTo.set(chatId, seq);
}

/** Marks a chat read up to `seq`: on the server, and at once in the chat list. */
export function markRead(queryClient: QueryClient, chatId: string, seq: number): void {
  noteRead(chatId, seq);
  void api.POST("/api/v1/chats/{id}/read", { params: { path: { id: chatId } }, body: { seq } });
  queryClient.setQueryData<ChatListItem[]>(["chats"], (chats) => chats && withReads(chats));
}

/** Sign-out: the next user's read markers are their own. */
export function forgetReads(): void {
  readUpTo.clear();
}

/** A chat's history, newest page first; `fetchNextPage` loads older messages. */
export function useMessages(chatId: string) {
  const query = useInfiniteQuery({
    queryKey: ["messages", chatId],
    queryFn: async ({ pageParam }) =>
      call(
        api.GET("/api/v1/chats/{id}/messages", {
          params: { path: { id: chatId }, query: { limit: 50, before: pageParam } },
        }),
      ),
    initialPageParam: undefined as string | undefined,
    getNextPageParam: (last) => (last.has_more ? last.messages[0]?.id : undefined),
    staleTime: Infinity,
  });
  const newest = query.data?.pages[0]?.messages.at(-1)?.seq;
  useEffect(() => {
    if (newest !== undefined) live.saw(chatId, newest);
  }, [chatId, newest]);
  return query;
}

/** A chat's members and their roles (kept current by `member_added` and `member_removed`). */
export function useMembers(chatId: string, enabled = true) {
  return useQuery({
    queryKey: ["members", chatId],
    queryFn: () => call(api.GET("/api/v1/chats/{id}/members", { params: { path: { id: chatId } } })),
    enabled,
    staleTime: 60_000,
  });
}

/** All loaded messages of a chat, ascending by seq. */
export function flatten(data: MessagePages | undefined): Message[] {
  return data ? [...data.pages].reverse().flatMap((p) => p.messages) : [];
}

/** Adds a message to its chat's loaded history, once, in seq order. */
export function insertMessage(queryClient: QueryClient, message: Message): void {
  queryClient.setQueryData<MessagePages>(["messages", message.chat_id], (data) => {
    if (!data || data.pages.some((p) => p.messages.some((m) => m.id === message.id))) return data;
    const [newest, ...older] = data.pages;
    const messages = [...(newest?.messages ?? []), message].sort((a, b) => a.seq - b.seq);
    return { ...data, pages: [{ messages, has_more: newest?.has_more ?? false }, ...older] };
  });
  // A message sent from this tab: its pending copy goes once the history shows it (query
  // updates reach components a tick later than the pending store's), so it never blinks out.
  const sentHere = message.client_msg_id;
  if (sentHere) notifyManager.schedule(() => pendingStore.remove(sentHere));
}

function bumpChat(queryClient: QueryClient, message: Message, meId: string, activeChat: string | null): void {
  let known = false;
  queryClient.setQueryData<ChatListItem[]>(["chats"], (chats) =>
    chats?.map((c) => {
      if (c.id !== message.chat_id) return c;
      known = true;
      const newer = !c.last_message || c.last_message.seq < message.seq;
      const theirs = message.author.id !== meId && activeChat !== c.id;
      const unread = theirs ? c.unread_count + 1 : c.unread_count;
      const mentioned = theirs && mentions(message, meId) ? (c.mention_count ?? 0) + 1 : c.mention_count;
      return newer ? { ...c, last_message: message, unread_count: unread, mention_count: mentioned } : c;
    }),
  );
  if (!known) void queryClient.invalidateQueries({ queryKey: ["chats"] });
}

/** Applies live frames to the cached server state. */
export function useLiveSync(meId: string | undefined, activeChat: string | null): void {
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!meId) return;
    live.start();
    return live.onFrame((frame: ServerFrame) => {
      switch (frame.type) {
        case "ready":
          void queryClient.invalidateQueries({ queryKey: ["chats"] });
          break;
        case "message":
          insertMessage(queryClient, frame.message);
          bumpChat(queryClient, frame.message, meId, activeChat);
          break;
        case "message_changed":
          // Not a new message: nothing unread, no new line; the message it targets changes.
          applyChange(queryClient, frame.chat_id, frame.change);
          break;
        case "chat_updated":
          void queryClient.invalidateQueries({ queryKey: ["chats"] });
          void queryClient.invalidateQueries({ queryKey: ["chat", frame.chat.id] });
          break;
        case "member_added":
          void queryClient.invalidateQueries({ queryKey: ["chats"] });
          void queryClient.invalidateQueries({ queryKey: ["members", frame.chat_id] });
          break;
        case "member_removed":
        case "chat_deleted": {
          const gone = frame.type === "chat_deleted" || frame.user_id === meId;
          void queryClient.invalidateQueries({ queryKey: ["chats"] });
          void queryClient.invalidateQueries({ queryKey: ["members", frame.chat_id] });
          if (gone) {
            queryClient.removeQueries({ queryKey: ["messages", frame.chat_id] });
            // The open chat stays open and says why it is gone (its next read is a 404).
            if (activeChat === frame.chat_id) void queryClient.invalidateQueries({ queryKey: ["chat", frame.chat_id] });
          }
          break;
        }
        case "friend_request":
          void queryClient.invalidateQueries({ queryKey: ["friend-requests"] });
          if (frame.request.status === "accepted") void queryClient.invalidateQueries({ queryKey: ["friends"] });
          break;
        case "added_to_chat":
          // The chat list shows it at once; `member_added` follows for the subscription.
          void queryClient.invalidateQueries({ queryKey: ["chats"] });
          break;
        case "friend_removed":
          void queryClient.invalidateQueries({ queryKey: ["friends"] });
          break;
        case "read":
          // Read on another session of ours: that chat's badge clears here too.
          noteRead(frame.chat_id, frame.seq);
          queryClient.setQueryData<ChatListItem[]>(["chats"], (chats) => chats && withReads(chats));
          break;
        default:
          break;
      }
    });
  }, [meId, activeChat, queryClient]);
}
