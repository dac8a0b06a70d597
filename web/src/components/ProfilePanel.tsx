// A direct chat's side panel: the other person, not a member list (no roles, nothing to manage).
import { useEffect, useRef } from "react";
import type { User } from "../api/client";
import { PeerLine } from "./ChatHeader";
import { Button, UserAvatar } from "./ui";

export function ProfilePanel({ peer, onClose }: { peer: User | undefined; onClose: () => void }) {
  // As the members panel: a sheet on a phone, focus on its close button, Escape closes it.
  const closeButton = useRef<HTMLButtonElement>(null);
  useEffect(() => closeButton.current?.focus(), []);
  useEffect(() => {
    const onKey = (e: KeyboardEvent) => {
      if (e.key === "Escape") onClose();
    };
    document.addEventListener("keydown", onKey);
    return () => document.removeEventListener("keydown", onKey);
  }, [onClose]);
  return (
    <aside aria-label="Profile" className="fixed inset-0 z-20 flex flex-col gap-3 overflow-y-auto bg-white p-3 dark:bg-zinc-950 md:static md:z-auto md:w-72 md:shrink-0 md:border-l md:border-zinc-200 md:dark:border-zinc-800">
      <div className="flex items-center justify-between">
        <h3 className="font-semibold">Profile</h3>
        <Button ref={closeButton} variant="ghost" aria-label="Close profile" onClick={onClose}>✕</Button>
      </div>
      {peer ? (
        <div className="flex items-center gap-3">
          <UserAvatar user={peer} />
          <div className="min-w-0">
            <p className="truncate font-medium">{peer.display_name}</p>
            <PeerLine peer={peer} />
          </div>
        </div>
      ) : <p className="text-sm text-zinc-600 dark:text-zinc-400">Loading…</p>}
    </aside>
  );
}
