// The seat count of a per-seat plan, within its range: the pricing page's picker and the
// billing page's Change seats both type it here.
import type { SeatRange } from "../seats";

export function SeatInput(props: {
  /** The input's id and test id. */
  id: string;
  /** Null while the catalog loads. */
  range: SeatRange | null;
  value: string;
  onChange: (typed: string) => void;
}) {
  const { id, range, value, onChange } = props;
  return (
    <>
      <label htmlFor={id}>Seats</label>
      <input
        id={id}
        type="number"
        inputMode="numeric"
        data-testid={id}
        min={range?.min}
        max={range?.max}
        step={1}
        value={value}
        onChange={(event) => onChange(event.target.value)}
      />
    </>
  );
}
