// Seats on a per-seat plan: the price is per seat, Stripe's quantity is the number of seats.
import { formatMoney, formatPrice, formatSeats } from "./format";
import type { BillingInterval } from "./gql/graphql";
import type { Plan } from "./plans";

export type SeatRange = NonNullable<Plan["seats"]>;

/** The number typed into a seat input, or null unless it is a whole number in the range. */
export function seatCount(typed: string, range: SeatRange | null): number | null {
  const seats = Number(typed.trim());
  if (typed.trim() === "" || !Number.isInteger(seats)) return null;
  if (range !== null && (seats < range.min || seats > range.max)) return null;
  return seats;
}

/** "Choose 2 to 200 seats." */
export function seatRangeHint(range: SeatRange): string {
  return `Choose ${range.min} to ${range.max} seats.`;
}

/** "$15 × 3 seats = $45 / month": the price per seat, the seats and what they cost together. */
export function seatTotal(plan: Plan, interval: BillingInterval, seats: number): string | null {
  const price = plan.prices.find((p) => p.interval === interval);
  if (!price) return null;
  const each = formatMoney(price.amount, price.currency);
  const total = formatPrice(price.amount * seats, price.currency, interval);
  return `${each} × ${formatSeats(seats)} = ${total}`;
}
