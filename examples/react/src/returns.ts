// Coming back from Checkout or the Portal. A redirect is a navigation, never proof of a change:
// the page notes what it expects before leaving, then waits until entitlement shows it.
import { useEffect, useRef, useState } from "react";
import { useLocation, useNavigate } from "react-router";

import { BILLING_PATH } from "./config";
import { SUBSCRIBED } from "./format";
import type { Entitlement } from "./live";

/** What the customer went to do; the return path's query says which came back. */
export type Errand = "checkout" | "switch" | "cancel";

interface Expectation {
  errand: Errand;
  plan: string | null;
  before: Pick<Entitlement, "plan" | "updatedAt"> | null;
  at: number;
}

const KEY = "billing.expectation";
const STALE_MS = 24 * 3600 * 1000;
const CONFIRM_TIMEOUT_MS = 30_000;
const DONE_SHOWN_MS = 10_000;

/** Return paths that say which errand came back (the API builds Checkout's and upgrade's). */
export const RETURN_PATHS = {
  switch: `${BILLING_PATH}?switched=1`,
  cancel: `${BILLING_PATH}?canceling=1`,
} as const;

/** Remember, before leaving for Stripe, what should change when the customer is back. */
export function expectOnReturn(errand: Errand, now: Entitlement | null, plan: string | null): void {
  const expectation: Expectation = {
    errand,
    plan,
    before: now && { plan: now.plan, updatedAt: now.updatedAt ?? null },
    at: Date.now(),
  };
  sessionStorage.setItem(KEY, JSON.stringify(expectation));
}

function expected(errand: Errand): Expectation | null {
  try {
    const stored = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as Expectation | null;
    if (stored?.errand === errand && Date.now() - stored.at < STALE_MS) return stored;
  } catch {
    // a damaged note is no note
  }
  return null;
}

function errandOf(query: URLSearchParams): Errand | "checkout-canceled" | null {
  if (query.get("checkout") === "success") return "checkout";
  if (query.get("checkout") === "canceled") return "checkout-canceled";
  if (query.has("switched")) return "switch";
  if (query.has("canceling")) return "cancel";
  return null;
}

/** Whether the entitlement now shows what the errand was for. */
function shows(errand: Errand, note: Expectation | null, e: Entitlement): boolean {
  switch (errand) {
    case "checkout":
      return SUBSCRIBED.has(e.status) && (note?.plan == null || e.plan === note.plan);
    case "switch":
      if (note?.before == null) return true;
      if (note.plan !== null && note.plan !== note.before.plan) return e.plan === note.plan;
      return (e.updatedAt ?? null) !== note.before.updatedAt;
    case "cancel":
      return e.cancelAtPeriodEnd || !SUBSCRIBED.has(e.status);
  }
}

export type SyncPhase = "waiting" | "late" | "done" | "checkout-canceled";

export interface Sync {
  errand: Errand | "checkout-canceled";
  phase: SyncPhase;
}

/** The return being confirmed, read from the URL once; the URL is then cleaned. */
export function useReturnSync(entitlement: Entitlement | null): Sync | null {
  const location = useLocation();
  const navigate = useNavigate();
  const [sync, setSync] = useState<Sync | null>(() => {
    const errand = errandOf(new URLSearchParams(location.search));
    if (errand === null) return null;
    return { errand, phase: errand === "checkout-canceled" ? "checkout-canceled" : "waiting" };
  });
  const note = useRef<Expectation | null>(
    sync && sync.errand !== "checkout-canceled" ? expected(sync.errand) : null,
  );

  // A reload or a shared link must not start the wait again.
  useEffect(() => {
    if (location.search) navigate(location.pathname, { replace: true });
  }, [location.pathname, location.search, navigate]);

  useEffect(() => {
    if (sync?.phase !== "waiting") return;
    const timer = window.setTimeout(
      () => setSync((s) => (s?.phase === "waiting" ? { ...s, phase: "late" } : s)),
      CONFIRM_TIMEOUT_MS,
    );
    return () => window.clearTimeout(timer);
  }, [sync?.phase]);

  // A confirmation is news for a while, then it goes.
  useEffect(() => {
    if (sync?.phase !== "done" && sync?.phase !== "checkout-canceled") return;
    const timer = window.setTimeout(() => setSync(null), DONE_SHOWN_MS);
    return () => window.clearTimeout(timer);
  }, [sync?.phase]);

  useEffect(() => {
    if (sync === null || entitlement === null) return;
    if (sync.errand === "checkout-canceled" || sync.phase === "done") return;
    if (shows(sync.errand, note.current, entitlement)) {
      sessionStorage.removeItem(KEY);
      setSync({ ...sync, phase: "done" });
    }
  }, [sync, entitlement]);

  return sync;
}

const WAITING: Record<Errand, string> = {
  checkout: "Confirming your payment...",
  switch: "Applying your plan change...",
  cancel: "Confirming your cancellation...",
};

const LATE: Record<Errand, string> = {
  checkout:
    "Stripe has not confirmed your payment after 30 seconds. If you paid, this page updates " +
    "by itself as soon as the confirmation arrives; you do not need to pay again.",
  switch:
    "Your plan change has not arrived from Stripe after 30 seconds. If you confirmed it, it " +
    "shows here by itself when it arrives; if you left without confirming, nothing changed.",
  cancel:
    "Your cancellation has not arrived from Stripe after 30 seconds. If you confirmed it, it " +
    "shows here by itself when it arrives; if you left without confirming, nothing changed.",
};

/** The sentence for a sync, given the plan's display name once it is done. */
export function syncMessage(sync: Sync, planName: string): string {
  if (sync.errand === "checkout-canceled") return "Checkout was canceled. Nothing was charged.";
  if (sync.phase === "waiting") return WAITING[sync.errand];
  if (sync.phase === "late") return LATE[sync.errand];
  switch (sync.errand) {
    case "checkout":
      return `Payment confirmed: you are on ${planName}.`;
    case "switch":
      return `Plan change applied: you are on ${planName}.`;
    case "cancel":
      return "Cancellation confirmed.";
  }
}
