import { useState, type FormEvent } from "react";
import { api, ApiError, call } from "../api/client";
import { Button, Field } from "./ui";

const USERNAME = /^[a-z0-9_.-]{3,32}$/;

/** The form's own checks: empty fields, and on sign-up the rules the server applies. */
function check(mode: "signin" | "signup", username: string, password: string): Record<string, string> {
  const errors: Record<string, string> = {};
  const name = username.trim().toLowerCase();
  if (!name) errors.username = "Enter your username.";
  else if (mode === "signup" && !USERNAME.test(name)) errors.username = "Use 3 to 32 of a–z, 0–9, _ . and -.";
  if (!password) errors.password = "Enter your password.";
  else if (mode === "signup" && [...password].length < 8) errors.password = "Use at least 8 characters.";
  else if (mode === "signup" && [...password].length > 128) errors.password = "Use at most 128 characters.";
  return errors;
}

export function AuthPage({ onSignedIn }: { onSignedIn: () => void }) {
  const [mode, setMode] = useState<"signin" | "signup">("signin");
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);

  async function submit(event: FormEvent<HTMLFormElement>) {
    event.preventDefault();
    const form = new FormData(event.currentTarget);
    const username = String(form.get("username") ?? "");
    const password = String(form.get("password") ?? "");
    // What can be told here is told here, in the form's own words, without a round trip.
    const local = check(mode, username, password);
    setErrors(local);
    if (Object.keys(local).length > 0) return;
    setBusy(true);
    try {
      if (mode === "signup") {
        const display = String(form.get("display_name") ?? "").trim();
        await call(api.POST("/api/v1/auth/register", { body: { username, password, display_name: display || undefined } }));
      } else {
        await call(api.POST("/api/v1/auth/login", { body: { username, password } }));
      }
      onSignedIn();
    } catch (e) {
      if (e instanceof ApiError && Object.keys(e.fields).length > 0) setErrors(e.fields);
      else if (e instanceof ApiError && e.code === "username_taken") setErrors({ username: "That username is taken." });
      else setErrors({ form: e instanceof ApiError ? e.message : "Harmony is not reachable." });
    } finally {
      setBusy(false);
    }
  }

  return (
    <main className="flex min-h-full items-center justify-center p-4">
      <form onSubmit={submit} className="flex w-full max-w-sm flex-col gap-4 rounded-xl border border-zinc-200 p-6 shadow-sm dark:border-zinc-800" noValidate>
        <h1 className="text-2xl font-semibold">{mode === "signin" ? "Sign in to Harmony" : "Create your account"}</h1>
        <Field id="username" name="username" label="Username" autoComplete="username" required error={errors.username}
          hint={mode === "signup" ? "3 to 32 of a–z, 0–9, _ . -" : undefined} />
        {mode === "signup" && <Field id="display_name" name="display_name" label="Display name (optional)" error={errors.display_name} />}
        <Field id="password" name="password" type="password" label="Password" required
          autoComplete={mode === "signin" ? "current-password" : "new-password"} error={errors.password}
          hint={mode === "signup" ? "At least 8 characters" : undefined} />
        {errors.form && <p role="alert" className="text-sm text-red-600 dark:text-red-400">{errors.form}</p>}
        <Button type="submit" disabled={busy}>{mode === "signin" ? "Sign in" : "Sign up"}</Button>
        <button type="button" className="text-sm text-indigo-600 hover:underline dark:text-indigo-400"
          onClick={() => { setMode(mode === "signin" ? "signup" : "signin"); setErrors({}); }}>
          {mode === "signin" ? "New here? Create an account" : "Have an account? Sign in"}
        </button>
      </form>
    </main>
  );
}
