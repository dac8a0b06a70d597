// The Node `ws` peer: a minimal broadcast server, as a team would write one. Every text frame a
// client sends goes to every other connected client, as it is. Prints "listening <port>".
import { WebSocketServer, WebSocket } from "ws";

const port = Number(process.argv[2] ?? 0);
const wss = new WebSocketServer({ host: "127.0.0.1", port, perMessageDeflate: false });
wss.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => {
    for (const client of wss.clients) {
      if (client !== ws && client.readyState === WebSocket.OPEN) {
        client.send(data, { binary: isBinary });
      }
    }
  });
});
wss.on("listening", () => console.log(`listening ${wss.address().port}`));
process.on("SIGTERM", () => process.exit(0));
