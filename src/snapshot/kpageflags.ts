/**
 * The bit layout of /proc/kpageflags across kernel releases.
 *
 * Bits 0–26 are ABI (include/uapi/linux/kernel-page-flags.h); bits 32 and up are "kernel hacking
 * assistances" (include/linux/kernel-page-flags.h), exported by fs/proc/page.c
 * stable_page_flags() but explicitly not stable. No bit ever changed its number: bits were added,
 * one was renamed (23: BALLOON → OFFLINE, same number) and some stopped being set (1: ERROR
 * since 6.12, 39: UNCACHED removed in 6.12, 34: MAPPEDTODISK renamed OWNER_2 in 6.12). What moved
 * between 4.x, 5.x and 6.x is which bits exist and what sets them; `decodeKpageflags(release)`
 * gives the bits a given release can report, so an importer never reads a bit the kernel did not
 * have (a 4.14 snapshot has no PGTABLE bit: its page-table pages look like plain unflagged pages).
 *
 * Sources: the v6.18 headers and fs/proc/page.c; the commit history of both headers (commit date
 * → first release): KPF_THP 2012-03 (3.4), KPF_BALLOON 2014-10 (3.18), KPF_ZERO_PAGE 2015-02
 * (4.0), KPF_IDLE 2015-09 (4.3), KPF_PGTABLE 2018-06 (4.18), KPF_BALLOON → KPF_OFFLINE 2019-03-05
 * (after v5.0 of 2019-03-03, so 5.1), KPF_SOFTDIRTY 2013-11 (3.13), KPF_ARCH_2 2020-09 (5.10, arm64
 * MTE), KPF_ARCH_3 2022-11 (6.2), PG_error removed / PG_mappedtodisk → PG_owner_2 / PG_uncached
 * removed 2024-09 (6.12).
 *
 * What 6.18's flags do not say (measured here; /work/shared/real-kernel-notes.md §2–4):
 *  - free block orders: KPF_BUDDY marks every page of a free block, so orders are rebuilt by
 *    splitting each maximal free run into naturally aligned power-of-two blocks;
 *  - free pages parked on per-cpu lists carry no flags at all and are not in buddyinfo;
 *  - KPF_THP marks large page-cache folios too (ext4/btrfs): only KPF_ANON says anonymous;
 *  - kpageflags and kpagecount are read at different instants (a few hundred of 4 M pages
 *    disagree), and uninitialised struct pages (deferred_init=lazy) must not be read at all.
 */

/** A kernel release as [major, minor, patch]. */
export type KernelVersion = readonly [number, number, number];

/** Names of the flags as the kernel spells them. */
export type KpfName =
  | 'KPF_LOCKED'
  | 'KPF_ERROR'
  | 'KPF_REFERENCED'
  | 'KPF_UPTODATE'
  | 'KPF_DIRTY'
  | 'KPF_LRU'
  | 'KPF_ACTIVE'
  | 'KPF_SLAB'
  | 'KPF_WRITEBACK'
  | 'KPF_RECLAIM'
  | 'KPF_BUDDY'
  | 'KPF_MMAP'
  | 'KPF_ANON'
  | 'KPF_SWAPCACHE'
  | 'KPF_SWAPBACKED'
  | 'KPF_COMPOUND_HEAD'
  | 'KPF_COMPOUND_TAIL'
  | 'KPF_HUGE'
  | 'KPF_UNEVICTABLE'
  | 'KPF_HWPOISON'
  | 'KPF_NOPAGE'
  | 'KPF_KSM'
  | 'KPF_THP'
  | 'KPF_BALLOON'
  | 'KPF_OFFLINE'
  | 'KPF_ZERO_PAGE'
  | 'KPF_IDLE'
  | 'KPF_PGTABLE'
  | 'KPF_RESERVED'
  | 'KPF_MLOCKED'
  | 'KPF_MAPPEDTODISK'
  | 'KPF_OWNER_2'
  | 'KPF_PRIVATE'
  | 'KPF_PRIVATE_2'
  | 'KPF_OWNER_PRIVATE'
  | 'KPF_ARCH'
  | 'KPF_UNCACHED'
  | 'KPF_SOFTDIRTY'
  | 'KPF_ARCH_2'
  | 'KPF_ARCH_3';

/** One flag: its bit, the first release that reported it and, if it is gone, the first without it. */
export interface KpfDef {
  name: KpfName;
  bit: number;
  since: KernelVersion;
  until?: KernelVersion;
  /** false for bits ≥ 32, which the kernel says are "subject to change, never rely on them". */
  stable: boolean;
  note?: string;
}

