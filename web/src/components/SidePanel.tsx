// The panel beside a chat (members of a group, the person of a direct chat): a full-screen sheet
// below md, a side column above. Focus starts on its close button; Escape closes it.
import { useEffect, useRef, type ReactNode } from "react";
import { Button } from "./ui";

export function SidePanel({ title, onClose, children }: { title: string; onClose: () => void; children: ReactNode }) {
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
    <aside aria-label={title} className="fixed inset-0 z-20 flex flex-col gap-3 overflow-y-auto bg-white p-3 dark:bg-zinc-950 md:static md:z-auto md:w-72 md:shrink-0 md:border-l md:border-zinc-200 md:dark:border-zinc-800">
      <div className="flex items-center justify-between">
        <h3 className="font-semibold">{title}</h3>
        <Button ref={closeButton} variant="ghost" aria-label={`Close ${title.toLowerCase()}`} onClick={onClose}>✕</Button>
      </div>
      {children}
    </aside>
  );
}
