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

export const OpenPortal = graphql(`
  mutation OpenPortal($returnPath: String!, $flow: PortalFlow) {
    openPortal(returnPath: $returnPath, flow: $flow) {
      __typename
      ... on PortalSession {
        url
      }
      ... on BillingError {
        code
        message
      }
    }
  }
`);

export const Upgrade = graphql(`
  mutation Upgrade($plan: String!, $interval: BillingInterval!, $seats: Int) {
    upgrade(plan: $plan, interval: $interval, seats: $seats) {
      __typename
      ... on CheckoutSession {
        url
      }
      ... on PortalSession {
        url
      }
      ... on BillingError {
        code
        message
      }
    }
  }
`);

export const ChangeSeats = graphql(`
  mutation ChangeSeats($seats: Int!, $returnPath: String!) {
    changeSeats(seats: $seats, returnPath: $returnPath) {
      __typename
      ... on PortalSession {
        url
      }
      ... on BillingError {
        code
        message
      }
    }
  }
`);
