// What a chat is called: a group by its name, a direct chat after the other member.
import { useQueries, useQuery } from "@tanstack/react-query";
import { api, call, type ChatListItem, type User } from "./api/client";

type ChatRef = { id: string; kind: string; name?: string | null };

/** A chat's members: a direct chat needs them for its name (kept current by live frames). */
function membersQuery(chat: ChatRef) {
  return {
    queryKey: ["members", chat.id],
    queryFn: () => call(api.GET("/api/v1/chats/{id}/members", { params: { path: { id: chat.id } } })),
    enabled: chat.kind === "direct",
    staleTime: Infinity,
  };
}

type Members = { user: User }[] | undefined;
const peerOf = (chat: ChatRef, members: Members, me: User) =>
  chat.kind === "direct" ? members?.find((m) => m.user.id !== me.id)?.user : undefined;

function title(chat: ChatRef, peer: User | undefined): string {
  if (chat.kind !== "direct") return chat.name ?? "Untitled group";
  return peer?.display_name ?? "Direct message";
}

/** The other member of a direct chat (undefined for a group, or until the members are known). */
export function usePeer(chat: ChatRef, me: User): User | undefined {
  return peerOf(chat, useQuery(membersQuery(chat)).data, me);
}

export function useChatTitle(chat: ChatRef, me: User): string {
  return title(chat, usePeer(chat, me));
}

/** Every chat's title and, for a direct chat, the other member: what the quick switcher finds. */
export function useChatTitles(chats: ChatListItem[], me: User): { chat: ChatListItem; title: string; peer?: User }[] {
  const members = useQueries({ queries: chats.map(membersQuery) });
  return chats.map((chat, i) => {
    const peer = peerOf(chat, members[i]?.data, me);
    return { chat, title: title(chat, peer), peer };
  });
}