/** Every KPF_* flag the kernel ever exported, in bit order. */
export const KPF_DEFS: readonly KpfDef[] = [
  { name: 'KPF_LOCKED', bit: 0, since: [2, 6, 25], stable: true },
  {
    name: 'KPF_ERROR',
    bit: 1,
    since: [2, 6, 25],
    until: [6, 12, 0],
    stable: true,
    note: 'PG_error removed in 6.12; the bit stays defined ("Now unused") and is never set',
  },
  { name: 'KPF_REFERENCED', bit: 2, since: [2, 6, 25], stable: true },
  { name: 'KPF_UPTODATE', bit: 3, since: [2, 6, 25], stable: true },
  { name: 'KPF_DIRTY', bit: 4, since: [2, 6, 25], stable: true },
  { name: 'KPF_LRU', bit: 5, since: [2, 6, 25], stable: true },
  { name: 'KPF_ACTIVE', bit: 6, since: [2, 6, 25], stable: true },
  {
    name: 'KPF_SLAB',
    bit: 7,
    since: [2, 6, 25],
    stable: true,
    note: 'on every page of a slab since 4.6; on the head only before',
  },
  { name: 'KPF_WRITEBACK', bit: 8, since: [2, 6, 25], stable: true },
  { name: 'KPF_RECLAIM', bit: 9, since: [2, 6, 25], stable: true },
  {
    name: 'KPF_BUDDY',
    bit: 10,
    since: [2, 6, 25],
    stable: true,
    note: 'on every page of a free buddy block since 4.6 (is_free_buddy_page); the head only before; never on pcp pages',
  },
  { name: 'KPF_MMAP', bit: 11, since: [2, 6, 31], stable: true },
  { name: 'KPF_ANON', bit: 12, since: [2, 6, 31], stable: true },
  { name: 'KPF_SWAPCACHE', bit: 13, since: [2, 6, 31], stable: true },
  { name: 'KPF_SWAPBACKED', bit: 14, since: [2, 6, 31], stable: true },
  { name: 'KPF_COMPOUND_HEAD', bit: 15, since: [2, 6, 31], stable: true },
  { name: 'KPF_COMPOUND_TAIL', bit: 16, since: [2, 6, 31], stable: true },
  { name: 'KPF_HUGE', bit: 17, since: [2, 6, 31], stable: true, note: 'hugetlb pages (every page of one)' },
  { name: 'KPF_UNEVICTABLE', bit: 18, since: [2, 6, 31], stable: true },
  { name: 'KPF_HWPOISON', bit: 19, since: [2, 6, 31], stable: true },
  {
    name: 'KPF_NOPAGE',
    bit: 20,
    since: [2, 6, 31],
    stable: true,
    note: 'no struct page (not online); such PFNs read as exactly this bit',
  },
  { name: 'KPF_KSM', bit: 21, since: [2, 6, 32], stable: true },
  {
    name: 'KPF_THP',
    bit: 22,
    since: [3, 4, 0],
    stable: true,
    note: 'any large rmappable folio since multi-size THP (6.8, release unverified); PMD-sized THPs before; also on the huge zero page',
  },
  {
    name: 'KPF_BALLOON',
    bit: 23,
    since: [3, 18, 0],
    until: [5, 1, 0],
    stable: true,
    note: 'renamed KPF_OFFLINE in 5.1, same bit',
  },
  {
    name: 'KPF_OFFLINE',
    bit: 23,
    since: [5, 1, 0],
    stable: true,
    note: 'logically offline (balloon-inflated, hot-unplugged parts)',
  },
  { name: 'KPF_ZERO_PAGE', bit: 24, since: [4, 0, 0], stable: true },
  { name: 'KPF_IDLE', bit: 25, since: [4, 3, 0], stable: true, note: 'only with CONFIG_IDLE_PAGE_TRACKING' },
  { name: 'KPF_PGTABLE', bit: 26, since: [4, 18, 0], stable: true },
  { name: 'KPF_RESERVED', bit: 32, since: [2, 6, 31], stable: false },
  { name: 'KPF_MLOCKED', bit: 33, since: [2, 6, 31], stable: false },
  { name: 'KPF_MAPPEDTODISK', bit: 34, since: [2, 6, 31], until: [6, 12, 0], stable: false },
  {
    name: 'KPF_OWNER_2',
    bit: 34,
    since: [6, 12, 0],
    stable: false,
    note: 'PG_mappedtodisk renamed PG_owner_2 in 6.12',
  },
  { name: 'KPF_PRIVATE', bit: 35, since: [2, 6, 31], stable: false },
  { name: 'KPF_PRIVATE_2', bit: 36, since: [2, 6, 31], stable: false },
  { name: 'KPF_OWNER_PRIVATE', bit: 37, since: [2, 6, 31], stable: false },
  { name: 'KPF_ARCH', bit: 38, since: [2, 6, 31], stable: false },
  {
    name: 'KPF_UNCACHED',
    bit: 39,
    since: [2, 6, 31],
    until: [6, 12, 0],
    stable: false,
    note: 'PG_uncached (ia64, x86 PAT) removed in 6.12',
  },
  { name: 'KPF_SOFTDIRTY', bit: 40, since: [3, 13, 0], stable: false },
  { name: 'KPF_ARCH_2', bit: 41, since: [5, 10, 0], stable: false, note: 'arm64 MTE' },
  { name: 'KPF_ARCH_3', bit: 42, since: [6, 2, 0], stable: false, note: 'arm64 MTE tag storage' },
];

