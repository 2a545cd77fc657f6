// The signed-in user's token. A real app gets it from its identity provider's SDK; this
// example keeps it in sessionStorage (per tab) and drops it when it expires.
import { useEffect, useSyncExternalStore } from "react";

const KEY = "billing.token";
const listeners = new Set<() => void>();
let notice: string | null = null;

/** What the sign-in screen says after the token ran out (or the API refused it). */
export const EXPIRED = "Your session has expired. Sign in again.";

/** Seconds since the epoch at which a JWT expires (0 when it cannot be read). */
function expiry(token: string): number {
  try {
    const payload = token.split(".")[1] ?? "";
    const json = atob(payload.replace(/-/g, "+").replace(/_/g, "/"));
    const exp: unknown = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp : 0;
  } catch {
    return 0;
  }
}

function changed(): void {
  listeners.forEach((listener) => listener());
}

/** The token if it has not expired, else null. */
function valid(token: string | null): string | null {
  return token !== null && expiry(token) * 1000 > Date.now() ? token : null;
}

/** The stored token when it has not expired, else null. */
export function currentToken(): string | null {
  return valid(sessionStorage.getItem(KEY));
}

export function signIn(token: string): void {
  notice = null;
  sessionStorage.setItem(KEY, token.trim());
  changed();
}

/** Forget the token; `why` is shown on the sign-in screen. */
export function signOut(why: string | null = null): void {
  notice = why;
  sessionStorage.removeItem(KEY);
  changed();
}

/** Why the user was last signed out, if it was not their own doing. */
export function signOutNotice(): string | null {
  return notice;
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The current valid token (re-rendering on sign-in, sign-out and expiry). */
export function useToken(): string | null {
  const stored = useSyncExternalStore(subscribe, () => sessionStorage.getItem(KEY));
  const token = valid(stored);
  useEffect(() => {
    if (stored === null) return;
    if (token === null) {
      signOut(EXPIRED);
      return;
    }
    const timer = window.setTimeout(() => signOut(EXPIRED), expiry(token) * 1000 - Date.now());
    return () => window.clearTimeout(timer);
  }, [stored, token]);
  return token;
}

/** `make run`'s one-click sign-in: a fresh development token for the demo org's owner. */
export async function devSignIn(): Promise<void> {
  const response = await fetch("/dev/sign-in", { method: "POST" });
  if (!response.ok) {
    throw new Error(`development sign-in failed (HTTP ${response.status})`);
  }
  const body = (await response.json()) as { token?: unknown };
  if (typeof body.token !== "string") {
    throw new Error("development sign-in answered without a token");
  }
  signIn(body.token);
}
