import { useRef, useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, call, type ChatListItem, type User } from "../api/client";
import { useChats } from "../data";
import { usePermission } from "../notify";
import { usePresence } from "../presence";
import { navigate } from "../router";
import { signOut } from "../session";
import { useChatTitle, usePeer } from "../titles";
import { focusComposer } from "./Composer";
import { openQuickSwitcher, shortcut } from "./QuickSwitcher";
import { Avatar, Badge, BellIcon, Button, Handle } from "./ui";

export function Sidebar({ me, activeChat }: { me: User; activeChat: string | null }) {
  const chats = useChats();
  const queryClient = useQueryClient();
  const [creating, setCreating] = useState(false);
  const newGroup = useRef<HTMLButtonElement>(null);
  // Kept current by `friend_request` frames: no polling.
  const requests = useQuery({ queryKey: ["friend-requests"], queryFn: () => call(api.GET("/api/v1/friends/requests")) });
  const incoming = requests.data?.incoming.length ?? 0;
  return (
    <aside aria-label="Chats" className="flex w-full flex-col border-r border-zinc-200 dark:border-zinc-800">
      <header className="flex items-center gap-2 border-b border-zinc-200 p-3 dark:border-zinc-800">
        <Avatar name={me.display_name} />
        <span className="min-w-0 flex-1 truncate font-semibold" data-testid="me">{me.display_name}</span>
        <EnableNotifications />
        <ThemeToggle />
        <Button variant="ghost" onClick={() => void signOut(queryClient)}>Sign out</Button>
      </header>
      <nav className="flex gap-1 p-2">
        <Button variant="ghost" onClick={() => navigate("/friends")}>
          Friends <Badge count={incoming} label={`${incoming} friend requests waiting`} />
        </Button>
        <Button ref={newGroup} variant="ghost" onClick={() => setCreating((c) => !c)} aria-expanded={creating}>New group</Button>
        <Button variant="ghost" onClick={openQuickSwitcher} aria-keyshortcuts={shortcut.aria}>
          Jump to chat <kbd aria-hidden className="ml-1 hidden font-sans text-xs text-zinc-600 dark:text-zinc-400 md:inline">{shortcut.label}</kbd>
        </Button>
      </nav>
      {creating && <NewGroup onDone={() => setCreating(false)} onCancel={() => { setCreating(false); newGroup.current?.focus(); }} />}
      {/* Focusable from script: where the focus goes when a chat is left or deleted and no other
          is left to take it. */}
      <ul tabIndex={-1} aria-label="Chat list" className="min-h-0 flex-1 overflow-y-auto focus-visible:-outline-offset-2" data-testid="chat-list">
        {chats.data?.map((c) => <ChatRow key={c.id} chat={c} me={me} active={c.id === activeChat} />)}
        {chats.data?.length === 0 && <li className="p-4 text-sm text-zinc-600 dark:text-zinc-400">No chats yet. Find friends or start a group.</li>}
      </ul>
    </aside>
  );
}

/** Puts the focus on the chat list once it shows (a phone shows it instead of the chat): on the
 *  newest chat but `except` (one just left or deleted, which the list may hold a moment more),
 *  or on the list itself when no other chat is left. */
export function focusChatList(except?: string): void {
  let frames = 0;
  const attempt = () => {
    const list = document.querySelector<HTMLElement>('[data-testid="chat-list"]');
    const rows = [...(list?.querySelectorAll<HTMLAnchorElement>(":scope > li > a[href]") ?? [])];
    const target = rows.find((a) => a.getAttribute("href") !== `/chats/${except}`) ?? list;
    if (target && target.getClientRects().length > 0) target.focus();
    // Hidden until the page has changed: tried again on the next frames.
    if (document.activeElement !== target && ++frames < 60) requestAnimationFrame(attempt);
  };
  requestAnimationFrame(attempt);
}

