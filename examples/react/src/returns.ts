// Coming back from Checkout or the Portal. A redirect is a navigation, never proof of a change:
// the page notes what it expects before leaving, then waits until entitlement shows it.
import { useEffect, useState } from "react";
import { useLocation, useNavigate } from "react-router";

import { SUBSCRIBED, formatSeats } from "./format";
import type { PortalFlow } from "./gql/graphql";
import type { Entitlement } from "./live";

/** What the customer went to do; the URL's query says which came back ("seats", a new seat
 * count on the same plan, comes back as a "switch": the note left before says which). */
export type Errand = "checkout" | "switch" | "seats" | "cancel";

/** The errands a Portal button waits for. */
export type PortalErrand = "switch" | "cancel";

interface Expectation {
  errand: Errand;
  plan: string | null;
  /** The seat count asked for (a per-seat plan), else null. */
  seats: number | null;
  before: {
    plan: string;
    seats: number | null;
    updatedAt: string | null;
    /** The coupon of the discount then (a cancel flow may end with a retention offer). */
    discount?: string | null;
  } | null;
  at: number;
}

const KEY = "billing.expectation";
const STALE_MS = 24 * 3600 * 1000;
const CONFIRM_TIMEOUT_MS = 30_000;
const DONE_SHOWN_MS = 10_000;

/** The query parameter the API adds to a Portal flow's redirect back: the flow that completed.
 * Only a hint of what to wait for; the entitlement says what happened. */
export const FLOW_MARKER = "billing_flow";

/** The errand a completed Portal flow comes back as (a card update waits for nothing: a
 * required action it fixes goes away by itself, live). */
const FLOW_ERRANDS: Record<PortalFlow, Errand | null> = {
  SUBSCRIPTION_UPDATE: "switch",
  SUBSCRIPTION_CANCEL: "cancel",
  PAYMENT_METHOD_UPDATE: null,
};

/** The errand whose marker a note's errand comes back with. */
function comesBackAs(errand: Errand): Errand {
  return errand === "seats" ? "switch" : errand;
}

/** Remember, before leaving for Stripe, what should change when the customer is back. */
export function expectOnReturn(
  errand: Errand,
  now: Entitlement | null,
  plan: string | null,
  seats: number | null = null,
): void {
  const expectation: Expectation = {
    errand,
    plan,
    seats,
    before: now && {
      plan: now.plan,
      seats: now.seats ?? null,
      updatedAt: now.updatedAt ?? null,
      discount: now.discount?.coupon ?? null,
    },
    at: Date.now(),
  };
  sessionStorage.setItem(KEY, JSON.stringify(expectation));
}

function expected(back: Errand): Expectation | null {
  try {
    const stored = JSON.parse(sessionStorage.getItem(KEY) ?? "null") as Expectation | null;
    if (stored && comesBackAs(stored.errand) === back && Date.now() - stored.at < STALE_MS) {
      // a note from before seats existed has none
      return { ...stored, seats: stored.seats ?? null };
    }
  } catch {
    // a damaged note is no note
  }
  return null;
}

function errandOf(query: URLSearchParams): Errand | "checkout-canceled" | null {
  if (query.get("checkout") === "success") return "checkout";
  if (query.get("checkout") === "canceled") return "checkout-canceled";
  const flow = query.get(FLOW_MARKER);
  if (flow !== null && Object.hasOwn(FLOW_ERRANDS, flow)) return FLOW_ERRANDS[flow as PortalFlow];
  return null;
}

/** Whether the customer took the Portal's retention offer instead of cancelling: a discount the
 * subscription did not have before leaving (the API offers one only to a subscription without
 * a discount; without a note, any discount counts). */
function retained(note: Expectation | null, e: Entitlement): boolean {
  return (
    e.discount != null &&
    !e.cancelAtPeriodEnd &&
    e.discount.coupon !== (note?.before?.discount ?? null)
  );
}

