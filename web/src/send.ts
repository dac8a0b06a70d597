// Sending a message optimistically: it shows at once as pending; on success it joins the
// history; on failure it stays, marked failed, and a retry sends the same client_msg_id, so the
// server can never create it twice.
import type { QueryClient } from "@tanstack/react-query";
import { api, ApiError, call } from "./api/client";
import { insertMessage } from "./data";
import { pendingStore, type Pending } from "./pending";

export async function deliver(queryClient: QueryClient, p: Pending): Promise<void> {
  pendingStore.update(p.clientMsgId, { failed: false, error: undefined });
  try {
    const message = await call(api.POST("/api/v1/chats/{id}/messages", {
      params: { path: { id: p.chatId } },
      body: { content: p.content, client_msg_id: p.clientMsgId },
    }));
    insertMessage(queryClient, message);
    pendingStore.remove(p.clientMsgId);
  } catch (e) {
    const error = e instanceof ApiError ? (e.code === "rate_limited" ? "too many messages, wait a moment" : e.message) : "network error";
    pendingStore.update(p.clientMsgId, { failed: true, error });
  }
}

export function send(queryClient: QueryClient, chatId: string, content: string): void {
  const p: Pending = { clientMsgId: crypto.randomUUID(), chatId, content, failed: false };
  pendingStore.add(p);
  void deliver(queryClient, p);
}
