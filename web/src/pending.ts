// Messages being sent: shown at once (optimistic), marked failed when the server refuses, and
// retried with the same client_msg_id so a retry can never create a second message.
import { useSyncExternalStore } from "react";

export type Pending = { clientMsgId: string; chatId: string; content: string; failed: boolean; error?: string };

let pending: Pending[] = [];
const listeners = new Set<() => void>();
const emit = () => listeners.forEach((l) => l());

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
    pending = pending.filter((p) => p.clientMsgId !== clientMsgId);
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
