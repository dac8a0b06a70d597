// Who is online: a store of user id → presence, filled by `GET /presence` on every `ready` and
// kept current by `presence` frames. Each entry remembers when it was learnt, so a fetch's answer
// never overwrites what a frame said after the fetch was asked.
import { useEffect, useState, useSyncExternalStore } from "react";
import { api, call, type Presence as Dto, type PresenceStatus } from "./api/client";
import { live } from "./live";

export type { PresenceStatus };
export type Presence = { status: PresenceStatus; last_seen: string | null };

/** The server shows live only chats of at most this many members. */
export const LIVE_CHAT_LIMIT = 100;

const entries = new Map<string, Presence & { stamp: number }>();
const listeners = new Set<() => void>();
/** A logical clock: frames and fetches take a tick, newer ticks win. */
let clock = 0;

function set(dto: Dto, stamp: number): boolean {
  const known = entries.get(dto.user_id);
  if (known && known.stamp > stamp) return false;
  entries.set(dto.user_id, { status: dto.status, last_seen: dto.last_seen ?? null, stamp });
  return true;
}

function notify(): void {
  listeners.forEach((l) => l());
}

/** Asks the server for presence: everyone shown live, or the users named (at most 100). */
export async function fetchPresence(userIds?: string[]): Promise<void> {
  if (userIds?.length === 0) return;
  const asked = ++clock;
  const query = userIds ? { user_ids: userIds.slice(0, LIVE_CHAT_LIMIT).join(",") } : {};
  try {
    const { presence } = await call(api.GET("/api/v1/presence", { params: { query } }));
    // Only the entries no frame has updated since the request went out.
    if (presence.map((p) => set(p, asked)).some(Boolean)) notify();
  } catch {
    // Unreachable or signed out: the next `ready` asks again.
  }
}

let refetchTimer: number | undefined;
/** Who is shown live changed (a new friend, a new chat): ask again, once for a burst of frames. */
function refetchSoon(): void {
  window.clearTimeout(refetchTimer);
  refetchTimer = window.setTimeout(() => void fetchPresence(), 300);
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** A user's presence, or undefined while unknown. */
export function usePresence(userId: string | undefined): Presence | undefined {
  return useSyncExternalStore(subscribe, () => (userId ? entries.get(userId) : undefined));
}

/** Keeps the store current while someone is signed in; forgets it all at sign-out. */
export function usePresenceSync(meId: string | undefined): void {
  useEffect(() => {
    if (!meId) return;
    if (live.status === "online") void fetchPresence();
    const off = live.onFrame((frame) => {
      switch (frame.type) {
        case "ready":
          void fetchPresence();
          break;
        case "presence":
          if (set(frame, ++clock)) notify();
          break;
        case "friend_request":
          if (frame.request.status === "accepted") refetchSoon();
          break;
        case "friend_removed":
        case "added_to_chat":
        case "member_added":
          refetchSoon();
          break;
        default:
          break;
      }
    });
    const stopIdle = watchActivity();
    return () => {
      off();
      stopIdle();
      window.clearTimeout(refetchTimer);
      entries.clear();
      notify();
    };
  }, [meId]);
}

const IDLE_AFTER_MS = 5 * 60_000;

/** Says "idle" while the tab is hidden or untouched for 5 minutes, "online" again on activity. */
function watchActivity(): () => void {
  let lastActivity = Date.now();
  let timer: number | undefined;
  const update = () => {
    const away = document.visibilityState === "hidden" || Date.now() - lastActivity >= IDLE_AFTER_MS;
    live.presence(away ? "idle" : "online");
    window.clearTimeout(timer);
    // Checked again when the quiet spell would reach 5 minutes (activity only moves the mark).
    if (!away) timer = window.setTimeout(update, lastActivity + IDLE_AFTER_MS - Date.now());
  };
  const active = () => {
    lastActivity = Date.now();
    // Cheap for the many pointer moves: a call only when coming back from idle.
    if (live.shown === "idle") update();
  };
  const events = ["pointerdown", "pointermove", "keydown", "wheel", "touchstart", "focus"] as const;
  events.forEach((e) => window.addEventListener(e, active, { passive: true }));
  // Coming back to the tab is activity too, however long it was hidden.
  const visibility = () => {
    if (document.visibilityState === "visible") lastActivity = Date.now();
    update();
  };
  document.addEventListener("visibilitychange", visibility);
  update();
  return () => {
    events.forEach((e) => window.removeEventListener(e, active));
    document.removeEventListener("visibilitychange", visibility);
    window.clearTimeout(timer);
  };
}

/** "just now", "5 min ago", "3 h ago", or the date. */
export function lastSeenText(iso: string, now: number): string {
  const minutes = Math.floor((now - Date.parse(iso)) / 60_000);
  if (minutes < 1) return "just now";
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 24 * 60) return `${Math.floor(minutes / 60)} h ago`;
  return new Date(iso).toLocaleDateString();
}

/** The current time, renewed every `ms`: for text like "5 min ago". */
export function useNow(ms = 30_000): number {
  const [now, setNow] = useState(Date.now);
  useEffect(() => {
    const t = window.setInterval(() => setNow(Date.now()), ms);
    return () => window.clearInterval(t);
  }, [ms]);
  return now;
}
