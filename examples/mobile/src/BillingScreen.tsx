// The billing screen: the org's entitlement, live, and the ways to change it through Stripe's
// pages in an in-app browser (ASWebAuthenticationSession on iOS, a Custom Tab on Android) that
// closes itself on the app's universal link / App Link when the flow completes.
import * as Linking from "expo-linking";
import * as WebBrowser from "expo-web-browser";
import { useCallback, useEffect, useRef, useState } from "react";
import { ActivityIndicator, AppState, Button, StyleSheet, Text, View } from "react-native";

import {
  type Destination,
  type Entitlement,
  openPortal,
  readEntitlement,
  upgrade,
  watchEntitlement,
} from "./api";
import { APP, RETURN_PATH, RETURN_URL } from "./config";
import {
  type Errand,
  type Outcome,
  discountTerms,
  formatDate,
  hintOf,
  outcomeMessage,
  outcomeOf,
} from "./returns";

const CONFIRM_TIMEOUT_MS = 30_000;

/** While waiting, what the link's hint says the customer did (no hint: the sheet was closed). */
const WAITING: Record<string, string> = {
  SUBSCRIPTION_CANCEL: "Confirming your choice with Stripe...",
  SUBSCRIPTION_UPDATE: "Applying your plan change...",
  checkout: "Confirming your payment...",
};

type Phase =
  | { name: "idle" }
  | { name: "browser" }
  | { name: "waiting"; errand: Errand; hint: string | null; late: boolean }
  | { name: "done"; outcome: Outcome };

/** The entitlement as the server has it: read once, then every entitlementChanged push; read
 * again whenever the app comes to the foreground (a backgrounded app's socket may have died,
 * and graphql-ws reconnects on its own). */
function useLiveEntitlement(): { entitlement: Entitlement | null; reread: () => void } {
  const [entitlement, setEntitlement] = useState<Entitlement | null>(null);
  const reread = useCallback(() => {
    readEntitlement().then(setEntitlement, () => undefined); // the socket or the next read fixes it
  }, []);
  useEffect(() => {
    reread();
    const stop = watchEntitlement(setEntitlement, () => undefined);
    const foreground = AppState.addEventListener("change", (state) => {
      if (state === "active") reread();
    });
    return () => {
      stop();
      foreground.remove();
    };
  }, [reread]);
  return { entitlement, reread };
}

export function BillingScreen() {
  const { entitlement, reread } = useLiveEntitlement();
  const [phase, setPhase] = useState<Phase>({ name: "idle" });
  const [error, setError] = useState<string | null>(null);
  const busy = useRef(false);

  /** Mint a Stripe URL for this app, open it in the in-app browser, and wait for what the
   * entitlement shows. The browser's result and the link's hint only say the customer is
   * back: a dismissed sheet may follow a completed flow (iOS before 17.4 cannot catch https
   * callbacks), so the entitlement decides either way. */
  const go = async (errand: Errand, mint: () => Promise<Destination>): Promise<void> => {
    if (busy.current) return; // one session per tap
    busy.current = true;
    setError(null);
    try {
      const destination = await mint();
      if (destination.__typename === "BillingError") {
        setError(destination.message);
        return;
      }
      setPhase({ name: "browser" });
      const result = await WebBrowser.openAuthSessionAsync(destination.url, RETURN_URL, {
        preferUniversalLinks: true, // iOS 17.4+: an https callback on the associated domain
      });
      const hint = result.type === "success" ? hintOf(result.url) : null;
      if (hint === "checkout-canceled") {
        setPhase({ name: "idle" });
        setError("Checkout was canceled. Nothing was charged.");
        return;
      }
      setPhase({ name: "waiting", errand, hint, late: false });
      reread();
    } catch (failure) {
      setPhase({ name: "idle" });
      setError(failure instanceof Error ? failure.message : "Could not reach the billing service.");
    } finally {
      busy.current = false;
    }
  };

  // The universal link may also open the app by itself (an App Link from a Custom Tab that
  // handed it over, or a cold start): it is the same hint, so read the entitlement again.
  const link = Linking.useURL();
  useEffect(() => {
    if (link !== null && link.startsWith(RETURN_URL)) reread();
  }, [link, reread]);

  // Done when the entitlement shows the change; said plainly when it takes long.
  useEffect(() => {
    if (phase.name !== "waiting" || entitlement === null) return;
    const outcome = outcomeOf(phase.errand, entitlement);
    if (outcome !== null) setPhase({ name: "done", outcome });
  }, [phase, entitlement]);
  const waiting = phase.name === "waiting" && !phase.late;
  useEffect(() => {
    if (!waiting) return;
    const timer = setTimeout(
      () => setPhase((p) => (p.name === "waiting" ? { ...p, late: true } : p)),
      CONFIRM_TIMEOUT_MS,
    );
    return () => clearTimeout(timer);
  }, [waiting]);

  if (entitlement === null) return <ActivityIndicator style={styles.screen} />;

  const subscribed = entitlement.status === "ACTIVE" || entitlement.status === "TRIALING";
  const cancel = (): void =>
    void go({ kind: "cancel", before: entitlement }, () =>
      openPortal("SUBSCRIPTION_CANCEL", RETURN_PATH, APP),
    );
  const toTeam = (): void =>
    void go({ kind: "upgrade", plan: "team", before: entitlement }, () =>
      upgrade("team", "MONTH", APP),
    );

  return (
    <View style={styles.screen}>
      <Text style={styles.title}>Billing</Text>
      {phase.name === "waiting" && (
        <Text style={styles.notice}>
          {phase.late
            ? "Stripe has not confirmed a change after 30 seconds. If you made one, it shows " +
              "here by itself when it arrives; if you left without confirming, nothing changed."
            : ((phase.hint !== null ? WAITING[phase.hint] : undefined) ?? "Checking with Stripe...")}
        </Text>
      )}
      {phase.name === "done" && <Text style={styles.notice}>{outcomeMessage(phase.outcome)}</Text>}
      {error !== null && <Text style={styles.error}>{error}</Text>}
      <Text>Plan: {entitlement.plan}</Text>
      <Text>Status: {entitlement.status}</Text>
      {entitlement.discount && (
        <Text>
          Discount: {discountTerms(entitlement.discount)}
          {entitlement.discount.end ? `, until ${formatDate(entitlement.discount.end)}` : ""}
        </Text>
      )}
      {entitlement.cancelAtPeriodEnd && entitlement.currentPeriodEnd && (
        <Text>Your plan ends on {formatDate(entitlement.currentPeriodEnd)}.</Text>
      )}
      <View style={styles.actions}>
        {entitlement.plan !== "team" && (
          <Button title="Upgrade to Team" onPress={toTeam} disabled={phase.name === "browser"} />
        )}
        {subscribed && !entitlement.cancelAtPeriodEnd && (
          <Button
            title="Cancel subscription"
            color="#cf222e"
            onPress={cancel}
            disabled={phase.name === "browser"}
          />
        )}
      </View>
    </View>
  );
}

const styles = StyleSheet.create({
  screen: { flex: 1, padding: 24, gap: 8, justifyContent: "center" },
  title: { fontSize: 24, fontWeight: "600", marginBottom: 8 },
  notice: { padding: 12, borderRadius: 8, backgroundColor: "#ddf4ff" },
  error: { padding: 12, borderRadius: 8, backgroundColor: "#ffebe9" },
  actions: { marginTop: 16, gap: 12 },
});
