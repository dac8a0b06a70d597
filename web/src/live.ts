// The live connection: one WebSocket per tab, reconnected with backoff, resumed from the last
// seq seen per chat so nothing is missed or shown twice. Components subscribe to frames and to
// the connection status.
import { refreshSession, type ClientFrame, type ServerFrame, type Shown } from "./api/client";

export type Status = "connecting" | "online" | "offline";
type FrameListener = (frame: ServerFrame) => void;

class Live {
  private ws: WebSocket | null = null;
  private stopped = true;
  private attempt = 0;
  private timer: number | undefined;
  private frameListeners = new Set<FrameListener>();
  private statusListeners = new Set<(s: Status) => void>();
  /** The newest seq the UI holds per chat: the position resume asks from. */
  private lastSeq = new Map<string, number>();
  /** When this tab last said it was typing, per chat. */
  private lastTyping = new Map<string, number>();
  /** What this tab wants others to see, and what the server was last told (a new session
   *  starts "online"). */
  shown: Shown = "online";
  private told: Shown = "online";
  private lastPresenceAt = 0;
  private presenceTimer: number | undefined;
  status: Status = "offline";

  constructor() {
    // The browser knows about a lost network before TCP does: drop the socket at once, and
    // reconnect (and resume) as soon as the network is back.
    window.addEventListener("offline", () => this.ws?.close());
    window.addEventListener("online", () => {
      if (!this.stopped && !this.ws) this.schedule(0);
    });
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.connect();
  }

  stop(): void {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.ws?.close(1000);
    this.ws = null;
    this.lastSeq.clear();
    window.clearTimeout(this.presenceTimer);
    this.shown = this.told = "online";
    this.setStatus("offline");
  }

  onFrame(listener: FrameListener): () => void {
    this.frameListeners.add(listener);
    return () => this.frameListeners.delete(listener);
  }

  onStatus(listener: (s: Status) => void): () => void {
    this.statusListeners.add(listener);
    return () => this.statusListeners.delete(listener);
  }

  /** Tells the chat's members that the user is typing; at most once every 3 s per chat. */
  typing(chatId: string): void {
    const now = Date.now();
    if (now - (this.lastTyping.get(chatId) ?? 0) < 3000) return;
    this.lastTyping.set(chatId, now);
    this.send({ type: "typing", chat_id: chatId });
  }

  /** A message went out: the next keystroke is a new bout of typing, told at once. */
  typingDone(chatId: string): void {
    this.lastTyping.delete(chatId);
  }

  /** Sets what others see of this tab ("online", "idle"). Sent only on change, and at most once
   *  a second (the server's limit): quick flips, like tab switching, end as one frame. */
  presence(status: Shown): void {
    this.shown = status;
    window.clearTimeout(this.presenceTimer);
    const wait = this.lastPresenceAt + 1000 - Date.now();
    if (wait > 0) this.presenceTimer = window.setTimeout(() => this.flushPresence(), wait);
    else this.flushPresence();
  }

  private flushPresence(): void {
    if (this.shown === this.told || this.ws?.readyState !== WebSocket.OPEN) return;
    this.told = this.shown;
    this.lastPresenceAt = Date.now();
    this.send({ type: "presence", status: this.shown });
  }

  /** Records that the UI holds a chat's messages up to `seq` (from history or live). */
  saw(chatId: string, seq: number): void {
    if (seq > (this.lastSeq.get(chatId) ?? 0)) this.lastSeq.set(chatId, seq);
  }

  private setStatus(status: Status): void {
    this.status = status;
    this.statusListeners.forEach((l) => l(status));
  }

  private send(frame: ClientFrame): void {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private connect(): void {
    this.setStatus("connecting");
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/api/v1/ws`);
    this.ws = ws;
    ws.onmessage = (event) => {
      let frame: ServerFrame;
      try {
        frame = JSON.parse(String(event.data)) as ServerFrame;
      } catch {
        return;
      }
      this.handle(frame);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      this.ws = null;
      this.setStatus("offline");
      if (this.stopped) return;
      if (event.code === 4001) {
        // The access token expired: refresh the cookies, then reconnect at once.
        void refreshSession().then(() => this.schedule(0));
        return;
      }
      this.schedule();
    };
  }

  private schedule(delay?: number): void {
    this.attempt += 1;
    const backoff = delay ?? Math.min(10_000, 250 * 2 ** Math.min(this.attempt, 6)) * (0.5 + Math.random() / 2);
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => this.connect(), backoff);
  }

  private handle(frame: ServerFrame): void {
    if (frame.type === "ready") {
      this.attempt = 0;
      this.setStatus("online");
      // A new session starts "online": say again if this tab is idle.
      this.told = "online";
      this.flushPresence();
      // Ask for what happened while we were away, for every chat the UI holds.
      const chats: Record<string, number> = {};
      for (const c of frame.chats) {
        const known = this.lastSeq.get(c.id);
        if (known !== undefined && c.last_seq > known) chats[c.id] = known;
      }
      if (Object.keys(chats).length > 0) this.send({ type: "resume", chats });
    } else if (frame.type === "message") {
      this.placed(frame.chat_id, frame.message.seq, frame.prev_seq ?? null);
    } else if (frame.type === "message_changed") {
      // A change (edit, delete, reaction) is an entry of the chat's log like a message, with
      // its own seq: the chat's position moves the same way.
      this.placed(frame.chat_id, frame.change.seq, frame.prev_seq ?? null);
    }
    this.frameListeners.forEach((l) => l(frame));
  }

  /** An entry of a chat's log arrived at `seq`, after `prev`. */
  private placed(chatId: string, seq: number, prev: number | null): void {
    const known = this.lastSeq.get(chatId);
    // A gap (the previous entry is not one we hold), or an unknown previous entry (the server
    // could not tell): ask for what may be missing. Resume never sends twice.
    if (known !== undefined && seq > known && (prev === null || prev > known)) {
      this.send({ type: "resume", chats: { [chatId]: known } });
    }
    this.saw(chatId, seq);
  }
}

export const live = new Live();
