// Messages being sent: shown at once (optimistic) as the sender's own, kept when they cannot go
// out, and sent again with the same client_msg_id so a retry can never create a second message.
// Each is also kept in localStorage (per user and chat, under its client_msg_id) until it is
// sent or dropped, so a reload loses none; sign-out forgets them all.
import { useSyncExternalStore } from "react";
import type { ReplyTo } from "./api/client";

/** sending: on its way. offline: the connection was down; it goes out when it is back.
 *  failed: the server could not take it now (overloaded, rate limited); Retry may work.
 *  refused: the server will never take it as it is (invalid); the text can be edited. */
export type PendingStatus = "sending" | "offline" | "failed" | "refused";
/** `replyTo`: the message it answers, quoted as it was when the reply was written. */
export type Pending = { clientMsgId: string; chatId: string; content: string; createdAt: string; status: PendingStatus; error?: string; replyTo?: ReplyTo };

let pending: Pending[] = [];
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());
const editListeners = new Set<(chatId: string, content: string) => void>();

const PREFIX = "harmony.pending.";
/** The signed-in user whose messages these are: none is stored until one is known. */
let owner: string | null = null;
const storageKey = (userId: string, p: Pending) => `${PREFIX}${userId}.${p.chatId}.${p.clientMsgId}`;

/** Each message under a key of its own: two tabs of one user never overwrite each other's. */
function store(p: Pending): void {
  if (!owner) return;
  try {
    localStorage.setItem(storageKey(owner, p), JSON.stringify(p));
  } catch {
    // Storage full or turned off: the message lasts as long as the page.
  }
}

function unstore(p: Pending): void {
  if (!owner) return;
  try {
    localStorage.removeItem(storageKey(owner, p));
  } catch {
    // Nothing could be stored either.
  }
}

const STATUSES: readonly PendingStatus[] = ["sending", "offline", "failed", "refused"];

/** A stored message as it was written, or null for anything else under the key. */
function parse(raw: string | null): Pending | null {
  try {
    const p = JSON.parse(raw ?? "null") as Partial<Pending> | null;
    if (!p || typeof p.clientMsgId !== "string" || typeof p.chatId !== "string" || typeof p.content !== "string"
      || typeof p.createdAt !== "string" || !STATUSES.includes(p.status as PendingStatus)) return null;
    return p as Pending;
  } catch {
    return null;
  }
}

export const pendingStore = {
  add(p: Pending) {
    pending = [...pending.filter((x) => x.clientMsgId !== p.clientMsgId), p];
    store(p);
    emit();
  },
  update(clientMsgId: string, patch: Partial<Pending>) {
    const at = pending.findIndex((p) => p.clientMsgId === clientMsgId);
    if (at < 0) return;
    const next = { ...pending[at], ...patch };
    pending = pending.map((p, i) => (i === at ? next : p));
    store(next);
    emit();
  },
  remove(clientMsgId: string) {
    const gone = pending.find((p) => p.clientMsgId === clientMsgId);
    if (!gone) return;
    pending = pending.filter((p) => p.clientMsgId !== clientMsgId);
    unstore(gone);
    emit();
  },
  /** Signed in (or reloaded): takes back what this user left unsent in this browser. Whatever
   *  could still go out waits for the connection, to be sent with its client_msg_id (the
   *  server takes one it already has as the same message); a refused one stays refused. */
  restore(userId: string) {
    if (owner === userId) return;
    owner = userId;
    const kept: Pending[] = [];
    try {
      for (const key of Object.keys(localStorage)) {
        if (!key.startsWith(`${PREFIX}${userId}.`)) continue;
        const p = parse(localStorage.getItem(key));
        if (p && key === storageKey(userId, p)) kept.push(p.status === "refused" ? p : { ...p, status: "offline", error: undefined });
        else localStorage.removeItem(key);
      }
    } catch {
      // No storage: nothing was kept.
    }
    const known = new Set(pending.map((p) => p.clientMsgId));
    const all = [...pending, ...kept.filter((p) => !known.has(p.clientMsgId))];
    // Oldest first: they go out in the order they were written.
    pending = all.sort((a, b) => a.createdAt.localeCompare(b.createdAt));
    pending.forEach(store);
    emit();
  },
  /** Every message not sent yet, oldest first. */
  all(): readonly Pending[] {
    return pending;
  },
  get(clientMsgId: string): Pending | undefined {
    return pending.find((p) => p.clientMsgId === clientMsgId);
  },
  /** Takes a refused message back into its chat's composer, to be fixed and sent anew. */
  edit(p: Pending) {
    pendingStore.remove(p.clientMsgId);
    editListeners.forEach((l) => l(p.chatId, p.content));
  },
  onEdit(listener: (chatId: string, content: string) => void): () => void {
    editListeners.add(listener);
    return () => editListeners.delete(listener);
  },
  /** Sign-out: what one user left unsent is not the next one's, in this tab or stored. */
  clear() {
    pending = [];
    owner = null;
    try {
      for (const key of Object.keys(localStorage)) if (key.startsWith(PREFIX)) localStorage.removeItem(key);
    } catch {
      // Nothing could be stored either.
    }
    emit();
  },
};

export function usePending(chatId: string): Pending[] {
  const all = useSyncExternalStore(
    (l) => {
      listeners.add(l);
      return () => listeners.delete(l);
    },
    () => pending,
  );
  return all.filter((p) => p.chatId === chatId);
}
