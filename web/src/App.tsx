import { useEffect, useState } from "react";
import { useQueryClient } from "@tanstack/react-query";
import { AuthPage } from "./components/AuthPage";
import { ChatView } from "./components/ChatView";
import { FriendsPage } from "./components/FriendsPage";
import { QuickSwitcher } from "./components/QuickSwitcher";
import { Sidebar } from "./components/Sidebar";
import { useLiveSync } from "./data";
import { live, type Status } from "./live";
import { useNotifications } from "./notify";
import { usePresenceSync } from "./presence";
import { navigate, useRoute, type Route } from "./router";
import { useAutoResend } from "./send";
import { useMe } from "./session";
import { TabTitle } from "./unread";

/** Where a signed-out visitor was going (a shared link to a chat): there once signed in. Only
 *  the page first loaded: after a sign-out the next one to sign in starts afresh. */
let returnTo = location.pathname === "/signin" ? "/" : location.pathname;

export function App() {
  const me = useMe();
  const route = useRoute();
  const queryClient = useQueryClient();
  const activeChat = route.name === "chat" ? route.id : null;
  useLiveSync(me.data?.id, activeChat);
  usePresenceSync(me.data?.id);
  useNotifications(me.data?.id);
  useAutoResend(me.data?.id);

  useEffect(() => {
    if (me.data === null && route.name !== "signin") navigate("/signin", true);
    if (me.data && route.name === "signin") navigate(returnTo, true);
    if (me.data) returnTo = "/";
  }, [me.data, route.name]);

  if (me.isPending) return <p className="p-6 text-zinc-600 dark:text-zinc-400">Loading…</p>;
  if (me.isError) return <p className="p-6 text-red-600">Harmony is not reachable. Retrying…</p>;
  if (!me.data) return <AuthPage onSignedIn={() => void queryClient.invalidateQueries({ queryKey: ["me"] })} />;

  const main =
    route.name === "chat" ? (
      <ChatView key={route.id} chatId={route.id} me={me.data} />
    ) : route.name === "friends" ? (
      <FriendsPage me={me.data} />
    ) : (
      <div className="hidden flex-1 items-center justify-center text-zinc-600 dark:text-zinc-400 md:flex">Pick a chat, or start one.</div>
    );
  // On phones the list and the open chat take turns; from md up they sit side by side.
  const listVisible = route.name === "home";
  return (
    <div className="flex h-full flex-col">
      <SkipLink route={route} />
      <OfflineBanner />
      <div className="flex min-h-0 flex-1">
        <div className={`${listVisible ? "flex" : "hidden"} w-full md:flex md:w-80 md:shrink-0`}>
          <Sidebar me={me.data} activeChat={activeChat} />
        </div>
        <main id="main" tabIndex={-1} className={`${listVisible ? "hidden" : "flex"} min-w-0 flex-1 outline-none md:flex`}>
          <h1 className="sr-only">Harmony</h1>
          {main}
        </main>
      </div>
      <QuickSwitcher me={me.data} />
      <TabTitle activeChat={activeChat} />
    </div>
  );
}

/** The first thing Tab reaches: past the chat list, to the messages (or the friends page). */
function SkipLink({ route }: { route: Route }) {
  if (route.name !== "chat" && route.name !== "friends") return null;
  return (
    <a href="#main" onClick={(e) => {
        e.preventDefault();
        (document.getElementById("messages") ?? document.getElementById("main"))?.focus();
      }}
      className="sr-only focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-30 focus:rounded-md focus:bg-white focus:px-3 focus:py-3 focus:font-medium focus:shadow-lg dark:focus:bg-zinc-900">
      {route.name === "chat" ? "Skip to messages" : "Skip to friends"}
    </a>
  );
}

function OfflineBanner() {
  const [status, setStatus] = useState<Status>(live.status);
  useEffect(() => live.onStatus(setStatus), []);
  if (status === "online") return null;
  return (
    <div role="status" aria-live="polite" data-testid="offline-banner"
      className="bg-amber-100 px-4 py-1.5 text-center text-sm text-amber-900 dark:bg-amber-900/40 dark:text-amber-100">
      {status === "connecting" ? "Connecting…" : "Offline — reconnecting. Messages you missed will appear when you are back."}
    </div>
  );
}
