// The open chat's header. A group shows its name and how many members it has; a direct chat shows
// the other person: avatar with presence, display name, @username and when last seen.
import type { RefObject } from "react";
import type { Chat, User } from "../api/client";
import { setMuted, useMuted } from "../notify";
import { lastSeenText, usePresence, useNow } from "../presence";
import { navigate } from "../router";
import { BellIcon, Button, UserAvatar } from "./ui";

type Props = {
  chat: Chat | undefined;
  chatId: string;
  title: string;
  peer: User | undefined;
  me: User;
  panelOpen: boolean;
  panelButton: RefObject<HTMLButtonElement | null>;
  onTogglePanel: () => void;
};

export function ChatHeader({ chat, chatId, title, peer, me, panelOpen, panelButton, onTogglePanel }: Props) {
  const direct = chat?.kind === "direct";
  return (
    <header className="flex items-center gap-2 border-b border-zinc-200 p-3 dark:border-zinc-800">
      <Button variant="ghost" className="md:hidden" aria-label="Back to chats" onClick={() => navigate("/")}>←</Button>
      {direct && peer && <UserAvatar user={peer} />}
      <div className="min-w-0 flex-1">
        <h2 className="truncate text-lg font-semibold" data-testid="chat-title">{title}</h2>
        {direct && peer && <PeerLine peer={peer} />}
      </div>
      {chat && !direct && <span className="text-sm text-zinc-600 dark:text-zinc-400">{chat.member_count === 1 ? "1 member" : `${chat.member_count} members`}</span>}
      <MuteToggle meId={me.id} chatId={chatId} />
      <Button ref={panelButton} variant="ghost" aria-expanded={panelOpen} onClick={onTogglePanel}>{direct ? "Profile" : "Members"}</Button>
    </header>
  );
}

/** "@ann · online", or "@ann · last seen 5 min ago" once she has gone. */
export function PeerLine({ peer }: { peer: User }) {
  const presence = usePresence(peer.id);
  const now = useNow();
  const status =
    !presence ? "" :
    presence.status !== "offline" ? ` · ${presence.status}` :
    presence.last_seen ? ` · last seen ${lastSeenText(presence.last_seen, now)}` : " · offline";
  return <p className="truncate text-xs text-zinc-600 dark:text-zinc-400" data-testid="peer-line">@{peer.username}{status}</p>;
}

/** Notifications for this chat on or off, for this user on this browser. */
function MuteToggle({ meId, chatId }: { meId: string; chatId: string }) {
  const muted = useMuted(meId, chatId);
  return (
    <Button variant="ghost" aria-pressed={muted} aria-label="Mute notifications" title={muted ? "Notifications muted" : "Mute notifications"}
      onClick={() => setMuted(meId, chatId, !muted)}>
      <BellIcon off={muted} />
    </Button>
  );
}
