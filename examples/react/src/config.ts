// Runtime settings, from /config.js (public/config.js; `make run` serves its own version).

export interface BillingConfig {
  /** The billing API's GraphQL endpoint; the WebSocket is the same URL with ws(s):. */
  apiUrl: string;
  /** Only `make run` turns this on: a button that signs in as the demo org's owner. */
  devSignIn: boolean;
}

declare global {
  interface Window {
    BILLING_CONFIG?: Partial<BillingConfig>;
  }
}

const given = window.BILLING_CONFIG ?? {};

export const config: BillingConfig = {
  apiUrl: given.apiUrl ?? "http://127.0.0.1:8000/graphql",
  devSignIn: given.devSignIn === true,
};

export const wsUrl = config.apiUrl.replace(/^http/, "ws");

/** Where Stripe sends the customer back to; the API only accepts paths on its APP_URL. */
export const BILLING_PATH = "/settings/billing";