function ChatRow({ chat, me, active }: { chat: ChatListItem; me: User; active: boolean }) {
  const title = useChatTitle(chat, me);
  // A direct chat shows whether the other person is around.
  const peer = usePeer(chat, me);
  const presence = usePresence(peer?.id)?.status;
  const last = chat.last_message;
  // The open chat is being read: whatever the list says, it has nothing unread.
  const unread = active ? 0 : chat.unread_count;
  const mentioned = active ? 0 : (chat.mention_count ?? 0);
  const preview = !last ? undefined : last.deleted_at ? "This message was deleted" : last.content;
  return (
    <li>
      <a href={`/chats/${chat.id}`} onClick={(e) => { e.preventDefault(); if (active) focusComposer(); else navigate(`/chats/${chat.id}`); }}
        aria-current={active ? "page" : undefined}
        // The ring is drawn inside: the list scrolls, and would clip one drawn outside.
        className={`flex items-center gap-3 px-3 py-2 hover:bg-zinc-100 focus-visible:-outline-offset-2 focus-visible:bg-zinc-100 dark:focus-visible:bg-zinc-900 dark:hover:bg-zinc-900 ${active ? "bg-zinc-100 dark:bg-zinc-900" : ""}`}>
        <Avatar name={title} presence={presence} />
        <span className="min-w-0 flex-1">
          <span className="flex items-center justify-between gap-2">
            <span className="truncate font-medium">{title}</span>
            <span className="flex shrink-0 items-center gap-1">
              <MentionBadge count={mentioned} />
              <Badge count={unread} label={`${unread} unread`} />
            </span>
          </span>
          <span className="block truncate text-sm text-zinc-600 dark:text-zinc-400">
            {last ? `${last.author.id === me.id ? "You" : last.author.display_name}: ${preview}` : chat.kind === "group" ? "Group" : "Say hello"}
          </span>
        </span>
      </a>
    </li>
  );
}

/** "@2": messages after the read marker that mention the user (or everyone). */
function MentionBadge({ count }: { count: number }) {
  if (count <= 0) return null;
  return (
    <span aria-label={`${count} ${count === 1 ? "mention" : "mentions"}`} data-testid="mention-badge"
      className="rounded-full bg-red-700 px-1.5 text-xs font-semibold text-white">
      @{count > 99 ? "99+" : count}
    </span>
  );
}

function NewGroup({ onDone, onCancel }: { onDone: () => void; onCancel: () => void }) {
  const friends = useQuery({ queryKey: ["friends"], queryFn: () => call(api.GET("/api/v1/friends")) });
  const queryClient = useQueryClient();
  const [error, setError] = useState("");
  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    try {
      const chat = await call(api.POST("/api/v1/chats", {
        body: { kind: "group", name: String(form.get("name") ?? ""), member_ids: form.getAll("member").map(String) },
      }));
      await queryClient.invalidateQueries({ queryKey: ["chats"] });
      onDone();
      navigate(`/chats/${chat.id}`);
    } catch (e) {
      setError(e instanceof Error ? e.message : "Could not create the group");
    }
  }
  return (
    <form onSubmit={submit} onKeyDown={(e) => {
        // This form only: not the members panel too.
        if (e.key !== "Escape") return;
        e.preventDefault();
        e.stopPropagation();
        onCancel();
      }}
      className="flex flex-col gap-2 border-y border-zinc-200 p-3 dark:border-zinc-800">
      <label htmlFor="group-name" className="text-sm font-medium">Group name</label>
      <input id="group-name" name="name" required autoFocus className="rounded-md border border-zinc-300 px-2 py-1 dark:border-zinc-700 dark:bg-zinc-900" />
      <fieldset className="flex flex-col gap-1 text-sm">
        <legend className="font-medium">Members</legend>
        {friends.data?.map((f) => (
          <label key={f.id} className="flex items-center gap-2"><input type="checkbox" name="member" value={f.id} />{f.display_name}<Handle username={f.username} /></label>
        ))}
        {friends.data?.length === 0 && <span className="text-zinc-600 dark:text-zinc-400">Add friends to invite them.</span>}
      </fieldset>
      {error && <p role="alert" className="text-sm text-red-600">{error}</p>}
      <Button type="submit">Create</Button>
    </form>
  );
}

function ThemeToggle() {
  const [dark, setDark] = useState(() => document.documentElement.classList.contains("dark"));
  return (
    <Button variant="ghost" aria-label={dark ? "Use light theme" : "Use dark theme"} onClick={() => {
      const next = !dark;
      document.documentElement.classList.toggle("dark", next);
      localStorage.setItem("harmony.theme", next ? "dark" : "light");
      setDark(next);
    }}>{dark ? "☀" : "☾"}</Button>
  );
}

/** Asks for permission only when clicked; gone once the browser has an answer. */
function EnableNotifications() {
  const [permission, ask] = usePermission();
  if (permission !== "default") return null;
  return <Button variant="ghost" aria-label="Enable notifications" title="Enable notifications" onClick={ask}><BellIcon /></Button>;
}
