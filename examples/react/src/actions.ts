// The ways to Stripe: openPortal, upgrade and changeSeats. One at a time per page (a double click
// mints one session), the button that was clicked says so, and errors become sentences.
import { useCallback, useEffect, useRef, useState } from "react";
import { useNavigate } from "react-router";
import { type CombinedError, useMutation } from "urql";

import { unauthenticated } from "./client";
import { BILLING_PATH } from "./config";
import { ERROR_SENTENCES, NETWORK_TROUBLE } from "./format";
import type {
  BillingInterval,
  PortalFlow,
  PortalOutcomeFragment,
  UpgradeMutation,
} from "./gql/graphql";
import type { Entitlement } from "./live";
import { ChangeSeats, OpenPortal, Upgrade } from "./operations";
import { type Errand, expectOnReturn } from "./returns";

type Outcome = PortalOutcomeFragment | UpgradeMutation["upgrade"];

function problem(error: CombinedError): string {
  if (error.networkError) return NETWORK_TROUBLE;
  return `Something went wrong: ${error.graphQLErrors[0]?.message ?? error.message}`;
}

export interface BillingActions {
  /** The key of the action running now (its button shows progress), else null. */
  busy: string | null;
  error: string | null;
  openPortal: (key: string, flow: PortalFlow | null, errand: Errand | null, path?: string) => void;
  /** `seats` only for a per-seat plan (null: the API's default). */
  upgrade: (plan: string, interval: BillingInterval, seats?: number | null) => void;
  /** Stripe's confirmation page for a new seat count on the current per-seat plan. */
  changeSeats: (seats: number) => void;
}

export function useBillingActions(entitlement: Entitlement | null): BillingActions {
  const navigate = useNavigate();
  const [, openPortalMutation] = useMutation(OpenPortal);
  const [, upgradeMutation] = useMutation(Upgrade);
  const [, changeSeatsMutation] = useMutation(ChangeSeats);
  const [busy, setBusy] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);
  const running = useRef(false); // set at once: two clicks in one frame start one action

  const start = useCallback((key: string): boolean => {
    if (running.current) return false;
    running.current = true;
    setBusy(key);
    setError(null);
    return true;
  }, []);
  const stop = useCallback(() => {
    running.current = false;
    setBusy(null);
  }, []);

  // Back from Stripe through the browser's back button, the page may come from the bfcache.
  useEffect(() => {
    const reset = (event: PageTransitionEvent): void => {
      if (event.persisted) stop();
    };
    window.addEventListener("pageshow", reset);
    return () => window.removeEventListener("pageshow", reset);
  }, [stop]);

  const follow = useCallback(
    (outcome: Outcome | undefined, failure: CombinedError | undefined, leave: () => void) => {
      if (outcome?.__typename === "BillingError") {
        stop();
        if (outcome.code === "NO_CUSTOMER") {
          navigate("/pricing", { state: { notice: ERROR_SENTENCES.NO_CUSTOMER } });
          return;
        }
        setError(ERROR_SENTENCES[outcome.code] ?? outcome.message);
        return;
      }
      if (outcome === undefined) {
        stop();
        if (failure && !unauthenticated(failure)) setError(problem(failure));
        return;
      }
      leave();
      window.location.assign(outcome.url);
    },
    [navigate, stop],
  );

  const openPortal = useCallback(
    (key: string, flow: PortalFlow | null, errand: Errand | null, path = BILLING_PATH) => {
      if (!start(key)) return;
      void openPortalMutation({ returnPath: path, flow }).then((result) =>
        follow(result.data?.openPortal, result.error, () => {
          if (errand !== null) expectOnReturn(errand, entitlement, null);
        }),
      );
    },
    [entitlement, follow, openPortalMutation, start],
  );

  const upgrade = useCallback(
    (plan: string, interval: BillingInterval, seats: number | null = null) => {
      if (!start(`upgrade-${plan}`)) return;
      void upgradeMutation({ plan, interval, seats }).then((result) => {
        const outcome = result.data?.upgrade;
        follow(outcome, result.error, () => {
          let errand: Errand = "switch";
          if (outcome?.__typename === "CheckoutSession") errand = "checkout";
          else if (seatsOnly(entitlement, plan, interval, seats)) errand = "seats";
          expectOnReturn(errand, entitlement, plan, seats);
        });
      });
    },
    [entitlement, follow, start, upgradeMutation],
  );

  const changeSeats = useCallback(
    (seats: number) => {
      if (!start("change-seats")) return;
      void changeSeatsMutation({ seats, returnPath: BILLING_PATH }).then((result) =>
        follow(result.data?.changeSeats, result.error, () =>
          expectOnReturn("seats", entitlement, null, seats),
        ),
      );
    },
    [changeSeatsMutation, entitlement, follow, start],
  );

  return { busy, error, openPortal, upgrade, changeSeats };
}

/** Whether an upgrade changes only the seat count: same plan, same billing period. */
function seatsOnly(
  now: Entitlement | null,
  plan: string,
  interval: BillingInterval,
  seats: number | null,
): boolean {
  return (
    now !== null &&
    seats !== null &&
    now.plan === plan &&
    now.interval === interval &&
    (now.seats ?? null) !== seats
  );
}
