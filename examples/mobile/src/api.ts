// The billing API from the app: queries and mutations as JSON POSTs, entitlementChanged over
// graphql-ws. The types mirror schema.graphql (generate them with graphql-codegen as
// examples/react does, if the app grows).
import { type Client, createClient } from "graphql-ws";

import { currentToken } from "./auth";
import { API_URL, WS_URL } from "./config";

export type PortalFlow = "SUBSCRIPTION_CANCEL" | "SUBSCRIPTION_UPDATE" | "PAYMENT_METHOD_UPDATE";
export type BillingInterval = "MONTH" | "YEAR";

export interface Discount {
  coupon: string;
  name: string | null;
  percentOff: number | null;
  amountOff: number | null;
  currency: string | null;
  duration: "ONCE" | "REPEATING" | "FOREVER";
  durationInMonths: number | null;
  end: string | null;
}

export interface Entitlement {
  plan: string;
  status: string;
  cancelAtPeriodEnd: boolean;
  currentPeriodEnd: string | null;
  updatedAt: string | null;
  discount: Discount | null;
}

/** Where to send the customer (a Portal or Checkout URL), or why not. */
export type Destination =
  | { __typename: "PortalSession" | "CheckoutSession"; url: string }
  | { __typename: "BillingError"; code: string; message: string };

const FIELDS = `
  fragment Fields on Entitlement {
    plan status cancelAtPeriodEnd currentPeriodEnd updatedAt
    discount { coupon name percentOff amountOff currency duration durationInMonths end }
  }`;

const ENTITLEMENT = `query { entitlement { ...Fields } } ${FIELDS}`;
const ENTITLEMENT_CHANGED = `subscription { entitlementChanged { ...Fields } } ${FIELDS}`;
const OPEN_PORTAL = `
  mutation OpenPortal($returnPath: String!, $flow: PortalFlow, $app: String) {
    openPortal(returnPath: $returnPath, flow: $flow, app: $app) {
      __typename
      ... on PortalSession { url }
      ... on BillingError { code message }
    }
  }`;
const UPGRADE = `
  mutation Upgrade($plan: String!, $interval: BillingInterval!, $app: String) {
    upgrade(plan: $plan, interval: $interval, app: $app) {
      __typename
      ... on CheckoutSession { url }
      ... on PortalSession { url }
      ... on BillingError { code message }
    }
  }`;

function authorization(): Record<string, string> {
  const token = currentToken();
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

async function post<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch(API_URL, {
    method: "POST",
    headers: { "content-type": "application/json", ...authorization() },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await response.json()) as { data?: T; errors?: { message: string }[] };
  if (!response.ok || body.data === undefined || body.errors?.length) {
    throw new Error(body.errors?.[0]?.message ?? `HTTP ${response.status}`);
  }
  return body.data;
}

export async function readEntitlement(): Promise<Entitlement> {
  return (await post<{ entitlement: Entitlement }>(ENTITLEMENT)).entitlement;
}

export async function openPortal(
  flow: PortalFlow,
  returnPath: string,
  app: string,
): Promise<Destination> {
  const data = await post<{ openPortal: Destination }>(OPEN_PORTAL, { flow, returnPath, app });
  return data.openPortal;
}

export async function upgrade(
  plan: string,
  interval: BillingInterval,
  app: string,
): Promise<Destination> {
  return (await post<{ upgrade: Destination }>(UPGRADE, { plan, interval, app })).upgrade;
}

/** One WebSocket for the app; the token is read at every (re)connection. */
let socket: Client | null = null;

function sharedSocket(): Client {
  socket ??= createClient({
    url: WS_URL,
    lazy: true,
    connectionParams: authorization,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
  });
  return socket;
}

/** entitlementChanged: the current value first, then one message per change. Returns the
 * unsubscribe function. */
export function watchEntitlement(
  onValue: (entitlement: Entitlement) => void,
  onError: (error: unknown) => void,
): () => void {
  return sharedSocket().subscribe<{ entitlementChanged: Entitlement }>(
    { query: ENTITLEMENT_CHANGED },
    {
      next: (message) => {
        if (message.data) onValue(message.data.entitlementChanged);
      },
      error: onError,
      complete: () => undefined,
    },
  );
}
