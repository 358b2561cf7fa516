/**
 * Miss estimates for a translation cache (an IOMMU's IOTLB, a NIC's MTT cache, the CPU's STLB)
 * holding `cache_entries` entries, over a buffer translated by entries of mixed sizes. This is an
 * estimate, not a hardware model: replacement is taken as LRU over a fully associative cache
 * (real IOTLBs are set associative and their policy is undocumented), and prefetching is ignored.
 *
 * Entries are given by size: counts[k] = entries covering 2^k bytes each (k = 12 for 4 KiB,
 * 21 for 2 MiB, 30 for 1 GiB). S = sum of counts[k] * 2^k is the bytes they cover.
 *
 * Random access (uniform over the buffer's bytes): entry j of size c_j is looked up with
 * probability p_j = c_j / S. The hit rate of LRU under independent references follows Che's
 * approximation (Che, Tung, Wang, IEEE JSAC 2002): with the characteristic time T solving
 *     sum_j (1 - exp(-p_j T)) = cache_entries,
 * entry j is resident with probability h_j = 1 - exp(-p_j T), and the miss rate per lookup is
 * sum_j p_j (1 - h_j). With N equal entries this is exactly 1 - min(1, cache_entries / N), the
 * textbook "fraction of the translations that fit"; with mixed sizes the large entries, looked up
 * more often, stay resident more. An access of a bytes at a random byte offset touches
 * 1 + (a - 1) / c entries of size c on average (each boundary it crosses is a new lookup).
 *
 * Sequential stream: a pass over the buffer looks every entry up once, in order. LRU with a
 * cyclic pattern keeps nothing when N > cache_entries, so every pass misses N times; when the
 * entries fit, only the first (cold) pass misses.
 */

/** Entries of a translation by size: index k holds the number of entries covering 2^k bytes. */
export type EntriesByShift = Float64Array;

/** A fresh, empty EntriesByShift. */
export function entries_by_shift(): EntriesByShift {
  return new Float64Array(64);
}

/** What a translation cache does for one buffer. */
export interface CacheEstimate {
  /** Translation entries of the buffer (N). */
  readonly entries: number;
  /** Entries the cache holds (E). */
  readonly cache_entries: number;
  /** Bytes the entries cover (S). */
  readonly covered_bytes: number;
  /** Uniform random bytes: probability a lookup misses, in steady state. */
  readonly random_miss_rate: number;
  /** Random accesses of `access_bytes`: expected lookups per access. */
  readonly lookups_per_access: number;
  /** Random accesses of `access_bytes`: expected misses per access. */
  readonly misses_per_access: number;
  /** Sequential passes: misses per pass once warm (N if the entries do not fit, else 0). */
  readonly sequential_misses_per_pass: number;
  /** Sequential: misses of the first, cold pass (N). */
  readonly sequential_cold_misses: number;
}

/** Sum of counts[k] * (1 - exp(-2^k / S * T)): the expected resident entries at characteristic time T. */
function occupancy(counts: EntriesByShift, S: number, T: number): number {
  let occ = 0;
  for (let k = 0; k < 64; k++) if (counts[k] > 0) occ += counts[k] * -Math.expm1((-(2 ** k) / S) * T);
  return occ;
}

/**
 * Che's characteristic time T for `cache_entries` over `counts` (Infinity when everything fits).
 * Found by bisection, so the result is deterministic.
 */
export function che_characteristic_time(counts: EntriesByShift, cache_entries: number): number {
  let N = 0;
  let S = 0;
  for (let k = 0; k < 64; k++) {
    N += counts[k];
    S += counts[k] * 2 ** k;
  }
  if (N <= cache_entries) return Number.POSITIVE_INFINITY;
  if (cache_entries <= 0) return 0;
  let lo = 0;
  let hi = 1;
  while (occupancy(counts, S, hi) < cache_entries) hi *= 2;
  for (let i = 0; i < 200 && hi - lo > hi * 1e-15; i++) {
    const mid = (lo + hi) / 2;
    if (occupancy(counts, S, mid) < cache_entries) lo = mid;
    else hi = mid;
  }
  return (lo + hi) / 2;
}

/**
 * Miss estimates of a cache of `cache_entries` over the entries `counts`, for uniform random
 * accesses of `access_bytes` and for sequential passes. RangeError for negative sizes.
 */
export function estimate_translation_cache(
  counts: EntriesByShift,
  cache_entries: number,
  access_bytes: number,
): CacheEstimate {
  if (!(cache_entries >= 0) || !Number.isInteger(cache_entries))
    throw new RangeError(`translation cache: ${cache_entries} entries is not a whole number >= 0`);
  if (!(access_bytes >= 1) || !Number.isInteger(access_bytes))
    throw new RangeError(
      `translation cache: access size ${access_bytes} is not a whole number of bytes >= 1`,
    );
  let N = 0;
  let S = 0;
  for (let k = 0; k < 64; k++) {
    N += counts[k];
    S += counts[k] * 2 ** k;
  }
  if (N === 0)
    return {
      entries: 0,
      cache_entries,
      covered_bytes: 0,
      random_miss_rate: 0,
      lookups_per_access: 0,
      misses_per_access: 0,
      sequential_misses_per_pass: 0,
      sequential_cold_misses: 0,
    };
  const T = che_characteristic_time(counts, cache_entries);
  let miss = 0;
  let lookups = 0;
  let misses = 0;
  for (let k = 0; k < 64; k++) {
    if (!(counts[k] > 0)) continue;
    const c = 2 ** k;
    const w = (counts[k] * c) / S; // share of the bytes (and of random lookups' first entry)
    const m = T === Number.POSITIVE_INFINITY ? 0 : Math.exp((-c / S) * T); // 1 - h_k
    const per = 1 + (access_bytes - 1) / c;
    miss += w * m;
    lookups += w * per;
    misses += w * per * m;
  }
  return {
    entries: N,
    cache_entries,
    covered_bytes: S,
    random_miss_rate: miss,
    lookups_per_access: lookups,
    misses_per_access: misses,
    sequential_misses_per_pass: N > cache_entries ? N : 0,
    sequential_cold_misses: N,
  };
}