/** Whether the entitlement now shows what the errand was for. */
function shows(errand: Errand, note: Expectation | null, e: Entitlement): boolean {
  switch (errand) {
    case "checkout":
      return SUBSCRIBED.has(e.status) && (note?.plan == null || e.plan === note.plan);
    case "switch": {
      if (note?.before == null) return true;
      const seated = note.seats === null || e.seats === note.seats;
      if (note.plan !== null && note.plan !== note.before.plan) return e.plan === note.plan && seated;
      if (note.seats !== null && note.seats !== note.before.seats) return seated;
      return (e.updatedAt ?? null) !== note.before.updatedAt;
    }
    case "seats":
      return note?.seats == null || e.seats === note.seats;
    case "cancel":
      return e.cancelAtPeriodEnd || !SUBSCRIBED.has(e.status) || retained(note, e);
  }
}

export type SyncPhase = "waiting" | "late" | "done" | "checkout-canceled";

export interface Sync {
  errand: Errand | "checkout-canceled";
  phase: SyncPhase;
  /** Done with a cancel flow: the customer accepted the retention offer (nothing cancelled). */
  retained?: boolean;
}

/** What came back, from the URL's query and the note left before leaving. */
function arrival(search: string): { sync: Sync | null; note: Expectation | null } {
  const back = errandOf(new URLSearchParams(search));
  if (back === null) return { sync: null, note: null };
  if (back === "checkout-canceled") {
    return { sync: { errand: back, phase: "checkout-canceled" }, note: null };
  }
  const note = expected(back);
  return { sync: { errand: note?.errand ?? back, phase: "waiting" }, note };
}

/** The return being confirmed, read from the URL once; the URL is then cleaned. */
export function useReturnSync(entitlement: Entitlement | null): Sync | null {
  const location = useLocation();
  const navigate = useNavigate();
  const [{ sync: arrived, note }] = useState(() => arrival(location.search));
  const [sync, setSync] = useState<Sync | null>(arrived);

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
    if (shows(sync.errand, note, entitlement)) {
      sessionStorage.removeItem(KEY);
      setSync({
        ...sync,
        phase: "done",
        retained: sync.errand === "cancel" && retained(note, entitlement),
      });
    }
  }, [sync, note, entitlement]);

  return sync;
}

const WAITING: Record<Errand, string> = {
  checkout: "Confirming your payment...",
  switch: "Applying your plan change...",
  seats: "Applying your seat change...",
  cancel: "Confirming your choice with Stripe...",
};

/** The late notice of a change confirmed on Stripe's page. */
const lateChange = (what: string): string =>
  `Your ${what} has not arrived from Stripe after 30 seconds. If you confirmed it, it shows ` +
  "here by itself when it arrives; if you left without confirming, nothing changed.";

const LATE: Record<Errand, string> = {
  checkout:
    "Stripe has not confirmed your payment after 30 seconds. If you paid, this page updates " +
    "by itself as soon as the confirmation arrives; you do not need to pay again.",
  switch: lateChange("plan change"),
  seats: lateChange("seat change"),
  cancel:
    "Your cancellation has not arrived from Stripe after 30 seconds. If you confirmed it (or " +
    "accepted an offer), it shows here by itself when it arrives; if you left without " +
    "confirming, nothing changed.",
};

/** The sentence for a sync, given the plan's display name and seats (per-seat plans) once it
 * is done. */
export function syncMessage(sync: Sync, planName: string, seats: number | null): string {
  if (sync.errand === "checkout-canceled") return "Checkout was canceled. Nothing was charged.";
  if (sync.phase === "waiting") return WAITING[sync.errand];
  if (sync.phase === "late") return LATE[sync.errand];
  const plan = seats === null ? planName : `${planName} with ${formatSeats(seats)}`;
  switch (sync.errand) {
    case "checkout":
      return `Payment confirmed: you are on ${plan}.`;
    case "switch":
      return `Plan change applied: you are on ${plan}.`;
    case "seats":
      return seats === null ? "Seat change applied." : `Seat change applied: you have ${formatSeats(seats)}.`;
    case "cancel":
      return sync.retained ? "Offer applied: your plan stays as it is." : "Cancellation confirmed.";
  }
}
