// Coming back from the in-app browser. The universal link's query is a hint of which flow
// completed, never proof: what happened is what the entitlement shows, once the webhook has
// landed (read it, then wait for entitlementChanged).
import * as Linking from "expo-linking";

import type { Discount, Entitlement } from "./api";

/** The query parameter the API adds to a Portal flow's redirect: the flow that completed. */
export const FLOW_MARKER = "billing_flow";

/** What the customer went to do, with the entitlement as it was before. */
export type Errand =
  | { kind: "cancel"; before: Entitlement }
  | { kind: "upgrade"; plan: string; before: Entitlement };

/** What the entitlement shows the errand did. */
export type Outcome =
  | { kind: "retained"; discount: Discount }
  | { kind: "canceled"; endsOn: string | null }
  | { kind: "subscribed"; plan: string };

/** The hint a return URL carries: a flow (`billing_flow=SUBSCRIPTION_CANCEL`), "checkout"
 * (`checkout=success`), "checkout-canceled", or null. */
export function hintOf(url: string): string | null {
  const query = Linking.parse(url).queryParams ?? {};
  const flow = query[FLOW_MARKER];
  if (typeof flow === "string") return flow;
  if (query["checkout"] === "success") return "checkout";
  if (query["checkout"] === "canceled") return "checkout-canceled";
  return null;
}

/** What the entitlement shows of the errand, or null while it shows nothing yet. */
export function outcomeOf(errand: Errand, now: Entitlement): Outcome | null {
  if (errand.kind === "cancel") {
    if (now.cancelAtPeriodEnd || now.status === "CANCELED") {
      return { kind: "canceled", endsOn: now.currentPeriodEnd };
    }
    // The retention offer, accepted: a discount the subscription did not have.
    if (now.discount !== null && now.discount.coupon !== errand.before.discount?.coupon) {
      return { kind: "retained", discount: now.discount };
    }
    return null;
  }
  const active = now.status === "ACTIVE" || now.status === "TRIALING";
  const changed = now.plan !== errand.before.plan || now.updatedAt !== errand.before.updatedAt;
  return active && now.plan === errand.plan && changed ? { kind: "subscribed", plan: now.plan } : null;
}

/** "20% off for 3 months": the coupon's name, else its terms. */
export function discountTerms(d: Discount): string {
  if (d.name) return d.name;
  const off =
    d.percentOff !== null
      ? `${d.percentOff}% off`
      : `${((d.amountOff ?? 0) / 100).toFixed(2)} ${(d.currency ?? "").toUpperCase()} off`;
  if (d.duration === "FOREVER") return `${off} forever`;
  if (d.duration === "ONCE") return `${off} once`;
  const months = d.durationInMonths ?? 1;
  return `${off} for ${months} month${months === 1 ? "" : "s"}`;
}

export function formatDate(iso: string): string {
  return new Date(iso).toLocaleDateString(undefined, { dateStyle: "long" });
}

/** The sentence for an outcome the entitlement shows. */
export function outcomeMessage(outcome: Outcome): string {
  switch (outcome.kind) {
    case "retained":
      return `We applied ${discountTerms(outcome.discount)}. Your plan stays as it is.`;
    case "canceled":
      return outcome.endsOn
        ? `Your plan ends on ${formatDate(outcome.endsOn)}. Until then you keep everything.`
        : "Your subscription has ended.";
    case "subscribed":
      return `You are on ${outcome.plan}.`;
  }
}
