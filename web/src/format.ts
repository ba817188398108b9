// Formatting of money, counts and times for display. Money arrives as integers: costs in
// micro-dollars, budgets in cents.

export function dollarsFromMicros(micros: number): string {
  const dollars = micros / 1_000_000;
  const digits = Math.abs(dollars) < 1 && dollars !== 0 ? 4 : 2;
  return `$${dollars.toFixed(digits)}`;
}

export function dollarsFromCents(cents: number): string {
  return `$${(cents / 100).toFixed(2)}`;
}

export function count(value: number): string {
  return value.toLocaleString('en-US');
}

// Shows an RFC 3339 time as "YYYY-MM-DD HH:MM UTC", or the fallback when absent.
export function time(value: string | null | undefined, fallback = '—'): string {
  if (!value) {
    return fallback;
  }
  const date = new Date(value);
  if (Number.isNaN(date.getTime())) {
    return value;
  }
  return `${date.toISOString().slice(0, 16).replace('T', ' ')} UTC`;
}

// The current UTC month as YYYY-MM.
export function currentMonth(): string {
  return new Date().toISOString().slice(0, 7);
}

// Midnight UTC on the first day of the current month, as a date the API accepts for `since`.
export function monthStart(): string {
  return `${currentMonth()}-01`;
}

export function limitText(value: number | null): string {
  return value !== null && value > 0 ? count(value) : 'none';
}
