// Words and numbers the pages show.
import type { BillingErrorCode, BillingInterval, SubscriptionStatus } from "./gql/graphql";

/** Every code has a sentence: a new code in schema.graphql fails the type check here. */
export const ERROR_SENTENCES: Record<BillingErrorCode, string> = {
  NO_CUSTOMER: "Your organization has no billing account yet. Choose a plan to start one.",
  NO_SUBSCRIPTION: "Your organization has no active subscription to change. Choose a plan first.",
  FORBIDDEN: "Only an owner or admin of your organization can manage billing.",
  INVALID_RETURN_PATH: "The billing service refused this page's return address.",
  UNKNOWN_PLAN: "That plan is not available with the chosen billing period.",
  ALREADY_ON_PLAN:
    "Nothing to change: you already have this plan, billing period and number of seats.",
  STRIPE_NOT_CONFIGURED: "Billing is not set up on this server yet.",
  STRIPE_UNAVAILABLE: "Stripe did not answer. Nothing was changed; please try again.",
  RATE_LIMITED: "Too many billing requests for your organization. Wait a minute and try again.",
  INVALID_SEATS:
    "That number of seats is not available: choose a number within the plan's range (only " +
    "per-seat plans have seats).",
  UNKNOWN_APP: "The billing service does not know this app (its APP_URLS setting names no such app).",
};

export const STATUS_LABELS: Record<SubscriptionStatus, string> = {
  NONE: "No subscription",
  TRIALING: "Trial",
  ACTIVE: "Active",
  PAST_DUE: "Past due (Stripe is retrying the payment)",
  UNPAID: "Unpaid",
  CANCELED: "Canceled",
  INCOMPLETE: "Incomplete",
  INCOMPLETE_EXPIRED: "Expired",
  PAUSED: "Paused",
};

/** Statuses in which the subscribed plan applies (the API's own rule). */
export const SUBSCRIBED: ReadonlySet<SubscriptionStatus> = new Set<SubscriptionStatus>([
  "TRIALING",
  "ACTIVE",
  "PAST_DUE",
]);

export function formatDate(iso: string): string {
  return new Intl.DateTimeFormat(undefined, { dateStyle: "long" }).format(new Date(iso));
}

/** An amount in the currency's smallest unit, e.g. 1500 usd -> "$15", 1550 usd -> "$15.50". */
export function formatMoney(amount: number, currency: string): string {
  return new Intl.NumberFormat(undefined, {
    style: "currency",
    currency: currency.toUpperCase(),
    minimumFractionDigits: amount % 100 === 0 ? 0 : 2,
  }).format(amount / 100);
}

/** "$20 / month"; with `per`, a unit price: "$15 per seat / month". */
export function formatPrice(
  amount: number,
  currency: string,
  interval: BillingInterval,
  per?: string,
): string {
  const unit = per === undefined ? "" : ` per ${per}`;
  return `${formatMoney(amount, currency)}${unit} / ${interval === "YEAR" ? "year" : "month"}`;
}

/** "1 seat", "5 seats". */
export function formatSeats(seats: number): string {
  return `${seats} ${seats === 1 ? "seat" : "seats"}`;
}

export function formatLimits(limits: Record<string, unknown>): string {
  return Object.entries(limits)
    .map(([name, value]) => `${name}: ${String(value)}`)
    .join(" · ");
}

export const NETWORK_TROUBLE = "Could not reach the billing service. Check your connection and try again.";
