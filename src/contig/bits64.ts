/**
 * 64-bit kernel bit arithmetic (unsigned long, dma_addr_t) on JS numbers, for the device model.
 *
 * JS bitwise operators work on 32 bits, so every value is handled as two unsigned 32-bit halves:
 * `hi = floor(x / 2^32)`, `lo = x >>> 0`. Addresses and lengths are integers below 2^53 (exact as
 * doubles; x86-64 user addresses stay below 2^47, physical ones below 2^52), so both halves are
 * exact and nothing allocates. Page-size bitmaps may use all 64 bits: they are given as a bigint
 * (or a number when no bit above 52 is set) and kept as a Bitmap64 pair.
 *
 * Worked example: 0x1_0000_3000 has hi = 1, lo = 0x3000; __ffs() is 12, __fls() is 32.
 */

const TWO32 = 4294967296;
/** Addresses and lengths must stay below this (Number.MAX_SAFE_INTEGER + 1). */
export const LIMIT53 = 2 ** 53;
/** POW2[k] = 2^k for k in 0..64: a table read is much cheaper than `2 ** k` in hot loops. */
export const POW2: Float64Array = Float64Array.from({ length: 65 }, (_, k) => 2 ** k);

/** The high 32 bits of x (x an integer in [0, 2^53)). */
export function hi32(x: number): number {
  return Math.floor(x / TWO32);
}

/** The low 32 bits of x, unsigned. */
export function lo32(x: number): number {
  return x >>> 0;
}

/** x mod 2^k for an integer x in [0, 2^53) and k in 0..64, without a floating-point fmod. */
export function mod_pow2(x: number, k: number): number {
  if (k < 32) return ((x >>> 0) & (POW2[k] - 1)) >>> 0;
  if (k === 32) return x >>> 0;
  return k >= 53 ? x : x - Math.floor(x / POW2[k]) * POW2[k];
}

/** a ^ b for integers in [0, 2^53). */
export function xor53(a: number, b: number): number {
  return (hi32(a) ^ hi32(b)) * TWO32 + ((lo32(a) ^ lo32(b)) >>> 0);
}

/** a | b for integers in [0, 2^53). */
export function or53(a: number, b: number): number {
  return (hi32(a) | hi32(b)) * TWO32 + ((lo32(a) | lo32(b)) >>> 0);
}

/** Index of the lowest set bit of a non-zero 32-bit value. */
export function ctz32(x: number): number {
  return 31 - Math.clz32(x & -x);
}

/** __ffs(): index of the lowest set bit of x (x a non-zero integer below 2^53). */
export function ffs53(x: number): number {
  const lo = lo32(x);
  return lo !== 0 ? ctz32(lo) : 32 + ctz32(hi32(x));
}

/** __fls(): index of the highest set bit of x (x a non-zero integer below 2^53). */
export function fls53(x: number): number {
  const hi = hi32(x);
  return hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(lo32(x));
}

/**
 * include/linux/log2.h bits_per(): the bits needed to write n (1 for 0 and 1); for n >= 1 this
 * is __fls(n) + 1 (bits_per(4) = 3, bits_per(5) = 3).
 */
export function bits_per(n: number): number {
  return n < 2 ? 1 : fls53(n) + 1;
}

/** A 64-bit bitmap (unsigned long) as two unsigned 32-bit halves. */
export interface Bitmap64 {
  readonly hi: number;
  readonly lo: number;
}

/** A bitmap from a bigint (any 64 bits) or a number (an integer below 2^53); RangeError if neither. */
export function bitmap64(v: bigint | number, what: string): Bitmap64 {
  if (typeof v === 'bigint') {
    if (v < 0n || v >= 1n << 64n) throw new RangeError(`${what}: ${v} does not fit in 64 unsigned bits`);
    return { hi: Number(v >> 32n), lo: Number(v & 0xffffffffn) };
  }
  if (!Number.isInteger(v) || v < 0 || v >= LIMIT53)
    throw new RangeError(`${what}: ${v} is not an integer in [0, 2^53); pass a bigint for higher bits`);
  return { hi: hi32(v), lo: lo32(v) };
}

/** The bitmap as a bigint (for display and tests). */
export function bitmap64_bigint(b: Bitmap64): bigint {
  return (BigInt(b.hi) << 32n) | BigInt(b.lo);
}

/** GENMASK(h, l) low half, 0 <= l <= h <= 63. */
export function genmask_lo(h: number, l: number): number {
  if (l > 31) return 0;
  const top = h >= 31 ? 0xffffffff : POW2[h + 1] - 1;
  return (top - (POW2[l] - 1)) >>> 0;
}

/** GENMASK(h, l) high half, 0 <= l <= h <= 63. */
export function genmask_hi(h: number, l: number): number {
  if (h < 32) return 0;
  const top = h === 63 ? 0xffffffff : POW2[h - 31] - 1;
  const below = l <= 32 ? 0 : POW2[l - 32] - 1;
  return (top - below) >>> 0;
}

/** Index of the highest set bit of a non-zero (hi, lo) pair. */
export function fls64(hi: number, lo: number): number {
  return hi !== 0 ? 63 - Math.clz32(hi) : 31 - Math.clz32(lo);
}

/** Index of the lowest set bit of a non-zero (hi, lo) pair. */
export function ffs64(hi: number, lo: number): number {
  return lo !== 0 ? ctz32(lo) : 32 + ctz32(hi);
}

/** Whether bit `i` (0..63) of the pair is set. */
export function test_bit64(hi: number, lo: number, i: number): boolean {
  return i < 32 ? ((lo >>> i) & 1) === 1 : ((hi >>> (i - 32)) & 1) === 1;
}

/** Whether x is an integer in [0, 2^53). */
export function is_u53(x: number): boolean {
  return Number.isInteger(x) && x >= 0 && x < LIMIT53;
}
