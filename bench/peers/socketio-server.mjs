// The Socket.IO peer: a broadcast server on Socket.IO with the Redis adapter, the stack several
// chat systems are built on. An "m" event from one client is emitted to every other client through
// the adapter (which publishes it to Redis for other nodes). Usage: socketio-server.mjs PORT
// REDIS_URL. Prints "listening <port>".
import { createServer } from "node:http";
import { Server } from "socket.io";
import { createAdapter } from "@socket.io/redis-adapter";
import { createClient } from "redis";

const port = Number(process.argv[2] ?? 0);
const redisUrl = process.argv[3] ?? "redis://127.0.0.1:6379";
const pub = createClient({ url: redisUrl });
const sub = pub.duplicate();
await Promise.all([pub.connect(), sub.connect()]);

const http = createServer();
const io = new Server(http, {
  transports: ["websocket"],
  perMessageDeflate: false,
  // The load generator does not answer Engine.IO pings; runs are shorter than this.
  pingInterval: 600_000,
  pingTimeout: 600_000,
  adapter: createAdapter(pub, sub),
});
io.on("connection", (socket) => {
  socket.on("m", (body) => socket.broadcast.emit("m", body));
});
http.listen(port, "127.0.0.1", () => console.log(`listening ${http.address().port}`));
process.on("SIGTERM", () => process.exit(0));
