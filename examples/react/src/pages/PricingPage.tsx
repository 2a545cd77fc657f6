// /pricing: the catalog, a month/year switch, a seat picker on per-seat plans, and one button
// per plan calling `upgrade`.
import { useState } from "react";
import { useLocation } from "react-router";

import { type BillingActions, useBillingActions } from "../actions";
import { PortalButton } from "../components/PortalButton";
import { SeatInput } from "../components/SeatInput";
import { allFeatures, featureLabel } from "../features";
import { SUBSCRIBED, formatLimits, formatPrice } from "../format";
import type { BillingInterval } from "../gql/graphql";
import { type Entitlement, useEntitlement } from "../live";
import { type Plan, usePlans } from "../plans";
import { type SeatRange, seatCount, seatRangeHint, seatTotal } from "../seats";

const INTERVALS: [BillingInterval, string][] = [
  ["MONTH", "Monthly"],
  ["YEAR", "Yearly"],
];

function noticeOf(state: unknown): string | null {
  const notice = (state as { notice?: unknown } | null)?.notice;
  return typeof notice === "string" ? notice : null;
}

export function PricingPage() {
  const plans = usePlans();
  const { entitlement } = useEntitlement();
  const actions = useBillingActions(entitlement);
  const [interval, setBillingInterval] = useState<BillingInterval>("MONTH");
  const notice = noticeOf(useLocation().state);
  // Each plan's features in one order, the plans' own (the smallest plan's first).
  const order = allFeatures(plans ?? [], null);

  return (
    <section className="pricing">
      <h1>Plans</h1>
      {notice && (
        <p className="notice" data-testid="pricing-notice" role="status">
          {notice}
        </p>
      )}
      <div className="interval" role="group" aria-label="Billing period">
        {INTERVALS.map(([value, text]) => (
          <button
            key={value}
            type="button"
            data-testid={`interval-${value.toLowerCase()}`}
            aria-pressed={interval === value}
            onClick={() => setBillingInterval(value)}
          >
            {text}
          </button>
        ))}
      </div>
      {actions.error && (
        <p className="error" data-testid="billing-error" role="alert">
          {actions.error}
        </p>
      )}
      {plans === null ? (
        <p>Loading plans...</p>
      ) : (
        <div className="plans">
          {plans.map((plan) => (
            <PlanCard
              key={plan.slug}
              plan={plan}
              features={order.filter((key) => plan.features.includes(key))}
              interval={interval}
              entitlement={entitlement}
              actions={actions}
            />
          ))}
        </div>
      )}
    </section>
  );
}

/** The label of a plan's upgrade button when the plan has a price for the interval;
 * `newSeats` is the count picked on the current per-seat plan when it differs from today's. */
function upgradeLabel(
  plan: Plan,
  current: boolean,
  subscribed: boolean,
  newSeats: number | null,
): string {
  if (!subscribed) return `Upgrade to ${plan.name}`;
  if (!current) return `Switch to ${plan.name}`;
  return newSeats === null ? "Your plan" : `Change to ${newSeats} seats`;
}

/** A per-seat plan's number of seats (`seats`: `typed` read, null if out of range), bounded
 * by its range; shows what they cost together. */
function SeatPicker(props: {
  plan: Plan;
  range: SeatRange;
  interval: BillingInterval;
  typed: string;
  seats: number | null;
  onChange: (typed: string) => void;
}) {
  const { plan, range, interval, typed, seats, onChange } = props;
  return (
    <div className="seat-picker">
      <SeatInput id={`seats-${plan.slug}`} range={range} value={typed} onChange={onChange} />
      <p className="seat-total" data-testid={`seat-total-${plan.slug}`} aria-live="polite">
        {seats === null ? seatRangeHint(range) : (seatTotal(plan, interval, seats) ?? "")}
      </p>
    </div>
  );
}

function PlanCard(props: {
  plan: Plan;
  features: string[];
  interval: BillingInterval;
  entitlement: Entitlement | null;
  actions: BillingActions;
}) {
  const { plan, features, interval, entitlement, actions } = props;
  const price = plan.prices.find((p) => p.interval === interval);
  const free = plan.prices.length === 0;
  const subscribed = entitlement !== null && SUBSCRIBED.has(entitlement.status);
  const current = entitlement?.plan === plan.slug;
  const key = `upgrade-${plan.slug}`;
  const range = plan.seats ?? null;
  // The picked count; until one is typed, the current count on this plan, else the minimum.
  const [typed, setTyped] = useState<string | null>(null);
  const ownSeats = current && subscribed ? (entitlement?.seats ?? null) : null;
  const shownSeats = typed ?? String(ownSeats ?? range?.min ?? "");
  const seats = range === null ? null : seatCount(shownSeats, range);
  const newSeats = ownSeats !== null && seats !== null && seats !== ownSeats ? seats : null;

  let button;
  if (price) {
    button = (
      <button
        type="button"
        className="primary"
        data-testid={key}
        disabled={
          actions.busy !== null || entitlement === null || (range !== null && seats === null)
        }
        onClick={() => actions.upgrade(plan.slug, interval, seats)}
      >
        {actions.busy === key ? "Redirecting..." : upgradeLabel(plan, current, subscribed, newSeats)}
      </button>
    );
  } else if (free && subscribed) {
    // The free plan is where a cancelled subscription ends: cancelling is the way there.
    const ending = entitlement?.cancelAtPeriodEnd === true;
    button = (
      <PortalButton
        actions={actions}
        testId={key}
        flow="SUBSCRIPTION_CANCEL"
        errand="cancel"
        disabled={ending}
      >
        {ending ? "Starts when your plan ends" : `Downgrade to ${plan.name}`}
      </PortalButton>
    );
  } else {
    button = (
      <button type="button" data-testid={key} disabled>
        {free ? "Your plan" : `Not available ${interval === "YEAR" ? "yearly" : "monthly"}`}
      </button>
    );
  }

  let shownPrice = "—";
  if (price) {
    shownPrice = formatPrice(price.amount, price.currency, interval, range ? "seat" : undefined);
  } else if (free) shownPrice = "Free";

  return (
    <article className={current ? "plan current" : "plan"} data-testid={`plan-${plan.slug}`}>
      <h2>{plan.name}</h2>
      <p className="price">{shownPrice}</p>
      {(plan.trialDays ?? 0) > 0 && price && entitlement?.hasBillingAccount === false && (
        // one trial per org: an org that never had a billing account has not had it yet
        <p className="trial" data-testid={`plan-trial-${plan.slug}`}>
          {plan.trialDays}-day free trial
        </p>
      )}
      <p className="limits">
        {formatLimits(plan.limits)}
        {range && ` · ${range.min} to ${range.max} seats`}
      </p>
      <ul className="plan-features" data-testid={`plan-features-${plan.slug}`}>
        {features.map((key) => (
          <li key={key} data-feature={key}>
            {featureLabel(key)}
          </li>
        ))}
      </ul>
      {range && price && (
        <SeatPicker
          plan={plan}
          range={range}
          interval={interval}
          typed={shownSeats}
          seats={seats}
          onChange={setTyped}
        />
      )}
      {button}
    </article>
  );
}
