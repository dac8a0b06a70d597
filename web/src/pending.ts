// Messages being sent: shown at once (optimistic) as the sender's own, kept when they cannot go
// out, and sent again with the same client_msg_id so a retry can never create a second message.
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

export const pendingStore = {
  add(p: Pending) {
    pending = [...pending.filter((x) => x.clientMsgId !== p.clientMsgId), p];
    emit();
  },
  update(clientMsgId: string, patch: Partial<Pending>) {
    pending = pending.map((p) => (p.clientMsgId === clientMsgId ? { ...p, ...patch } : p));
    emit();
  },
  remove(clientMsgId: string) {
    if (!pending.some((p) => p.clientMsgId === clientMsgId)) return;
    pending = pending.filter((p) => p.clientMsgId !== clientMsgId);
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
  /** Sign-out: what one user left unsent is not the next one's. */
  clear() {
    pending = [];
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
