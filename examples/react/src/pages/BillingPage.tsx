// /settings/billing: what the org has now, live, and the ways to change it through Stripe.
import { type FormEvent, useState } from "react";
import { Link } from "react-router";

import { type BillingActions, useBillingActions } from "../actions";
import {
  daysUntil,
  discountMessage,
  discountTerms,
  isScheduledEnd,
  pendingChangeMessage,
  trialLeft,
  useNow,
} from "../billingState";
import { PortalButton } from "../components/PortalButton";
import { SeatInput } from "../components/SeatInput";
import {
  NETWORK_TROUBLE,
  STATUS_LABELS,
  SUBSCRIBED,
  formatDate,
  formatLimits,
  formatSeats,
} from "../format";
import { allFeatures, featureLabel, hasFeature, upgradeFor } from "../features";
import type { BillingInterval } from "../gql/graphql";
import { type Entitlement, useEntitlement } from "../live";
import { type Plan, findPlan, planName, usePlans } from "../plans";
import { syncMessage, useReturnSync } from "../returns";
import { seatCount, seatRangeHint, seatTotal } from "../seats";

export function BillingPage() {
  const { entitlement, error } = useEntitlement();
  const plans = usePlans();
  const sync = useReturnSync(entitlement);
  const actions = useBillingActions(entitlement);
  const now = useNow();

  if (entitlement === null) {
    return (
      <section className="card" aria-busy={error === undefined}>
        <h1>Billing</h1>
        <p>{error ? NETWORK_TROUBLE : "Loading your plan..."}</p>
      </section>
    );
  }

  const name = planName(plans, entitlement.plan);
  const subscribed = SUBSCRIBED.has(entitlement.status);
  const changeable = subscribed && !entitlement.cancelAtPeriodEnd;
  const seats = entitlement.seats ?? null;
  const plan = findPlan(plans, entitlement.plan);
  const change = entitlement.pendingChange ?? null;
  const ending = change !== null && isScheduledEnd(change, entitlement);
  // A scheduled cancellation has its own banner (with Keep my plan); Stripe's date first.
  const endsOn = entitlement.cancelAtPeriodEnd
    ? ((change !== null && ending ? change.effectiveAt : entitlement.currentPeriodEnd) ?? null)
    : null;

  const discount = entitlement.discount ?? null;
  // Back from the Portal's cancel flow having taken the retention offer: the discount it gave.
  const offerTaken = sync?.phase === "done" && sync.retained === true && discount !== null;

  return (
    <>
      {sync && !offerTaken && (
        <p className={`notice ${sync.phase}`} data-testid="sync-state" data-phase={sync.phase} role="status">
          {syncMessage(sync, name, seats)}
        </p>
      )}
      {offerTaken && (
        <p className="notice done" data-testid="retention-applied" role="status">
          We applied {discountTerms(discount)}. Your {name} plan stays as it is.
        </p>
      )}
      {endsOn && (
        <div className="banner" data-testid="cancel-banner" role="status">
          <span>
            Your plan ends on {formatDate(endsOn)}. Until then you keep everything in {name}.
          </span>
          <PortalButton actions={actions} testId="keep-plan">
            Keep my plan
          </PortalButton>
        </div>
      )}
      {change !== null && !(ending && endsOn) && (
        <p className="notice" data-testid="pending-change" role="status">
          {pendingChangeMessage(change, entitlement, (slug) => planName(plans, slug))}
        </p>
      )}
      <section className="card">
        <h1>Billing</h1>
        <dl className="facts">
          <dt>Current Plan</dt>
          <dd data-testid="current-plan">{name}</dd>
          {seats !== null && (
            <>
              <dt>Seats</dt>
              <dd data-testid="current-seats">{formatSeats(seats)}</dd>
            </>
          )}
          <dt>Status</dt>
          <dd data-testid="plan-status">{STATUS_LABELS[entitlement.status]}</dd>
          {entitlement.trialEnd && entitlement.status === "TRIALING" && (
            <>
              <dt>Trial Ends</dt>
              <dd>
                <span data-testid="trial-end">{formatDate(entitlement.trialEnd)}</span>{" "}
                <span className="countdown" data-testid="trial-countdown">
                  ({trialLeft(daysUntil(entitlement.trialEnd, now))})
                </span>
              </dd>
            </>
          )}
          {entitlement.currentPeriodEnd && subscribed && (
            <>
              <dt>Current Period Ends</dt>
              <dd data-testid="period-end">{formatDate(entitlement.currentPeriodEnd)}</dd>
            </>
          )}
          {discount && (
            <>
              <dt>Discount</dt>
              <dd data-testid="discount">{discountMessage(discount)}</dd>
            </>
          )}
          <dt>Includes</dt>
          <dd data-testid="plan-limits">{formatLimits(entitlement.limits)}</dd>
        </dl>
        {seats !== null && changeable && (
          <SeatChanger
            key={seats}
            current={seats}
            plan={plan}
            interval={entitlement.interval ?? "MONTH"}
            actions={actions}
          />
        )}
        {actions.error && (
          <p className="error" data-testid="billing-error" role="alert">
            {actions.error}
          </p>
        )}
        <div className="actions">
          {entitlement.hasBillingAccount && (
            <PortalButton actions={actions} testId="manage-subscription" className="primary">
              Manage Subscription
            </PortalButton>
          )}
          {!subscribed && (
            <Link
              className={entitlement.hasBillingAccount ? "button" : "button primary"}
              to="/pricing"
              data-testid="view-plans"
            >
              View Plans
            </Link>
          )}
        </div>
        {entitlement.hasBillingAccount && (
          <div className="deep-links">
            {changeable && (
              <PortalButton actions={actions} testId="change-plan" className="link" flow="SUBSCRIPTION_UPDATE" errand="switch">
                Change plan
              </PortalButton>
            )}
            <PortalButton actions={actions} testId="update-card" className="link" flow="PAYMENT_METHOD_UPDATE">
              Update payment method
            </PortalButton>
            {changeable && (
              <PortalButton actions={actions} testId="cancel-subscription" className="link danger" flow="SUBSCRIPTION_CANCEL" errand="cancel">
                Cancel subscription
              </PortalButton>
            )}
          </div>
        )}
      </section>
      <Features entitlement={entitlement} plans={plans} />
    </>
  );
}

