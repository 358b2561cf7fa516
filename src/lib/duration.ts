/**
 * Durations for simulated time, in nanoseconds: a number (ns) or a string with a unit, e.g.
 * `500ms`, `1.5s`, `24h`, `90us`.
 */
const UNITS: Record<string, number> = {
  ns: 1,
  us: 1e3,
  µs: 1e3,
  ms: 1e6,
  s: 1e9,
  m: 60e9,
  min: 60e9,
  h: 3600e9,
  d: 86400e9,
};

/** Nanoseconds in a duration; throws a RangeError naming the bad input. */
export function parseDuration(input: string | number): number {
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0)
      throw new RangeError(`${input} is not a duration in nanoseconds`);
    return Math.round(input);
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|min|h|d)\s*$/.exec(input);
  if (!m) throw new RangeError(`'${input}' is not a duration (expected e.g. 500ms, 1.5s, 24h)`);
  return Math.round(Number(m[1]) * UNITS[m[2]]);
}

/** A nanosecond count in the largest unit that keeps it readable, e.g. 1500000 -> '1.5ms'. */
export function formatDuration(ns: number): string {
  for (const [unit, n] of [
    ['h', 3600e9],
    ['s', 1e9],
    ['ms', 1e6],
    ['us', 1e3],
  ] as const) {
    if (ns >= n) return `${+(ns / n).toFixed(3)}${unit}`;
  }
  return `${ns}ns`;
}
