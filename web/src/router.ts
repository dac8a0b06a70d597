// A tiny history-API router: the server answers every UI path with index.html, so deep links
// work.
import { useEffect, useState } from "react";

export type Route =
  | { name: "home" }
  | { name: "chat"; id: string }
  | { name: "friends" }
  | { name: "signin" };

export function parse(path: string): Route {
  const chat = path.match(/^\/chats\/([^/]+)$/);
  if (chat) return { name: "chat", id: decodeURIComponent(chat[1]) };
  if (path === "/friends") return { name: "friends" };
  if (path === "/signin") return { name: "signin" };
  return { name: "home" };
}

const listeners = new Set<() => void>();
window.addEventListener("popstate", () => listeners.forEach((l) => l()));

export function navigate(path: string, replace = false): void {
  if (path === location.pathname) return;
  if (replace) history.replaceState(null, "", path);
  else history.pushState(null, "", path);
  listeners.forEach((l) => l());
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parse(location.pathname));
  useEffect(() => {
    const update = () => setRoute(parse(location.pathname));
    listeners.add(update);
    return () => {
      listeners.delete(update);
    };
  }, []);
  return route;
}
