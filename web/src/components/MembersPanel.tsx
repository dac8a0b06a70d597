import { useEffect, useRef, useState, type FormEvent } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, call, type Chat, type User } from "../api/client";
import { fetchPresence, LIVE_CHAT_LIMIT } from "../presence";
import { navigate } from "../router";
import { useConfirm } from "./ConfirmDialog";
import { SidePanel } from "./SidePanel";
import { focusChatList } from "./Sidebar";
import { Button, Handle, UserAvatar } from "./ui";

export function MembersPanel({ chat, me, onClose }: { chat: Chat; me: User; onClose: () => void }) {
  const queryClient = useQueryClient();
  const members = useQuery({
    queryKey: ["members", chat.id],
    queryFn: () => call(api.GET("/api/v1/chats/{id}/members", { params: { path: { id: chat.id } } })),
  });
  const [error, setError] = useState("");
  const [confirmDialog, ask] = useConfirm();
  // Members of a big chat are not shown live: ask for those listed (the server takes 100) when
  // the panel opens.
  const big = chat.member_count > LIVE_CHAT_LIMIT;
  const shown = big ? members.data?.slice(0, LIVE_CHAT_LIMIT).map((m) => m.user.id).join(",") : undefined;
  useEffect(() => {
    if (shown) void fetchPresence(shown.split(","));
  }, [shown]);
  const myRole = members.data?.find((m) => m.user.id === me.id)?.role;
  const canManage = chat.kind === "group" && (myRole === "owner" || myRole === "admin");
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: ["members", chat.id] });
    void queryClient.invalidateQueries({ queryKey: ["chat", chat.id] });
    void queryClient.invalidateQueries({ queryKey: ["chats"] });
  };
  /** Whether the action went through. */
  async function run(action: () => Promise<unknown>): Promise<boolean> {
    setError("");
    try {
      await action();
      refresh();
      return true;
    } catch (e) {
      setError(e instanceof ApiError ? e.message : "Something went wrong");
      return false;
    }
  }
  const remove = (userId: string) =>
    call(api.DELETE("/api/v1/chats/{id}/members/{user_id}", { params: { path: { id: chat.id, user_id: userId } } }));
  // A removed member's row goes, and its Remove button with the focus: the focus goes on to the
  // row that takes its place (the next member's, or the one before when it was the last).
  const list = useRef<HTMLUListElement>(null);
  const refocus = useRef<{ userId: string; index: number } | null>(null);
  useEffect(() => {
    const after = refocus.current;
    if (!after || !members.data || members.data.some((m) => m.user.id === after.userId)) return;
    refocus.current = null;
    // Only a focus that went with the row: not one the user has put elsewhere since.
    if (document.activeElement && document.activeElement !== document.body) return;
    const rows = list.current?.querySelectorAll<HTMLElement>(":scope > li");
    (rows?.[Math.min(after.index, rows.length - 1)] ?? list.current)?.focus();
  }, [members.data]);
  const removeMember = (userId: string) => {
    refocus.current = { userId, index: Math.max(0, members.data?.findIndex((m) => m.user.id === userId) ?? 0) };
    void run(() => remove(userId)).then((done) => {
      if (!done) refocus.current = null;
    });
  };
  /** Out of a chat left or deleted: to the chat list, the focus on a chat still there. */
  const leave = () => {
    navigate("/");
    focusChatList(chat.id);
  };

  return (
    <SidePanel title="Members" onClose={onClose}>
      {canManage && <Rename chat={chat} onDone={refresh} />}
      <ul ref={list} tabIndex={-1} aria-label="Members of this chat" className="flex flex-col gap-2 focus-visible:outline-offset-0">
        {members.data?.map((m) => (
          // Focusable from script: the focus lands here once the member above is removed.
          <li key={m.user.id} tabIndex={-1} className="-mx-1 flex items-center gap-2 rounded-md px-1 focus-visible:outline-offset-0">
            <UserAvatar user={m.user} />
            <span className="min-w-0 flex-1 truncate">{m.user.display_name}<Handle username={m.user.username} /><span className="ml-1 text-xs text-zinc-600 dark:text-zinc-400">{m.role}</span></span>
            {canManage && m.user.id !== me.id && m.role !== "owner" && (
              <Button variant="danger" aria-label={`Remove ${m.user.display_name}`} onClick={() => ask({
                title: `Remove ${m.user.display_name}?`, body: `@${m.user.username} will no longer see this chat or its new messages.`,
                confirm: "Remove", onConfirm: () => removeMember(m.user.id) })}>Remove</Button>
            )}
          </li>
        ))}
      </ul>
      {canManage && <AddMember chatId={chat.id} onAdded={refresh} inChat={new Set(members.data?.map((m) => m.user.id))} />}
      {error && <p role="alert" className="text-sm text-red-600">{error}</p>}
      {chat.kind === "group" && myRole && myRole !== "owner" && (
        <Button variant="danger" onClick={() => ask({
          title: "Leave this chat?", body: "You will no longer see it or its new messages, unless someone adds you again.",
          confirm: "Leave", onConfirm: () => void run(async () => { await remove(me.id); leave(); }) })}>Leave chat</Button>
      )}
      {myRole === "owner" && (
        <Button variant="danger" onClick={() => ask({
          title: "Delete this chat?", body: "Its history goes too, for everyone. This cannot be undone.",
          confirm: "Delete", onConfirm: () => void run(async () => { await call(api.DELETE("/api/v1/chats/{id}", { params: { path: { id: chat.id } } })); leave(); }) })}>Delete chat</Button>
      )}
      {confirmDialog}
    </SidePanel>
  );
}

