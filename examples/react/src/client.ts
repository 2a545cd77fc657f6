// The GraphQL client: queries and mutations over HTTP, entitlementChanged over graphql-ws.
import { createClient as createSocket } from "graphql-ws";
import { useSyncExternalStore } from "react";
import {
  Client,
  type CombinedError,
  cacheExchange,
  fetchExchange,
  mapExchange,
  subscriptionExchange,
} from "urql";

import { EXPIRED, currentToken, signOut } from "./auth";
import { config, wsUrl } from "./config";

/** The WebSocket as the page sees it: polling stands in while it is "down". */
export type SocketState = "connecting" | "live" | "down";

let socketState: SocketState = "connecting";
const socketListeners = new Set<() => void>();

function setSocketState(next: SocketState): void {
  if (next === socketState) return;
  socketState = next;
  socketListeners.forEach((listener) => listener());
}

export function useSocketState(): SocketState {
  return useSyncExternalStore(
    (listener) => {
      socketListeners.add(listener);
      return () => socketListeners.delete(listener);
    },
    () => socketState,
  );
}

function authorization(): Record<string, string> {
  const token = currentToken();
  return token === null ? {} : { authorization: `Bearer ${token}` };
}

/** True when the API refused the caller's token. */
export function unauthenticated(error: CombinedError | undefined): boolean {
  return (
    error?.graphQLErrors.some((e) => e.extensions["code"] === "UNAUTHENTICATED") === true ||
    error?.response?.status === 401
  );
}

/** A client for the signed-in user; `dispose` closes its WebSocket. */
export function makeClient(): { client: Client; dispose: () => void } {
  setSocketState("connecting");
  const socket = createSocket({
    url: wsUrl,
    lazy: true,
    // Read at every (re)connection, so a reconnect after expiry sends the current token.
    connectionParams: authorization,
    connectionAckWaitTimeout: 10_000,
    retryAttempts: Number.POSITIVE_INFINITY,
    shouldRetry: () => true,
    // 1 s, 2 s, 4 s ... at most 30 s, with jitter so a restarted API is not stampeded.
    retryWait: (retries) =>
      new Promise((resolve) =>
        setTimeout(resolve, Math.min(1000 * 2 ** retries, 30_000) + Math.random() * 1000),
      ),
    on: {
      connected: () => setSocketState("live"),
      closed: () => setSocketState("down"),
    },
  });
  const client = new Client({
    url: config.apiUrl,
    requestPolicy: "network-only",
    preferGetMethod: false, // the API takes operations as JSON POSTs only
    fetchOptions: () => ({ headers: authorization() }),
    exchanges: [
      mapExchange({
        onError(error) {
          if (unauthenticated(error)) signOut(EXPIRED);
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query ?? "" };
          return {
            subscribe(sink) {
              return { unsubscribe: socket.subscribe(input, sink) };
            },
          };
        },
      }),
    ],
  });
  return { client, dispose: () => void socket.dispose() };
}
