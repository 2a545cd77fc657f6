// Every operation the example sends; src/gql/ holds their types, generated from schema.graphql.
import { graphql } from "./gql";

export const EntitlementFields = graphql(`
  fragment EntitlementFields on Entitlement {
    orgId
    plan
    status
    cancelAtPeriodEnd
    currentPeriodEnd
    trialEnd
    hasBillingAccount
    limits
    updatedAt
    interval
    seats
    features
    requiredAction {
      code
      flow
      invoiceUrl
      since
      deadline
    }
    pendingChange {
      plan
      interval
      seats
      effectiveAt
    }
    discount {
      coupon
      name
      percentOff
      amountOff
      currency
      duration
      durationInMonths
      end
    }
  }
`);

export const EntitlementQuery = graphql(`
  query Entitlement {
    entitlement {
      ...EntitlementFields
    }
  }
`);

export const EntitlementChanged = graphql(`
  subscription EntitlementChanged {
    entitlementChanged {
      ...EntitlementFields
    }
  }
`);

export const PlansQuery = graphql(`
  query Plans {
    plans {
      slug
      name
      limits
      features
      trialDays
      seats {
        min
        max
      }
      prices {
        interval
        amount
        currency
      }
    }
  }
`);

// Where to send the customer, or why not: openPortal's answer; changeSeats' (the same union)
// and upgrade's (plus Checkout) reuse it.
export const PortalOutcome = graphql(`
  fragment PortalOutcome on OpenPortalResult {
    __typename
    ... on PortalSession {
      url
    }
    ... on BillingError {
      code
      message
    }
  }
`);

export const OpenPortal = graphql(`
  mutation OpenPortal($returnPath: String!, $flow: PortalFlow) {
    openPortal(returnPath: $returnPath, flow: $flow) {
      ...PortalOutcome
    }
  }
`);

export const Upgrade = graphql(`
  mutation Upgrade($plan: String!, $interval: BillingInterval!, $seats: Int) {
    upgrade(plan: $plan, interval: $interval, seats: $seats) {
      __typename # CheckoutSession's too: the fragment's covers only OpenPortalResult's types
      ...PortalOutcome
      ... on CheckoutSession {
        url
      }
    }
  }
`);

export const ChangeSeats = graphql(`
  mutation ChangeSeats($seats: Int!, $returnPath: String!) {
    changeSeats(seats: $seats, returnPath: $returnPath) {
      ...PortalOutcome
    }
  }
`);
