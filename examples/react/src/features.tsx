// Features: what the org may use now is `entitlement.features` (its plan's features and any
// granted in Stripe). The app gates its own UI on those lookup keys and names them itself.
import type { ReactNode } from "react";

import { type Entitlement, useEntitlement } from "./live";
import type { Plan } from "./plans";

/** The app's own words for the feature keys it knows (plans.toml's `[features]`). */
export const FEATURE_LABELS: Record<string, string> = {
  exports: "CSV exports",
  priority_support: "Priority support",
  sso: "Single sign-on",
  audit_log: "Audit log",
};

/** A feature's label; a key the app does not know (one granted in Stripe's Dashboard, say)
 * prettified: "beta_reports" -> "Beta reports". */
export function featureLabel(key: string): string {
  const known = FEATURE_LABELS[key];
  if (known !== undefined) return known;
  const words = key.replace(/[_\-.]+/g, " ").trim();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** Whether the org has a feature now (false while the entitlement loads). */
export function hasFeature(entitlement: Entitlement | null, key: string): boolean {
  return entitlement?.features.includes(key) === true;
}

/** Whether the signed-in org has a feature now; re-renders when the entitlement changes. */
export function useFeature(key: string): boolean {
  return hasFeature(useEntitlement().entitlement, key);
}

/** Its children if the org has the feature, else `fallback` (nothing by default). */
export function Feature(props: { name: string; children: ReactNode; fallback?: ReactNode }) {
  return useFeature(props.name) ? props.children : (props.fallback ?? null);
}

/** Every feature the app knows of: the plans' in catalog order, then any other the org has. */
export function allFeatures(plans: Plan[], entitlement: Entitlement | null): string[] {
  const keys = new Set(plans.flatMap((plan) => plan.features));
  const extra = (entitlement?.features ?? []).filter((key) => !keys.has(key));
  return [...keys, ...extra];
}

/** The plan to upgrade to for a feature: the first paid plan in the catalog (the pricing page's
 * order, smallest first) that grants it, other than the current one; null if none does. */
export function upgradeFor(plans: Plan[], key: string, current: string | null): Plan | null {
  return (
    plans.find((p) => p.slug !== current && p.prices.length > 0 && p.features.includes(key)) ??
    null
  );
}
