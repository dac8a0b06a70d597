import { useEffect, useRef, useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, call, type User } from "../api/client";
import { flatten, markRead, useMembers, useMessages } from "../data";
import { navigate } from "../router";
import { useChatTitle, usePeer } from "../titles";
import { useTyping } from "../typing";
import { useFirstUnread } from "../unread";
import { ChatHeader } from "./ChatHeader";
import { Composer, focusComposer } from "./Composer";
import { MembersPanel } from "./MembersPanel";
import { MessageList } from "./MessageList";
import { ProfilePanel } from "./ProfilePanel";
import { Button } from "./ui";

/** "ann is typing…", "ann and bob are typing…", or "Several people are typing…". */
function TypingLine({ chatId, me }: { chatId: string; me: User }) {
  const typing = useTyping(chatId, me.id);
  const members = useMembers(chatId, typing.length > 0);
  const name = (id: string) => members.data?.find((m) => m.user.id === id)?.user.display_name ?? "Someone";
  const text =
    typing.length === 0 ? "" :
    typing.length === 1 ? `${name(typing[0])} is typing…` :
    typing.length === 2 ? `${name(typing[0])} and ${name(typing[1])} are typing…` :
    "Several people are typing…";
  return <p aria-live="polite" data-testid="typing" className="h-5 px-4 text-xs text-zinc-600 dark:text-zinc-400">{text}</p>;
}

export function ChatView({ chatId, me }: { chatId: string; me: User }) {
  const chat = useQuery({
    queryKey: ["chat", chatId],
    queryFn: () => call(api.GET("/api/v1/chats/{id}", { params: { path: { id: chatId } } })),
    retry: false,
  });
  const messages = useMessages(chatId);
  // Roles (who may delete others' messages) and names (mentions, who reacted).
  const members = useMembers(chatId);
  const [showMembers, setShowMembers] = useState(false);
  const [replyId, setReplyId] = useState<string | null>(null);
  const membersButton = useRef<HTMLButtonElement>(null);
  const closeMembers = () => {
    setShowMembers(false);
    membersButton.current?.focus();
  };
  const ref = chat.data ?? { id: chatId, kind: "group", name: "…" };
  const title = useChatTitle(ref, me);
  const peer = usePeer(ref, me);
  const loaded = flatten(messages.data);
  const firstUnread = useFirstUnread(chatId, me.id, loaded, messages.isSuccess);
  // Not before the "New messages" line is placed: marking read would move it away.
  useReadMarker(chatId, firstUnread === undefined ? undefined : loaded.at(-1)?.seq);
  const myRole = members.data?.find((m) => m.user.id === me.id)?.role;
  const moderator = chat.data?.kind === "group" && (myRole === "owner" || myRole === "admin");
  // A reply to a message deleted meanwhile cannot be sent: its bar goes.
  const replyTo = loaded.find((m) => m.id === replyId && !m.deleted_at);

  if (chat.isError) {
    return (
      <div className="flex flex-1 flex-col items-center justify-center gap-3 text-zinc-600 dark:text-zinc-400">
        <p role="alert">You are no longer in this chat: you were removed, or it was deleted.</p>
        <Button onClick={() => navigate("/")}>Back to chats</Button>
      </div>
    );
  }
  return (
    <section aria-label={title} className="flex min-w-0 flex-1">
      <div className="flex min-w-0 flex-1 flex-col">
        <ChatHeader chat={chat.data} chatId={chatId} title={title} peer={peer} me={me} panelOpen={showMembers}
          panelButton={membersButton} onTogglePanel={() => setShowMembers((s) => !s)} />
        <MessageList chatId={chatId} me={me} query={messages} firstUnread={firstUnread ?? undefined} members={members.data}
          canModerate={moderator} onReply={(m) => { setReplyId(m.id); focusComposer(); }} />
        <TypingLine chatId={chatId} me={me} />
        <Composer chatId={chatId} meId={me.id} replyTo={replyTo} onCancelReply={() => setReplyId(null)} canMentionEveryone={moderator} />
      </div>
      {showMembers && chat.data && (chat.data.kind === "direct"
        ? <ProfilePanel peer={peer} onClose={closeMembers} />
        : <MembersPanel chat={chat.data} me={me} onClose={closeMembers} />)}
    </section>
  );
}

/** Moves the read marker to the newest message shown while the tab is visible. */
function useReadMarker(chatId: string, newest: number | undefined) {
  const queryClient = useQueryClient();
  const sent = useRef(0);
  useEffect(() => {
    if (newest === undefined || newest <= sent.current) return;
    const mark = () => {
      if (document.visibilityState !== "visible" || newest <= sent.current) return;
      sent.current = newest;
      markRead(queryClient, chatId, newest);
    };
    mark();
    document.addEventListener("visibilitychange", mark);
    return () => document.removeEventListener("visibilitychange", mark);
  }, [chatId, newest, queryClient]);
}
