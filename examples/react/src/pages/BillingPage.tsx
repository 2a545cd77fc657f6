// /settings/billing: what the org has now, live, and the ways to change it through Stripe.
import { Link } from "react-router";

import { useBillingActions } from "../actions";
import { PortalButton } from "../components/PortalButton";
import { NETWORK_TROUBLE, STATUS_LABELS, SUBSCRIBED, formatDate, formatLimits } from "../format";
import { useLiveEntitlement } from "../live";
import { planName, usePlans } from "../plans";
import { syncMessage, useReturnSync } from "../returns";

export function BillingPage() {
  const { entitlement, error } = useLiveEntitlement();
  const plans = usePlans();
  const sync = useReturnSync(entitlement);
  const actions = useBillingActions(entitlement);

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

  return (
    <>
      {sync && (
        <p className={`notice ${sync.phase}`} data-testid="sync-state" data-phase={sync.phase} role="status">
          {syncMessage(sync, name)}
        </p>
      )}
      {entitlement.cancelAtPeriodEnd && entitlement.currentPeriodEnd && (
        <div className="banner" data-testid="cancel-banner" role="status">
          <span>
            Your plan ends on {formatDate(entitlement.currentPeriodEnd)}. Until then you keep
            everything in {name}.
          </span>
          <PortalButton actions={actions} testId="keep-plan">
            Keep my plan
          </PortalButton>
        </div>
      )}
      <section className="card">
        <h1>Billing</h1>
        <dl className="facts">
          <dt>Current Plan</dt>
          <dd data-testid="current-plan">{name}</dd>
          <dt>Status</dt>
          <dd data-testid="plan-status">{STATUS_LABELS[entitlement.status]}</dd>
          {entitlement.trialEnd && entitlement.status === "TRIALING" && (
            <>
              <dt>Trial Ends</dt>
              <dd data-testid="trial-end">{formatDate(entitlement.trialEnd)}</dd>
            </>
          )}
          {entitlement.currentPeriodEnd && subscribed && (
            <>
              <dt>Current Period Ends</dt>
              <dd data-testid="period-end">{formatDate(entitlement.currentPeriodEnd)}</dd>
            </>
          )}
          <dt>Includes</dt>
          <dd data-testid="plan-limits">{formatLimits(entitlement.limits)}</dd>
        </dl>
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
    </>
  );
}
