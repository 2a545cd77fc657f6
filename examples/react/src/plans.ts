// The public plan catalog, read once per page load.
import { useQuery } from "urql";

import type { PlansQuery as PlansResult } from "./gql/graphql";
import { PlansQuery } from "./operations";

export type Plan = PlansResult["plans"][number];

export function usePlans(): Plan[] | null {
  const [result] = useQuery({ query: PlansQuery, requestPolicy: "cache-first" });
  return result.data?.plans ?? null;
}

/** The plan with this slug (null while the catalog loads). */
export function findPlan(plans: Plan[] | null, slug: string): Plan | null {
  return plans?.find((plan) => plan.slug === slug) ?? null;
}

/** A plan's display name from its slug (the slug itself while the catalog loads). */
export function planName(plans: Plan[] | null, slug: string): string {
  return findPlan(plans, slug)?.name ?? slug;
}
