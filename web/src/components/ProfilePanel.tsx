// A direct chat's side panel: the other person, not a member list (no roles, nothing to manage).
import type { User } from "../api/client";
import { PeerLine } from "./ChatHeader";
import { SidePanel } from "./SidePanel";
import { UserAvatar } from "./ui";

export function ProfilePanel({ peer, onClose }: { peer: User | undefined; onClose: () => void }) {
  return (
    <SidePanel title="Profile" onClose={onClose}>
      {peer ? (
        <div className="flex items-center gap-3">
          <UserAvatar user={peer} />
          <div className="min-w-0">
            <p className="truncate font-medium">{peer.display_name}</p>
            <PeerLine peer={peer} />
          </div>
        </div>
      ) : <p className="text-sm text-zinc-600 dark:text-zinc-400">Loading…</p>}
    </SidePanel>
  );
}
