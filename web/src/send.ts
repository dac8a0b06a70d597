// Sending a message optimistically: it shows at once as pending; on success it joins the
// history. Cut off by a lost connection it waits, and goes out by itself when the connection is
// back, after a reload too (pending.ts keeps it). Every retry sends the same client_msg_id, so
// the server can never create it twice.
import { useEffect } from "react";
import { useQueryClient, type QueryClient } from "@tanstack/react-query";
import { api, ApiError, call, type ReplyTo } from "./api/client";
import { insertMessage } from "./data";
import { live } from "./live";
import { pendingStore, type Pending } from "./pending";

export async function deliver(queryClient: QueryClient, p: Pending): Promise<void> {
  pendingStore.update(p.clientMsgId, { status: "sending", error: undefined });
  try {
    const message = await call(api.POST("/api/v1/chats/{id}/messages", {
      params: { path: { id: p.chatId } },
      body: { content: p.content, client_msg_id: p.clientMsgId, reply_to: p.replyTo?.id },
    }));
    // Removes the pending copy too, once the history shows the message.
    insertMessage(queryClient, { ...message, client_msg_id: p.clientMsgId });
    retryDelay = FIRST_RETRY_MS;
  } catch (e) {
    const patch = failure(e);
    pendingStore.update(p.clientMsgId, patch);
    // A blip the live connection did not notice (it stays up): no reconnect will come to say
    // the way is clear, so try again in a while.
    if (patch.status === "offline" && live.status === "online") resendSoon(queryClient);
  }
}

/** What a failed send becomes: waiting for the connection, worth a retry, or refused as it is. */
function failure(e: unknown): Partial<Pending> {
  // No answer at all (fetch threw): the connection is down.
  if (!(e instanceof ApiError)) return { status: "offline" };
  if (e.code === "rate_limited") return { status: "failed", error: "too many messages, wait a moment" };
  if (e.status >= 500 || e.status === 408 || e.status === 429) return { status: "failed", error: e.message };
  // Invalid as it is (4xx): sending it again would only be refused again.
  const field = e.fields.content;
  return { status: "refused", error: field ? `the message ${field}` : e.message };
}

/** Sends a message; `replyTo` is the message it answers, if any. */
export function send(queryClient: QueryClient, chatId: string, content: string, replyTo?: ReplyTo): void {
  const p: Pending = { clientMsgId: crypto.randomUUID(), chatId, content, createdAt: new Date().toISOString(), status: "sending", replyTo };
  // Behind a message that waits for the connection, it waits too: the order is kept.
  if (pendingStore.all().some((x) => x.chatId === chatId && x.status === "offline")) {
    pendingStore.add({ ...p, status: "offline" });
    void resendOffline(queryClient);
    return;
  }
  pendingStore.add(p);
  void deliver(queryClient, p);
}

const FIRST_RETRY_MS = 2000;
let retryDelay = FIRST_RETRY_MS;
let retryTimer: number | undefined;

function resendSoon(queryClient: QueryClient): void {
  window.clearTimeout(retryTimer);
  retryTimer = window.setTimeout(() => void resendOffline(queryClient), retryDelay);
  retryDelay = Math.min(retryDelay * 2, 30_000);
}

let resending = false;
const nextOffline = () => pendingStore.all().find((p) => p.status === "offline");

/** Sends what waits for the connection, oldest first and one at a time (so the server keeps
 *  their order); stops at the first that still cannot go out. */
export async function resendOffline(queryClient: QueryClient): Promise<void> {
  if (resending) return;
  resending = true;
  try {
    for (let p = nextOffline(); p; p = nextOffline()) {
      await deliver(queryClient, p);
      if (pendingStore.get(p.clientMsgId)?.status === "offline") break;
    }
  } finally {
    resending = false;
  }
}

/** Messages that waited for the connection go out as soon as the live connection is back;
 *  so do those the signed-in user left unsent before a reload. */
export function useAutoResend(meId: string | undefined): void {
  const queryClient = useQueryClient();
  useEffect(() => {
    if (!meId) return;
    pendingStore.restore(meId);
    if (live.status === "online") void resendOffline(queryClient);
    return live.onStatus((s) => {
      if (s === "online") void resendOffline(queryClient);
    });
  }, [meId, queryClient]);
}
