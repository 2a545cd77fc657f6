// Every button that opens the Customer Portal: deep-linked to a flow, named for where it goes,
// "Opening portal..." while `openPortal` runs, and disabled while any billing action runs.
import type { BillingActions } from "../actions";
import type { PortalFlow } from "../gql/graphql";
import type { PortalErrand } from "../returns";

export function PortalButton(props: {
  actions: BillingActions;
  testId: string;
  children: string;
  className?: string;
  flow?: PortalFlow;
  /** The change to wait for on return (noted before leaving; the API marks the way back with
   * the flow that completed). */
  errand?: PortalErrand;
  /** Where the Portal sends the customer back to (the billing page unless given). */
  returnPath?: string;
  disabled?: boolean;
}) {
  const { actions, testId, children, className, flow, errand, returnPath, disabled } = props;
  const open = (): void =>
    actions.openPortal(testId, flow ?? null, errand ?? null, returnPath);
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
