// Who is typing: `typing` frames from the chat's other members, each expiring unless renewed.
import { useEffect, useState } from "react";
import { live } from "./live";

/** Who is typing in a chat now (user ids), from `typing` frames that expire unless renewed;
 *  a message from someone ends theirs. */
export function useTyping(chatId: string, meId: string | undefined): string[] {
  const [typing, setTyping] = useState<Map<string, number>>(new Map());
  useEffect(() => {
    setTyping(new Map());
    const off = live.onFrame((frame) => {
      if (frame.type === "typing" && frame.chat_id === chatId && frame.user_id !== meId) {
        const until = Date.now() + Number(frame.expires_in_ms);
        setTyping((t) => new Map(t).set(frame.user_id, until));
      } else if (frame.type === "message" && frame.chat_id === chatId) {
        setTyping((t) => {
          if (!t.has(frame.message.author.id)) return t;
          const next = new Map(t);
          next.delete(frame.message.author.id);
          return next;
        });
      }
    });
    const tick = window.setInterval(() => {
      const now = Date.now();
      setTyping((t) => ([...t.values()].some((until) => until <= now) ? new Map([...t].filter(([, until]) => until > now)) : t));
    }, 1000);
    return () => {
      off();
      window.clearInterval(tick);
    };
  }, [chatId, meId]);
  return [...typing.keys()];
}
