// Every button that opens the Customer Portal: deep-linked to a flow, named for where it goes,
// "Opening portal..." while `openPortal` runs, and disabled while any billing action runs.
import type { BillingActions } from "../actions";
import type { PortalFlow } from "../gql/graphql";
import { type PortalErrand, RETURN_PATHS } from "../returns";

export function PortalButton(props: {
  actions: BillingActions;
  testId: string;
  children: string;
  className?: string;
  flow?: PortalFlow;
  /** The change to wait for on return (its return path says so). */
  errand?: PortalErrand;
  /** Where the Portal sends the customer back to (the errand's path, else the billing page). */
  returnPath?: string;
  disabled?: boolean;
}) {
  const { actions, testId, children, className, flow, errand, returnPath, disabled } = props;
  const open = (): void =>
    actions.openPortal(
      testId,
      flow ?? null,
      errand ?? null,
      returnPath ?? (errand && RETURN_PATHS[errand]),
    );
  return (
    <button
      type="button"
      className={className}
      data-testid={testId}
      disabled={disabled === true || actions.busy !== null}
      onClick={open}
    >
      {actions.busy === testId ? "Opening portal..." : children}
    </button>
  );
}
