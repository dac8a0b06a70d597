import { useQueryClient } from "@tanstack/react-query";
import { pendingStore, type Pending } from "../pending";
import { deliver, resendOffline } from "../send";

const action = "font-semibold underline max-md:inline-flex max-md:min-h-11 max-md:min-w-11 max-md:items-center max-md:justify-center";

/** Under a message not sent yet: where it stands, and what can be done about it. */
export function PendingNote({ pending }: { pending: Pending }) {
  const queryClient = useQueryClient();
  switch (pending.status) {
    case "sending":
      return <span className="text-xs text-zinc-600 dark:text-zinc-400">Sending…</span>;
    case "offline":
      // It goes by itself; a retry by hand sends every waiting message, still in order.
      return (
        <span role="status" className="text-xs text-amber-800 dark:text-amber-300">
          Not sent yet: no connection. It will be sent when you are back online.{" "}
          <button className={action} onClick={() => void resendOffline(queryClient)}>Retry</button>
        </span>
      );
    case "failed":
      return (
        <span role="alert" className="text-xs text-red-700 dark:text-red-400">
          Failed{pending.error ? `: ${pending.error}` : ""}.{" "}
          <button className={action} onClick={() => void deliver(queryClient, pending)}>Retry</button>
        </span>
      );
    case "refused":
      // Sending it as it is would be refused again: the text goes back to be fixed.
      return (
        <span role="alert" className="text-xs text-red-700 dark:text-red-400">
          Not sent: {pending.error}.{" "}
          <button className={action} onClick={() => pendingStore.edit(pending)}>Edit</button>{" "}
          <button className={action} onClick={() => pendingStore.remove(pending.clientMsgId)}>Discard</button>
        </span>
      );
  }
}
