/**
 * printf helpers for the /proc renderers (the parts of lib/vsprintf.c and fs/seq_file.c they
 * use). The model keeps counters in Float64Arrays; the kernel prints them with %lu, %ld or %i, so
 * every number goes through lu() and comes out as a plain integer, never `1e+21` or `3.5`.
 */

/** `%lu` / `%ld` / `%i` of a counter: the integer part, in decimal. */
export function lu(v: number): string {
  const n = Math.trunc(v);
  // -0 would print as "0" anyway; a sum of Float64 counters stays exact below 2^53.
  return Number.isSafeInteger(n) ? String(n) : BigInt(n).toString();
}

/** `%<width>lu`: right-aligned in `width` columns (wider numbers overflow, as printf does). */
export function lu_w(v: number, width: number): string {
  return lu(v).padStart(width);
}

/** `%<width>s`: right-aligned in `width` columns. */
export function s_w(s: string, width: number): string {
  return s.padStart(width);
}

/** `%-<width>s`: left-aligned in `width` columns. */
export function s_lw(s: string, width: number): string {
  return s.padEnd(width);
}

/** fls(): the 1-based index of the most significant set bit, 0 for 0 (fls(1) = 1, fls(23) = 5). */
export function fls(x: number): number {
  if (x <= 0) return 0;
  if (x >= 2 ** 32) return 32 + fls(Math.floor(x / 2 ** 32));
  return 32 - Math.clz32(x);
}
