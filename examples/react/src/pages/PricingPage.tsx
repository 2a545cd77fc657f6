// /pricing: the catalog, a month/year switch, and one button per plan calling `upgrade`.
import { useState } from "react";
import { useLocation } from "react-router";

import { type BillingActions, useBillingActions } from "../actions";
import { PortalButton } from "../components/PortalButton";
import { SUBSCRIBED, formatLimits, formatPrice } from "../format";
import type { BillingInterval } from "../gql/graphql";
import { type Entitlement, useLiveEntitlement } from "../live";
import { type Plan, usePlans } from "../plans";

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
  const { entitlement } = useLiveEntitlement();
  const actions = useBillingActions(entitlement);
  const [interval, setBillingInterval] = useState<BillingInterval>("MONTH");
  const notice = noticeOf(useLocation().state);

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

/** The label of a plan's upgrade button when the plan has a price for the interval. */
function upgradeLabel(plan: Plan, current: boolean, subscribed: boolean): string {
  if (!subscribed) return `Upgrade to ${plan.name}`;
  return current ? "Your plan" : `Switch to ${plan.name}`;
}

function PlanCard(props: {
  plan: Plan;
  interval: BillingInterval;
  entitlement: Entitlement | null;
  actions: BillingActions;
}) {
  const { plan, interval, entitlement, actions } = props;
  const price = plan.prices.find((p) => p.interval === interval);
  const free = plan.prices.length === 0;
  const subscribed = entitlement !== null && SUBSCRIBED.has(entitlement.status);
  const current = entitlement?.plan === plan.slug;
  const key = `upgrade-${plan.slug}`;

  let button;
  if (price) {
    button = (
      <button
        type="button"
        className="primary"
        data-testid={key}
        disabled={actions.busy !== null || entitlement === null}
        onClick={() => actions.upgrade(plan.slug, interval)}
      >
        {actions.busy === key ? "Redirecting..." : upgradeLabel(plan, current, subscribed)}
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
  if (price) shownPrice = formatPrice(price.amount, price.currency, interval);
  else if (free) shownPrice = "Free";

  return (
    <article className={current ? "plan current" : "plan"} data-testid={`plan-${plan.slug}`}>
      <h2>{plan.name}</h2>
      <p className="price">{shownPrice}</p>
      <p className="limits">{formatLimits(plan.limits)}</p>
      {button}
    </article>
  );
}
