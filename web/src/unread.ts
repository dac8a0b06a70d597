// What is unread: where the "New messages" line goes in the open chat, and the count in the
// tab's title.
import { useEffect, useState } from "react";
import type { Message } from "./api/client";
import { useChats } from "./data";

/** The seq of the first unread message of the chat as it was opened: `undefined` until the chat
 *  list and the history are both there, `null` when nothing (loaded) was unread. Taken once, so
 *  the line stays where it was while the chat is read; the read marker must wait for it. */
export function useFirstUnread(chatId: string, meId: string, messages: Message[], loaded: boolean): number | null | undefined {
  const chats = useChats();
  const [first, setFirst] = useState<number | null>();
  if (first === undefined && loaded && (chats.data || chats.isError)) {
    const unread = chats.data?.find((c) => c.id === chatId)?.unread_count ?? 0;
    setFirst(firstUnreadSeq(messages, meId, unread));
  }
  return first;
}

/** `unread` counts others' messages after the read marker: the unread-th of theirs from the end. */
function firstUnreadSeq(messages: Message[], meId: string, unread: number): number | null {
  let left = unread;
  for (let i = messages.length - 1; i >= 0 && left > 0; i--) {
    if (messages[i].author.id !== meId && --left === 0) return messages[i].seq;
  }
  return null;
}

const TITLE = "Harmony";

/** "(3) Harmony": the messages unread in chats other than the open one. Signed in only. */
export function TabTitle({ activeChat }: { activeChat: string | null }) {
  const chats = useChats();
  const unread = chats.data?.reduce((n, c) => (c.id === activeChat ? n : n + c.unread_count), 0) ?? 0;
  useEffect(() => {
    document.title = unread > 0 ? `(${unread}) ${TITLE}` : TITLE;
  }, [unread]);
  useEffect(() => () => {
    document.title = TITLE;
  }, []);
  return null;
}
