// What the customer must do to keep paying (`requiredAction`), what Stripe has scheduled for
// later (`pendingChange`) and the subscription's discount (`discount`, e.g. a retention offer
// accepted), in words. All arrive over entitlementChanged like every other field.
import { useEffect, useState } from "react";

import { SUBSCRIBED, formatDate, formatMoney, formatSeats } from "./format";
import type { RequiredActionCode } from "./gql/graphql";
import type { Entitlement } from "./live";

export type RequiredAction = NonNullable<Entitlement["requiredAction"]>;
export type PendingChange = NonNullable<Entitlement["pendingChange"]>;
export type Discount = NonNullable<Entitlement["discount"]>;

const DAY_MS = 24 * 3600 * 1000;

/** Whole days from `now` until `iso`, rounded up (a trial with 2.5 days to go ends "in 3
 * days"); 0 once it has passed. Counted on the browser's clock, which is Stripe's in real life. */
export function daysUntil(iso: string, now: number): number {
  return Math.max(0, Math.ceil((Date.parse(iso) - now) / DAY_MS));
}

/** "today", "in 1 day", "in 5 days". */
export function inDays(days: number): string {
  if (days <= 0) return "today";
  return days === 1 ? "in 1 day" : `in ${days} days`;
}

/** The trial countdown beside its end date: "12 days left", "1 day left", "ends today". */
export function trialLeft(days: number): string {
  if (days <= 0) return "ends today";
  return days === 1 ? "1 day left" : `${days} days left`;
}

/** The time now, again every minute, so a countdown moves on while the page stays open. */
export function useNow(everyMs = 60_000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(Date.now()), everyMs);
    return () => window.clearInterval(timer);
  }, [everyMs]);
  return now;
}

interface Context {
  action: RequiredAction;
  entitlement: Entitlement;
  /** The display name of the entitlement's plan. */
  plan: string;
  now: number;
}

/** " to keep Pro" while the plan still applies (past due: Stripe is retrying), else how to get
 * it back. */
function toKeep({ entitlement, plan }: Context): string {
  return SUBSCRIBED.has(entitlement.status) ? ` to keep ${plan}` : " to resume your subscription";
}

/** Every code has a sentence: a new code in schema.graphql fails the type check here. */
const SENTENCES: Record<RequiredActionCode, (c: Context) => string> = {
  PAYMENT_FAILED: (c) =>
    c.action.deadline
      ? `Your last payment failed. We'll retry on ${formatDate(c.action.deadline)}: update ` +
        `your payment method before then${toKeep(c)}.`
      : `Your last payment failed. Update your payment method${toKeep(c)}.`,
  PAYMENT_CONFIRMATION_REQUIRED: (c) =>
    "Your bank asks you to confirm your last payment" +
    (c.action.deadline ? ` by ${formatDate(c.action.deadline)}` : "") +
    `${toKeep(c)}.`,
  TRIAL_ENDING_WITHOUT_PAYMENT_METHOD: (c) => {
    if (c.entitlement.status === "PAUSED") {
      return "Your trial has ended: add a payment method to resume your subscription.";
    }
    const end = c.action.deadline ?? c.entitlement.trialEnd;
    const when = end ? inDays(daysUntil(end, c.now)) : "soon";
    return `Your trial ends ${when} \u2014 add a payment method${toKeep(c)}.`;
  },
};

/** The banner's sentence for what the customer must do. */
export function requiredActionMessage(
  action: RequiredAction,
  entitlement: Entitlement,
  plan: string,
  now: number,
): string {
  return SENTENCES[action.code]({ action, entitlement, plan, now });
}

/** Whether the scheduled change is the end of the subscription (the default plan, no price). */
export function isScheduledEnd(change: PendingChange, entitlement: Entitlement): boolean {
  return entitlement.cancelAtPeriodEnd || (change.interval == null && change.seats == null);
}

/** "Your plan changes to Pro on August 14, 2026 (billed monthly, 5 seats)." or, for a
 * scheduled end, "Your subscription ends on August 14, 2026." */
export function pendingChangeMessage(
  change: PendingChange,
  entitlement: Entitlement,
  planName: (slug: string) => string,
): string {
  const when = formatDate(change.effectiveAt);
  if (isScheduledEnd(change, entitlement)) return `Your subscription ends on ${when}.`;
  const details = [
    change.interval && `billed ${change.interval === "YEAR" ? "yearly" : "monthly"}`,
    change.seats != null && formatSeats(change.seats),
  ].filter(Boolean);
  const more = details.length > 0 ? ` (${details.join(", ")})` : "";
  return `Your plan changes to ${planName(change.plan)} on ${when}${more}.`;
}

/** "for 3 months", "for 1 month", "forever", "once". */
function discountDuration(discount: Discount): string {
  switch (discount.duration) {
    case "FOREVER":
      return "forever";
    case "ONCE":
      return "once";
    case "REPEATING": {
      const months = discount.durationInMonths;
      if (months == null) return "for a few months";
      return months === 1 ? "for 1 month" : `for ${months} months`;
    }
  }
}

/** A discount's terms: the coupon's name when it has one ("20% off for 3 months"), else built
 * from its amounts ("20% off for 3 months", "$5 off once", "10% off forever"). */
export function discountTerms(discount: Discount): string {
  if (discount.name) return discount.name;
  let off = "A discount";
  if (discount.percentOff != null) off = `${discount.percentOff}% off`;
  else if (discount.amountOff != null && discount.currency) {
    off = `${formatMoney(discount.amountOff, discount.currency)} off`;
  }
  return `${off} ${discountDuration(discount)}`;
}

/** The discount line of the billing page: "20% off for 3 months, until October 3, 2026". */
export function discountMessage(discount: Discount): string {
  const terms = discountTerms(discount);
  return discount.end ? `${terms}, until ${formatDate(discount.end)}` : terms;
}
