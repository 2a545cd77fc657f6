// Where the billing API is, and this app's name in the API's APP_URLS with its link base.
import { Platform } from "react-native";

/** The billing API's GraphQL endpoint; entitlementChanged is the same URL over wss:. */
export const API_URL = "https://billing.example.com/graphql";
export const WS_URL = API_URL.replace(/^http/, "ws");

/** This app's name in the API's APP_URLS (`ios=https://links.example.com/ios,android=...`):
 * every URL the API builds for a call naming it (the Portal's return URL, Checkout's success
 * and cancel URLs, a flow's after-completion redirect) is on that app's URL. */
export const APP: "ios" | "android" = Platform.OS === "ios" ? "ios" : "android";

/** The app's universal link (iOS) / App Link (Android) base: APP_URLS' value for APP. */
const LINK_BASES = {
  ios: "https://links.example.com/ios",
  android: "https://links.example.com/android",
} as const;

/** Where Stripe sends the customer back to, on the app's link domain. */
export const RETURN_PATH = "/settings/billing";

/** What the in-app browser waits for: the return URL without its query (the API appends
 * `?billing_flow=...` or `?checkout=success&session_id=...`). */
export const RETURN_URL = `${LINK_BASES[APP]}${RETURN_PATH}`;