/** Every feature the app knows of: the org's own enabled, the others greyed out with the way to
 * them. Live: `entitlement` is the pushed one, so a change shows without a reload. */
function Features(props: { entitlement: Entitlement; plans: Plan[] | null }) {
  const { entitlement, plans } = props;
  return (
    <section className="card features" aria-labelledby="features-title">
      <h2 id="features-title">Features</h2>
      <ul data-testid="features">
        {allFeatures(plans ?? [], entitlement).map((key) => (
          <FeatureRow key={key} feature={key} entitlement={entitlement} plans={plans} />
        ))}
      </ul>
    </section>
  );
}

/** One feature: on, or greyed out with a link to /pricing naming the plan that brings it. */
function FeatureRow(props: { feature: string; entitlement: Entitlement; plans: Plan[] | null }) {
  const { feature, entitlement, plans } = props;
  const enabled = hasFeature(entitlement, feature);
  const label = featureLabel(feature);
  const target = enabled || plans === null ? null : upgradeFor(plans, feature, entitlement.plan);
  return (
    <li className={enabled ? "feature" : "feature off"}>
      <span
        className="what"
        data-testid={`feature-${feature}`}
        data-enabled={enabled}
        aria-disabled={!enabled || undefined}
      >
        <span className="mark" aria-hidden="true">
          {enabled ? "\u2713" : "\u2013"}
        </span>
        <span className="name">{label}</span>
        <span className="visually-hidden">{enabled ? " (included)" : " (not in your plan)"}</span>
      </span>
      {!enabled && (
        <Link
          to="/pricing"
          state={{ notice: `${label} comes with ${target?.name ?? "a paid plan"}.` }}
          data-testid={`feature-upgrade-${feature}`}
        >
          {target ? `Upgrade to ${target.name}` : "Upgrade"}
        </Link>
      )}
    </li>
  );
}

const WHERE_SEATS_CHANGE =
  "Opens Stripe's confirmation page, which shows the prorated amount before anything changes.";

/** A new seat count for the current per-seat plan, confirmed on Stripe's page (`changeSeats`);
 * the count shown changes only when the webhook lands. Keyed by the current count, so a change
 * that lands starts it afresh. */
function SeatChanger(props: {
  current: number;
  plan: Plan | null;
  interval: BillingInterval;
  actions: BillingActions;
}) {
  const { current, plan, interval, actions } = props;
  const [typed, setTyped] = useState(String(current));
  const range = plan?.seats ?? null;
  const seats = seatCount(typed, range);
  const total = seats !== null && plan !== null ? seatTotal(plan, interval, seats) : null;

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    if (seats !== null && seats !== current) actions.changeSeats(seats);
  };

  return (
    <form className="seat-change" onSubmit={submit}>
      <SeatInput id="seat-count" range={range} value={typed} onChange={setTyped} />
      <button
        type="submit"
        data-testid="change-seats"
        aria-describedby="change-seats-hint"
        disabled={actions.busy !== null || seats === null || seats === current}
      >
        {actions.busy === "change-seats" ? "Opening Stripe..." : "Change seats"}
      </button>
      <p id="change-seats-hint" className="hint" data-testid="change-seats-hint">
        {seats === null && range !== null ? seatRangeHint(range) : WHERE_SEATS_CHANGE}
        {total !== null && seats !== current && <> New price: {total}.</>}
      </p>
    </form>
  );
}