/** The bit numbers a release reports, by name; flags the release does not have are absent. */
export type KpfBits = Readonly<Partial<Record<KpfName, number>>>;

/** What a release's kpageflags can say, and how its meaning differs from 6.18's. */
export interface KpageflagsLayout {
  release: string;
  version: KernelVersion;
  bits: KpfBits;
  /** KPF_BUDDY on every page of a free block (≥ 4.6), or on the head page only. */
  buddy_on_every_page: boolean;
  /** KPF_SLAB on every page of a slab (≥ 4.6), or on the head page only. */
  slab_on_every_page: boolean;
  /** Bits below 32 set by this release's stable_page_flags(), as a mask of the low word. */
  stable_mask: number;
  /** Bits 32..63 this release can set, as a mask of the high word. */
  unstable_mask: number;
}

/**
 * Parse a kernel release string (`uname -r`, /proc/sys/kernel/osrelease): "6.18.44-fc-v669",
 * "4.14.0-1.el7", "2.6.32-754.el6.x86_64".
 */
export function parseKernelVersion(release: string): KernelVersion {
  const m = /^\s*(\d+)\.(\d+)(?:\.(\d+))?/.exec(release);
  if (!m) throw new RangeError(`not a kernel release: ${JSON.stringify(release.slice(0, 64))}`);
  return [Number(m[1]), Number(m[2]), m[3] === undefined ? 0 : Number(m[3])];
}

/** -1, 0 or 1 as a is older than, the same as, or newer than b. */
export function compareKernelVersion(a: KernelVersion, b: KernelVersion): number {
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i] < b[i] ? -1 : 1;
  return 0;
}

/**
 * The kpageflags layout of a release: the bits it can set, by name.
 * Throws RangeError for a string that is not a release, or one older than 2.6.25 (no kpageflags).
 */
export function decodeKpageflags(release: string): KpageflagsLayout {
  const version = parseKernelVersion(release);
  if (compareKernelVersion(version, [2, 6, 25]) < 0)
    throw new RangeError(`kernel ${release} predates /proc/kpageflags (2.6.25)`);
  const bits: Partial<Record<KpfName, number>> = {};
  let stable_mask = 0;
  let unstable_mask = 0;
  for (const d of KPF_DEFS) {
    if (compareKernelVersion(version, d.since) < 0) continue;
    if (d.until && compareKernelVersion(version, d.until) >= 0) continue;
    bits[d.name] = d.bit;
    if (d.bit < 32) stable_mask |= 1 << d.bit;
    else unstable_mask |= 1 << (d.bit - 32);
  }
  const since46 = compareKernelVersion(version, [4, 6, 0]) >= 0;
  return {
    release,
    version,
    bits,
    buddy_on_every_page: since46,
    slab_on_every_page: since46,
    stable_mask: stable_mask >>> 0,
    unstable_mask: unstable_mask >>> 0,
  };
}

/** The 6.18 bit numbers, for code that only reads 6.18 snapshots. */
export const KPF = decodeKpageflags('6.18.0').bits as Readonly<Record<KpfName, number>>;

/**
 * Test a bit of one PFN's flags stored as two little-endian 32-bit words (lo at 2·i, hi at 2·i+1),
 * the layout `readSnapshot` gives, which keeps the hot loops on SMIs rather than BigInts.
 */
export function kpfTest(words: Uint32Array, i: number, bit: number): boolean {
  return bit < 32 ? ((words[2 * i] >>> bit) & 1) === 1 : ((words[2 * i + 1] >>> (bit - 32)) & 1) === 1;
}

/** Names of the flags set in a 64-bit value under a layout, lowest bit first (for messages and tools). */
export function kpfNames(layout: KpageflagsLayout, lo: number, hi: number): KpfName[] {
  const out: KpfName[] = [];
  for (const [name, bit] of Object.entries(layout.bits) as [KpfName, number][]) {
    const set = bit < 32 ? (lo >>> bit) & 1 : (hi >>> (bit - 32)) & 1;
    if (set) out.push(name);
  }
  return out.sort((a, b) => (layout.bits[a] as number) - (layout.bits[b] as number));
}
