import { useState } from "react";
import { useQuery, useQueryClient } from "@tanstack/react-query";
import { api, ApiError, call, type FriendRequest, type User } from "../api/client";
import { lastSeenText, useNow, usePresence } from "../presence";
import { navigate } from "../router";
import { Avatar, Button, Handle } from "./ui";

export function FriendsPage({ me }: { me: User }) {
  const queryClient = useQueryClient();
  const friends = useQuery({ queryKey: ["friends"], queryFn: () => call(api.GET("/api/v1/friends")) });
  const requests = useQuery({ queryKey: ["friend-requests"], queryFn: () => call(api.GET("/api/v1/friends/requests")) });
  const [search, setSearch] = useState("");
  const [notice, setNotice] = useState("");
  const found = useQuery({
    queryKey: ["user-search", search],
    queryFn: () => call(api.GET("/api/v1/users", { params: { query: { search } } })),
    enabled: search.trim().length > 0,
  });
  const refresh = () => {
    void queryClient.invalidateQueries({ queryKey: ["friends"] });
    void queryClient.invalidateQueries({ queryKey: ["friend-requests"] });
  };
  async function run(action: () => Promise<unknown>, done: string) {
    try {
      await action();
      setNotice(done);
      refresh();
    } catch (e) {
      setNotice(e instanceof ApiError ? e.message : "Something went wrong");
    }
  }
  async function message(user: User) {
    const chat = await call(api.POST("/api/v1/chats", { body: { kind: "direct", member_ids: [user.id] } }));
    await queryClient.invalidateQueries({ queryKey: ["chats"] });
    navigate(`/chats/${chat.id}`);
  }
  /** Where the caller stands with `u`, when a friend request would make no sense. */
  const relation = (u: User) =>
    friends.data?.some((f) => f.id === u.id) ? "Friend" :
    requests.data?.outgoing.some((r) => r.to.id === u.id) ? "Request sent" :
    requests.data?.incoming.some((r) => r.from.id === u.id) ? "Wants to be friends" : null;
  const answer = (r: FriendRequest, accept: boolean) =>
    run(() => call(api.POST(accept ? "/api/v1/friends/requests/{id}/accept" : "/api/v1/friends/requests/{id}/decline",
      { params: { path: { id: r.id } } })), accept ? `You and ${r.from.display_name} are friends.` : "Request declined.");

  return (
    <section aria-label="Friends" className="flex flex-1 flex-col gap-6 overflow-y-auto p-4">
      <div className="flex items-center gap-2">
        <Button variant="ghost" className="md:hidden" aria-label="Back to chats" onClick={() => navigate("/")}>←</Button>
        <h2 className="text-lg font-semibold">Friends</h2>
      </div>
      {notice && <p role="status" className="text-sm text-zinc-600 dark:text-zinc-300">{notice}</p>}
      <div className="flex flex-col gap-2">
        <label htmlFor="friend-search" className="text-sm font-medium">Find people</label>
        <input id="friend-search" value={search} onChange={(e) => setSearch(e.target.value)} placeholder="username"
          className="max-w-sm rounded-md border border-zinc-300 px-3 py-2 dark:border-zinc-700 dark:bg-zinc-900" />
        <ul className="max-w-sm">
          {found.data?.filter((u) => u.id !== me.id).map((u) => (
            <li key={u.id} className="flex items-center gap-2 py-1">
              <Avatar name={u.display_name} /><span className="flex-1">{u.display_name} <span className="text-zinc-600 dark:text-zinc-400">@{u.username}</span></span>
              {relation(u) ? <span className="text-sm text-zinc-600 dark:text-zinc-400">{relation(u)}</span> : (
                <Button variant="ghost" onClick={() => void run(() => call(api.POST("/api/v1/friends/requests", { body: { username: u.username } })), `Request sent to ${u.display_name}.`)}>
                  Add friend
                </Button>
              )}
            </li>
          ))}
        </ul>
      </div>
      <Requests title="Incoming requests" items={requests.data?.incoming} render={(r) => (
        <>
          <span className="flex-1">{r.from.display_name}<Handle username={r.from.username} /></span>
          <Button onClick={() => void answer(r, true)}>Accept</Button>
          <Button variant="ghost" onClick={() => void answer(r, false)}>Decline</Button>
        </>
      )} />
      <Requests title="Sent requests" items={requests.data?.outgoing} render={(r) => <span className="flex-1">{r.to.display_name}<Handle username={r.to.username} /> — pending</span>} />
      <div>
        <h3 className="mb-2 font-semibold">Your friends</h3>
        <ul className="flex max-w-md flex-col gap-1" data-testid="friends">
          {friends.data?.map((f) => (
            <li key={f.id} className="flex items-center gap-2">
              <FriendName friend={f} />
              <Button onClick={() => void message(f)}>Message</Button>
              <Button variant="danger" onClick={() => void run(() => call(api.DELETE("/api/v1/friends/{user_id}", { params: { path: { user_id: f.id } } })), "Removed.")}>Remove</Button>
            </li>
          ))}
          {friends.data?.length === 0 && <li className="text-sm text-zinc-600 dark:text-zinc-400">No friends yet: find people above.</li>}
        </ul>
      </div>
    </section>
  );
}

/** A friend with their presence; when offline, since when if known. */
function FriendName({ friend }: { friend: User }) {
  const presence = usePresence(friend.id);
  const now = useNow();
  const lastSeen = presence?.status === "offline" && presence.last_seen ? `last seen ${lastSeenText(presence.last_seen, now)}` : null;
  return (
    <>
      <Avatar name={friend.display_name} presence={presence?.status} />
      <span className="flex min-w-0 flex-1 flex-col">
        <span>{friend.display_name}<Handle username={friend.username} /></span>
        {lastSeen && <span className="text-xs text-zinc-600 dark:text-zinc-400" data-testid="last-seen">{lastSeen}</span>}
      </span>
    </>
  );
}

function Requests({ title, items, render }: { title: string; items?: FriendRequest[]; render: (r: FriendRequest) => React.ReactNode }) {
  if (!items?.length) return null;
  return (
    <div>
      <h3 className="mb-2 font-semibold">{title}</h3>
      <ul className="flex max-w-md flex-col gap-1">
        {items.map((r) => <li key={r.id} className="flex items-center gap-2">{render(r)}</li>)}
      </ul>
    </div>
  );
}
