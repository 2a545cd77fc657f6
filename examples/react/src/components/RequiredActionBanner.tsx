// What the customer must do to keep paying, at the top of every signed-in page: one banner per
// `requiredAction` code, with the one button that fixes it, named for where it goes. Live: the
// banner comes and goes with entitlementChanged, without a reload.
import { useLocation } from "react-router";

import { useBillingActions } from "../actions";
import { requiredActionMessage, useNow } from "../billingState";
import { useEntitlement } from "../live";
import { planName, usePlans } from "../plans";
import { PortalButton } from "./PortalButton";

export function RequiredActionBanner() {
  const { entitlement } = useEntitlement();
  const plans = usePlans();
  const { pathname } = useLocation();
  const actions = useBillingActions(entitlement);
  const now = useNow();
  const action = entitlement?.requiredAction ?? null;
  if (entitlement === null || action === null) return null;

  const message = requiredActionMessage(action, entitlement, planName(plans, entitlement.plan), now);
  // 3-D Secure on a renewal is confirmed on Stripe's invoice page, which has no way back: it
  // opens beside the app, which shows the result by itself when the webhook lands.
  const confirm = action.code === "PAYMENT_CONFIRMATION_REQUIRED" ? action.invoiceUrl : null;

  return (
    <div className="banner alert" role="alert" data-testid="required-action" data-code={action.code}>
      <span data-testid="required-action-message">{message}</span>
      {confirm ? (
        <a
          className="button primary"
          href={confirm}
          target="_blank"
          rel="noreferrer"
          data-testid="confirm-payment"
        >
          Confirm payment<span className="visually-hidden"> (opens in a new tab)</span>
        </a>
      ) : (
        <PortalButton
          actions={actions}
          testId="fix-payment-method"
          className="primary"
          flow={action.flow ?? "PAYMENT_METHOD_UPDATE"}
          returnPath={pathname}
        >
          Update payment method
        </PortalButton>
      )}
      {actions.error && (
        <p className="error" data-testid="required-action-error">
          {actions.error}
        </p>
      )}
    </div>
  );
}
