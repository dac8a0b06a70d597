import type { ComponentProps, InputHTMLAttributes } from "react";
import { usePresence, type PresenceStatus } from "../presence";

/** A touch target of at least 44×44 px below md (phones); as drawn from md up. */
export const tap = "max-md:inline-flex max-md:items-center max-md:justify-center max-md:min-h-11 max-md:min-w-11";

export function Button({ className = "", variant = "primary", ...props }: ComponentProps<"button"> & { variant?: "primary" | "ghost" | "danger" }) {
  const styles = {
    primary: "bg-indigo-600 text-white hover:bg-indigo-500 disabled:opacity-50",
    ghost: "text-zinc-700 hover:bg-zinc-100 dark:text-zinc-200 dark:hover:bg-zinc-800",
    danger: "text-red-700 hover:bg-red-50 dark:text-red-400 dark:hover:bg-red-950",
  }[variant];
  // On a phone every button is a 44×44 px target at least.
  return <button className={`${tap} rounded-md px-3 py-1.5 text-sm font-medium ${styles} ${className}`} {...props} />;
}

export function Field({ label, error, hint, id, ...props }: InputHTMLAttributes<HTMLInputElement> & { label: string; error?: string; hint?: string; id: string }) {
  const described = [error && `${id}-error`, hint && `${id}-hint`].filter(Boolean).join(" ") || undefined;
  return (
    <div className="flex flex-col gap-1">
      <label htmlFor={id} className="text-sm font-medium">{label}</label>
      <input id={id} aria-invalid={error ? true : undefined} aria-describedby={described}
        className="rounded-md border border-zinc-300 bg-white px-3 py-2 dark:border-zinc-700 dark:bg-zinc-900" {...props} />
      {hint && !error && <p id={`${id}-hint`} className="text-xs text-zinc-600 dark:text-zinc-400">{hint}</p>}
      {error && <p id={`${id}-error`} className="text-sm text-red-600 dark:text-red-400">{error}</p>}
    </div>
  );
}

const dots: Record<PresenceStatus, string> = {
  online: "bg-emerald-500",
  idle: "bg-amber-400",
  offline: "border-2 border-zinc-400 bg-white dark:bg-zinc-950",
};

/** Initials on a colour from the name; with `presence`, a dot at the bottom right. */
export function Avatar({ name, presence }: { name: string; presence?: PresenceStatus }) {
  const hue = [...name].reduce((h, c) => (h * 31 + c.charCodeAt(0)) % 360, 7);
  return (
    <span className="relative inline-flex shrink-0">
      <span aria-hidden className="inline-flex size-8 items-center justify-center rounded-full text-sm font-semibold text-white"
        style={{ background: `hsl(${hue} 55% 45%)` }}>
        {name.slice(0, 1).toUpperCase()}
      </span>
      {presence && (
        <span role="img" aria-label={presence} title={presence} data-presence={presence}
          className={`absolute -right-0.5 -bottom-0.5 size-3 rounded-full ring-2 ring-white dark:ring-zinc-950 ${dots[presence]}`} />
      )}
    </span>
  );
}

/** An avatar with the user's live presence, once known. */
export function UserAvatar({ user }: { user: { id: string; display_name: string } }) {
  return <Avatar name={user.display_name} presence={usePresence(user.id)?.status} />;
}

/** The @username beside a display name: display names are free text, so two people (or an
 *  impostor) may share one; the username is unique. */
export function Handle({ username }: { username: string }) {
  return <span className="ml-1 text-xs font-normal text-zinc-600 dark:text-zinc-400">@{username}</span>;
}

export function Badge({ count, label }: { count: number; label: string }) {
  if (count <= 0) return null;
  return (
    <span aria-label={label} className="rounded-full bg-indigo-600 px-1.5 text-xs font-semibold text-white">
      {count > 99 ? "99+" : count}
    </span>
  );
}

/** A bell; struck through when `off`. Drawn, not an emoji: not every system has an emoji font. */
export function BellIcon({ off = false }: { off?: boolean }) {
  return (
    <svg aria-hidden viewBox="0 0 24 24" className="size-4" fill="none" stroke="currentColor" strokeWidth="2" strokeLinecap="round" strokeLinejoin="round">
      <path d="M6 8a6 6 0 0 1 12 0c0 7 3 9 3 9H3s3-2 3-9" />
      <path d="M10.3 21a1.94 1.94 0 0 0 3.4 0" />
      {off && <path d="M3 3l18 18" />}
    </svg>
  );
}
