// /pricing: the catalog, a month/year switch, and one button per plan calling `upgrade`.
import { useState } from "react";
import { useLocation } from "react-router";

import { useBillingActions } from "../actions";
import { SUBSCRIBED, formatLimits, formatPrice } from "../format";
import type { BillingInterval } from "../gql/graphql";
import { type Entitlement, useLiveEntitlement } from "../live";
import { type Plan, usePlans } from "../plans";
import { RETURN_PATHS } from "../returns";

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

function PlanCard(props: {
  plan: Plan;
  interval: BillingInterval;
  entitlement: Entitlement | null;
  actions: ReturnType<typeof useBillingActions>;
}) {
  const { plan, interval, entitlement, actions } = props;
  const price = plan.prices.find((p) => p.interval === interval);
  const subscribed = entitlement !== null && SUBSCRIBED.has(entitlement.status);
  const current = entitlement?.plan === plan.slug;
  const key = `upgrade-${plan.slug}`;
  const busy = actions.busy !== null;

  let button;
  if (price) {
    const text = current && subscribed ? "Your plan" : subscribed ? `Switch to ${plan.name}` : `Upgrade to ${plan.name}`;
    button = (
      <button
        type="button"
        className="primary"
        data-testid={key}
        disabled={busy || entitlement === null}
        onClick={() => actions.upgrade(plan.slug, interval)}
      >
        {actions.busy === key ? "Redirecting..." : text}
      </button>
    );
  } else if (plan.prices.length === 0 && subscribed) {
    // The free plan is where a cancelled subscription ends: cancelling is the way there.
    button = (
      <button
        type="button"
        data-testid={key}
        disabled={busy || entitlement?.cancelAtPeriodEnd === true}
        onClick={() => actions.openPortal(key, "SUBSCRIPTION_CANCEL", "cancel", RETURN_PATHS.cancel)}
      >
        {actions.busy === key ? "Opening portal..." : entitlement?.cancelAtPeriodEnd ? "Starts when your plan ends" : `Downgrade to ${plan.name}`}
      </button>
    );
  } else {
    button = (
      <button type="button" data-testid={key} disabled>
        {plan.prices.length === 0 ? "Your plan" : `Not available ${interval === "YEAR" ? "yearly" : "monthly"}`}
      </button>
    );
  }

  return (
    <article className={current ? "plan current" : "plan"} data-testid={`plan-${plan.slug}`}>
      <h2>{plan.name}</h2>
      <p className="price">{price ? formatPrice(price.amount, price.currency, interval) : plan.prices.length === 0 ? "Free" : "—"}</p>
      <p className="limits">{formatLimits(plan.limits)}</p>
      {button}
    </article>
  );
}
