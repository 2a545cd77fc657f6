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
  mutation Upgrade($plan: String!, $interval: BillingInterval!) {
    upgrade(plan: $plan, interval: $interval) {
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
