/**
 * Sizes as the kernel command line writes them (memparse): a number with an optional K, M, G, T
 * or P suffix (powers of 1024), e.g. `64G`, `700M`, `4096`.
 */
const SUFFIX: Record<string, number> = { '': 1, K: 2 ** 10, M: 2 ** 20, G: 2 ** 30, T: 2 ** 40, P: 2 ** 50 };

/** Bytes in a size string or number; throws a RangeError naming the bad input. */
export function parseSize(input: string | number, what?: string): number {
  const pre = what ? `${what}: ` : '';
  if (typeof input === 'number') {
    if (!Number.isFinite(input) || input < 0 || !Number.isInteger(input))
      throw new RangeError(`${pre}${input} is not a whole number of bytes`);
    return input;
  }
  const m = /^\s*(\d+(?:\.\d+)?)\s*([KMGTP]?)(?:i?B)?\s*$/i.exec(input);
  if (!m) throw new RangeError(`${pre}'${input}' is not a size (expected e.g. 4096, 700M, 64G)`);
  const bytes = Number(m[1]) * SUFFIX[m[2].toUpperCase()];
  if (!Number.isInteger(bytes)) throw new RangeError(`${pre}'${input}' is not a whole number of bytes`);
  return bytes;
}

/** A byte count in the largest unit that divides it, e.g. 4194304 -> '4M'. */
export function formatSize(bytes: number): string {
  for (const unit of ['P', 'T', 'G', 'M', 'K']) {
    const n = SUFFIX[unit];
    if (bytes >= n && bytes % n === 0) return `${bytes / n}${unit}`;
  }
  return `${bytes}`;
}