function Rename({ chat, onDone }: { chat: Chat; onDone: () => void }) {
  const [name, setName] = useState(chat.name ?? "");
  const [error, setError] = useState<string | null>(null);
  async function submit(event: FormEvent) {
    event.preventDefault();
    // Said here, not swallowed: an empty name, or whatever the server refuses.
    if (!name.trim()) {
      setError("A group needs a name.");
      return;
    }
    try {
      await call(api.PATCH("/api/v1/chats/{id}", { params: { path: { id: chat.id } }, body: { name } }));
      setError(null);
      onDone();
    } catch (e) {
      setError(e instanceof ApiError ? (Object.values(e.fields)[0] ?? e.message) : "Harmony is not reachable.");
    }
  }
  return (
    <form onSubmit={submit} className="flex flex-col gap-1">
      <div className="flex gap-2">
        <label htmlFor="rename" className="sr-only">Chat name</label>
        <input id="rename" value={name} onChange={(e) => setName(e.target.value)} aria-invalid={error ? true : undefined}
          aria-describedby={error ? "rename-error" : undefined}
          className="min-w-0 flex-1 rounded-md border border-zinc-300 px-2 py-1 dark:border-zinc-700 dark:bg-zinc-900" />
        <Button type="submit" variant="ghost">Rename</Button>
      </div>
      {error && <p id="rename-error" role="alert" className="text-sm text-red-600 dark:text-red-400">{error}</p>}
    </form>
  );
}

/** Search and add; people already in the chat (the caller too) are not offered. */
function AddMember({ chatId, onAdded, inChat }: { chatId: string; onAdded: () => void; inChat: Set<string> }) {
  const [search, setSearch] = useState("");
  const found = useQuery({
    queryKey: ["user-search", search],
    queryFn: () => call(api.GET("/api/v1/users", { params: { query: { search } } })),
    enabled: search.trim().length > 0,
  });
  return (
    <div className="flex flex-col gap-2">
      <label htmlFor="add-member" className="text-sm font-medium">Add someone</label>
      <input id="add-member" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="username"
        className="rounded-md border border-zinc-300 px-2 py-1 dark:border-zinc-700 dark:bg-zinc-900" />
      <ul>
        {found.data?.filter((u) => !inChat.has(u.id)).map((u) => (
          <li key={u.id} className="flex items-center justify-between gap-2 py-1 text-sm">
            <span>{u.display_name} <span className="text-zinc-600 dark:text-zinc-400">@{u.username}</span></span>
            <Button variant="ghost" onClick={() => void call(api.POST("/api/v1/chats/{id}/members", {
              params: { path: { id: chatId } }, body: { user_id: u.id } })).then(onAdded, () => undefined)}>Add</Button>
          </li>
        ))}
      </ul>
    </div>
  );
}
