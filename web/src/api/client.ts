// The API client, generated from the server's OpenAPI document (src/api/schema.d.ts), wrapped
// for cookie sessions: the server keeps the tokens in HttpOnly cookies; unsafe requests echo the
// CSRF cookie in X-CSRF-Token; a 401 triggers one silent refresh, then a retry.
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";

export type User = components["schemas"]["UserDto"];
export type Message = components["schemas"]["MessageDto"];
export type Chat = components["schemas"]["ChatDto"];
export type ChatListItem = components["schemas"]["ChatListItem"];
export type Member = components["schemas"]["MemberDto"];
export type FriendRequest = components["schemas"]["FriendRequestDto"];
export type Problem = components["schemas"]["Problem"];
export type ServerFrame = components["schemas"]["ServerFrame"];
export type ClientFrame = components["schemas"]["ClientFrame"];
export type Presence = components["schemas"]["PresenceDto"];
export type PresenceStatus = components["schemas"]["PresenceStatusDto"];
/** What a session shows of its user: online, idle or invisible. */
export type Shown = components["schemas"]["ShownDto"];
/** An edit, a delete, a reaction added or removed: an entry of the chat's log, like a message. */
export type MessageChange = Extract<ServerFrame, { type: "message_changed" }>["change"];
export type Reaction = NonNullable<Message["reactions"]>[number];
/** The message a reply answers, as the reply shows it. */
export type ReplyTo = NonNullable<Message["reply_to"]>;

/** A refused request: its status and the problem+json body. */
export class ApiError extends Error {
  constructor(public status: number, public problem: Partial<Problem>) {
    super(problem.title ?? `HTTP ${status}`);
  }
  get code(): string | undefined {
    return this.problem.code;
  }
  /** Field name → message, for forms. */
  get fields(): Record<string, string> {
    return Object.fromEntries((this.problem.errors ?? []).map((e) => [e.field, e.message]));
  }
}

export function csrfToken(): string {
  const m = document.cookie.match(/(?:^|;\s*)(?:__Host-)?harmony_csrf=([^;]+)/);
  return m ? decodeURIComponent(m[1]) : "";
}

const sessionEndedListeners = new Set<() => void>();
export function onSessionEnded(listener: () => void): () => void {
  sessionEndedListeners.add(listener);
  return () => sessionEndedListeners.delete(listener);
}

let refreshing: Promise<boolean> | null = null;
/** Exchanges the refresh cookie for new cookies; concurrent callers share one request. */
export function refreshSession(): Promise<boolean> {
  refreshing ??= fetch("/api/v1/auth/refresh", {
    method: "POST",
    credentials: "same-origin",
    headers: { "X-CSRF-Token": csrfToken() },
  })
    .then((r) => r.ok)
    .catch(() => false)
    .finally(() => {
      refreshing = null;
    });
  return refreshing;
}

function prepare(request: Request): Request {
  const headers = new Headers(request.headers);
  headers.set("X-Session-Mode", "cookie");
  if (!["GET", "HEAD"].includes(request.method)) headers.set("X-CSRF-Token", csrfToken());
  return new Request(request, { headers, credentials: "same-origin" });
}

async function harmonyFetch(request: Request): Promise<Response> {
  const retry = request.clone();
  const response = await fetch(prepare(request));
  if (response.status !== 401 || new URL(request.url).pathname.startsWith("/api/v1/auth/")) return response;
  if (await refreshSession()) return fetch(prepare(retry));
  sessionEndedListeners.forEach((l) => l());
  return response;
}

export const api = createClient<paths>({ baseUrl: "", fetch: harmonyFetch });

/** Unwraps an openapi-fetch result: the data, or an ApiError. */
export async function call<T>(result: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  const { data, error, response } = await result;
  if (!response.ok) throw new ApiError(response.status, (error ?? {}) as Partial<Problem>);
  return data as T;
}
