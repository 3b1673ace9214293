/** The statistics of a calibration: median, mean, sample standard deviation, coefficient of variation. Pure. */

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function mean(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

/** Sample standard deviation (n - 1); 0 for fewer than two values. */
export function stddev(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Coefficient of variation: stddev / mean (0 for fewer than two values or a zero mean). */
export function coefficientOfVariation(xs: readonly number[]): number {
  const m = mean(xs);
  if (xs.length < 2 || !(m > 0)) return 0;
  return stddev(xs) / m;
}

/** `value` rounded to `digits` decimal places (for records and reports). */
export function round(value: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(value * f) / f;
}
