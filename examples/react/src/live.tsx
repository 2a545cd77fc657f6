// The org's entitlement, kept current: entitlementChanged while the WebSocket is up, polling
// with backoff while it is down. Reads only: nothing here ever writes or calls Stripe.
// <EntitlementProvider> runs it once for the whole app; pages and gates read it with
// useEntitlement().
import { type ReactNode, createContext, useContext, useEffect, useRef, useState } from "react";
import { type CombinedError, useQuery, useSubscription } from "urql";

import { useSocketState } from "./client";
import type { EntitlementFieldsFragment } from "./gql/graphql";
import { EntitlementChanged, EntitlementQuery } from "./operations";

export type Entitlement = EntitlementFieldsFragment;

const FIRST_POLL_MS = 1_000;
const MAX_POLL_MS = 30_000;
const FIRST_RESUBSCRIBE_MS = 5_000;
const MAX_RESUBSCRIBE_MS = 60_000;

export interface LiveEntitlement {
  /** Null until the first answer. */
  entitlement: Entitlement | null;
  /** Why there is no entitlement yet, if a read failed. */
  error: CombinedError | undefined;
}

const LiveContext = createContext<LiveEntitlement | null>(null);

/** One entitlement query and one entitlementChanged subscription for everything inside. */
export function EntitlementProvider(props: { children: ReactNode }) {
  return <LiveContext value={useLiveEntitlement()}>{props.children}</LiveContext>;
}

/** The org's entitlement as it is now, from the <EntitlementProvider> above. */
export function useEntitlement(): LiveEntitlement {
  const live = useContext(LiveContext);
  if (live === null) throw new Error("useEntitlement needs an <EntitlementProvider> above it");
  return live;
}

function useLiveEntitlement(): LiveEntitlement {
  const [query, reread] = useQuery({ query: EntitlementQuery });
  const [pushed, resubscribe] = useSubscription({ query: EntitlementChanged });
  const failures = useRef(0);
  const socket = useSocketState();
  const [latest, setLatest] = useState<Entitlement | null>(null);

  // Whichever answer arrived last is the newest: both are the server's state when sent.
  useEffect(() => {
    if (query.data) setLatest(query.data.entitlement);
  }, [query.data]);
  useEffect(() => {
    if (!pushed.data) return;
    failures.current = 0;
    setLatest(pushed.data.entitlementChanged);
  }, [pushed.data]);

  // graphql-ws retries a dropped socket itself; a subscription it gave up on (a close code it
  // deems fatal) is started again later, while polling covers the gap.
  useEffect(() => {
    if (!pushed.error) return;
    const wait = Math.min(FIRST_RESUBSCRIBE_MS * 2 ** failures.current, MAX_RESUBSCRIBE_MS);
    failures.current += 1;
    const timer = window.setTimeout(() => resubscribe({ requestPolicy: "network-only" }), wait);
    return () => window.clearTimeout(timer);
  }, [pushed.error, resubscribe]);

  useEffect(() => {
    if (socket !== "down") return;
    let wait = FIRST_POLL_MS;
    let timer = 0;
    const poll = (): void => {
      reread({ requestPolicy: "network-only" });
      wait = Math.min(wait * 2, MAX_POLL_MS);
      timer = window.setTimeout(poll, wait);
    };
    timer = window.setTimeout(poll, wait);
    return () => window.clearTimeout(timer);
  }, [socket, reread]);

  return { entitlement: latest, error: latest === null ? query.error : undefined };
}
