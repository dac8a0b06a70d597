// Browser notifications: while the tab is hidden, a message from someone else in a chat that is
// not muted shows a system notification. Permission is asked only when the user clicks "Enable
// notifications", never on load. Mutes are kept per user and chat in localStorage.
import { useEffect, useState, useSyncExternalStore } from "react";
import { useQueryClient } from "@tanstack/react-query";
import type { ChatListItem, Message } from "./api/client";
import { live } from "./live";
import { navigate } from "./router";

const supported = () => typeof window !== "undefined" && "Notification" in window;

/** "default" until asked; "unsupported" where the browser has no notifications. */
export function usePermission(): [NotificationPermission | "unsupported", () => void] {
  const [permission, setPermission] = useState<NotificationPermission | "unsupported">(() => (supported() ? Notification.permission : "unsupported"));
  const ask = () => {
    if (!supported()) return;
    void Promise.resolve(Notification.requestPermission()).then(setPermission, () => setPermission(Notification.permission));
  };
  return [permission, ask];
}

const muteKey = (meId: string, chatId: string) => `harmony.mute.${meId}.${chatId}`;
const muteListeners = new Set<() => void>();

export function isMuted(meId: string, chatId: string): boolean {
  return localStorage.getItem(muteKey(meId, chatId)) === "1";
}

export function setMuted(meId: string, chatId: string, muted: boolean): void {
  if (muted) localStorage.setItem(muteKey(meId, chatId), "1");
  else localStorage.removeItem(muteKey(meId, chatId));
  muteListeners.forEach((l) => l());
}

/** Whether the chat is muted for this user, kept current across components. */
export function useMuted(meId: string, chatId: string): boolean {
  return useSyncExternalStore(
    (l) => {
      muteListeners.add(l);
      return () => muteListeners.delete(l);
    },
    () => isMuted(meId, chatId),
  );
}

const MAX_BODY = 100;

/** "author: text", at most 100 characters (an ellipsis ends a cut one). */
export function notificationBody(message: Message): string {
  const full = [...`${message.author.display_name}: ${message.content}`];
  return full.length <= MAX_BODY ? full.join("") : `${full.slice(0, MAX_BODY - 1).join("")}…`;
}

/** Shows a notification for each message that arrives while the tab is hidden. */
export function useNotifications(meId: string | undefined): void {
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!meId) return;
    const shown = new Set<string>();
    return live.onFrame((frame) => {
      if (frame.type !== "message") return;
      const message = frame.message;
      if (document.visibilityState !== "hidden" || message.author.id === meId) return;
      if (!supported() || Notification.permission !== "granted" || isMuted(meId, message.chat_id)) return;
      if (shown.has(message.id)) return;
      shown.add(message.id);
      const chat = queryClient.getQueryData<ChatListItem[]>(["chats"])?.find((c) => c.id === message.chat_id);
      // A direct chat is named after the other person: the author.
      const title = chat?.kind === "group" ? (chat.name ?? "Group") : message.author.display_name;
      try {
        const note = new Notification(title, { body: notificationBody(message), tag: message.chat_id });
        note.onclick = () => {
          window.focus();
          navigate(`/chats/${message.chat_id}`);
          note.close();
        };
      } catch {
        // Some browsers (Android Chrome) allow notifications only from a service worker.
      }
    });
  }, [meId, queryClient]);
}
