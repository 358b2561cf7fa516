/**
 * Collateral damage: what a contiguous-memory request does to everyone else (Hocko's objection:
 * "a single user could simply deplete large blocks"; kernel users still need high-order pages).
 *
 * A probe is a fixed workload that runs for a window of simulated time after the request, while
 * the requester still holds its buffer. It stands for the machine's other users of contiguity:
 * - a tenant faulting in MADV_HUGEPAGE anonymous memory, 2 MiB at a time (a JVM heap growing):
 *   how many of its THP faults fall back to 4 KiB pages, and what they cost it;
 * - NIC receive refills: order-3 GFP_ATOMIC | __GFP_NOWARN blocks (page_pool), which cannot
 *   reclaim or compact and may take the MIGRATE_HIGHATOMIC reserve, held a few steps (socket
 *   queues) then freed;
 * - skb_page_frag_refill()-style order-3 GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN tries, which
 *   compact once and fail rather than retry;
 * - a reader streaming a file through the page cache (readahead), which wants memory as it goes.
 * Measured over the window: the THP fallback rate, kernel high-order failures, reclaim
 * (pgscan/pgsteal), compaction stalls and scanning, and the HIGHATOMIC pageblocks in use.
 *
 * The damage is the difference from the same probe on a baseline copy where no request was made
 * (collateral_of()). Everything is deterministic: the probe's only randomness is the machine's
 * PRNG (how long each kernel block is held).
 */
import { parseDuration } from '../lib/duration.ts';
import { ErrnoError } from '../lib/errno.ts';
import { __GFP_NORETRY, __GFP_NOWARN, GFP_ATOMIC, GFP_KERNEL } from '../mm/gfp.ts';
import { pageblock_nr_pages } from '../mm/mmzone.ts';
import type { Machine } from '../sim/machine.ts';
import { FaultError, type Process } from '../vm/process.ts';
import {
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  O_CREAT,
  O_RDONLY,
  O_WRONLY,
  PROT_READ,
  PROT_WRITE,
} from '../vm/uapi.ts';

const PAGE = 4096;
const HPAGE = 2 * 2 ** 20;

export interface ProbeOptions {
  /** Simulated time the probe runs for (default '10s'). */
  window?: string | number;
  /** Steps the window is cut into; background work runs between them (default 20). */
  steps?: number;
  /** THP memory the tenant faults in over the window (default RAM / 16, in 2 MiB extents). */
  thp_bytes?: number;
  /** Order of the kernel allocations (default 3: 32 KiB, a NIC receive buffer). */
  order?: number;
  /** GFP_ATOMIC allocations per step (default 64). */
  atomic_per_step?: number;
  /** GFP_KERNEL | __GFP_NORETRY allocations per step (default 16). */
  noretry_per_step?: number;
  /** A kernel block is held 1 .. hold_steps steps, then freed (default 4). */
  hold_steps?: number;
  /** Bytes the reader streams through the page cache over the window (default RAM / 8). */
  read_bytes?: number;
}

/** ProbeOptions filled in for one machine; the window in ns. */
export type ResolvedProbeOptions = Required<Omit<ProbeOptions, 'window'>> & { window: number };

/** What the probe saw. Every leaf is a number, so results subtract (collateral_of()). */
export interface ProbeResult {
  thp: {
    /** 2 MiB extents the tenant touched. */
    extents: number;
    thp_fault_alloc: number;
    thp_fault_fallback: number;
    /** fallback / (alloc + fallback); 0 when no THP fault was tried. */
    fallback_rate: number;
    /** The tenant's time in the kernel (its faults), ns. */
    fault_ns: number;
  };
  kernel: {
    atomic_attempts: number;
    atomic_failures: number;
    noretry_attempts: number;
    noretry_failures: number;
    /** All failures over all attempts. */
    failure_rate: number;
  };
  reclaim: {
    pgscan_kswapd: number;
    pgscan_direct: number;
    pgsteal_kswapd: number;
    pgsteal_direct: number;
    allocstalls: number;
  };
  compaction: {
    stalls: number;
    fails: number;
    successes: number;
    migrate_scanned: number;
    free_scanned: number;
    pages_migrated: number;
  };
  highatomic: {
    /** MIGRATE_HIGHATOMIC pageblocks reserved, at most during the window and at its end. */
    pageblocks_max: number;
    pageblocks_end: number;
    /** The reserve's cap, about 1% of each zone (reserve_highatomic_pageblock()). */
    limit_pageblocks: number;
  };
  page_cache: { bytes_read: number; reader_ns: number };
  oom_kills: number;
}

/** The difference probe − baseline, leaf by leaf. */
export type Collateral = ProbeResult;

export interface CollateralProbe {
  readonly name: string;
  /** The options as given; sizes left out default to shares of the machine's RAM. */
  readonly options: Readonly<ProbeOptions>;
  run(m: Machine): ProbeResult;
}

/** The errno code or signal of a failed call, rethrowing anything else. */
export function failure(e: unknown): string {
  if (e instanceof ErrnoError) return e.code;
  if (e instanceof FaultError) return e.signal;
  throw e;
}

/** /proc/vmstat as name → value. */
export function readVmstat(m: Machine): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of m.readFile('/proc/vmstat').split('\n')) {
    const sp = line.indexOf(' ');
    if (sp > 0) out.set(line.slice(0, sp), Number(line.slice(sp + 1)));
  }
  return out;
}

/** Differences of `names` between two /proc/vmstat readings (a counter it lacks counts 0). */
export function vmstatDelta<K extends string>(
  before: Map<string, number>,
  after: Map<string, number>,
  names: readonly K[],
): Record<K, number> {
  const out = {} as Record<K, number>;
  for (const n of names) out[n] = (after.get(n) ?? 0) - (before.get(n) ?? 0);
  return out;
}

const PROBE_COUNTERS = [
  'thp_fault_alloc',
  'thp_fault_fallback',
  'pgscan_kswapd',
  'pgscan_direct',
  'pgsteal_kswapd',
  'pgsteal_direct',
  'allocstall_dma',
  'allocstall_dma32',
  'allocstall_normal',
  'allocstall_movable',
  'compact_stall',
  'compact_fail',
  'compact_success',
  'compact_migrate_scanned',
  'compact_free_scanned',
  'compact_daemon_migrate_scanned',
  'compact_daemon_free_scanned',
  'pgmigrate_success',
  'oom_kill',
] as const;

function whole(v: number, what: string, min = 0): number {
  if (!Number.isInteger(v) || v < min)
    throw new RangeError(`probe: ${what} ${v} is not a whole number >= ${min}`);
  return v;
}

/** The probe workload with its options filled in for machine `m` (sizes default to RAM shares). */
export function resolveProbeOptions(m: Machine, o: ProbeOptions): ResolvedProbeOptions {
  const ram = m.mm.totalram_pages * PAGE;
  const window = parseDuration(o.window ?? '10s');
  const r: ResolvedProbeOptions = {
    window,
    steps: whole(o.steps ?? 20, 'steps', 1),
    thp_bytes: whole(o.thp_bytes ?? Math.floor(ram / 16 / HPAGE) * HPAGE, 'thp_bytes'),
    order: whole(o.order ?? 3, 'order'),
    atomic_per_step: whole(o.atomic_per_step ?? 64, 'atomic_per_step'),
    noretry_per_step: whole(o.noretry_per_step ?? 16, 'noretry_per_step'),
    hold_steps: whole(o.hold_steps ?? 4, 'hold_steps', 1),
    read_bytes: whole(o.read_bytes ?? Math.floor(ram / 8 / PAGE) * PAGE, 'read_bytes'),
  };
  if (r.order > 10) throw new RangeError(`probe: order ${r.order} is above MAX_PAGE_ORDER (10)`);
  if (r.thp_bytes % HPAGE) throw new RangeError(`probe: thp_bytes ${r.thp_bytes} is not a multiple of 2 MiB`);
  return r;
}

/** MIGRATE_HIGHATOMIC pageblocks reserved over all zones, and the cap. */
function highatomic(m: Machine): { now: number; limit: number } {
  let now = 0;
  let limit = 0;
  for (const z of m.mm.zones) {
    now += z.nr_reserved_highatomic / pageblock_nr_pages;
    const hundredth = Math.floor(z.managed_pages / 100);
    if (hundredth >= pageblock_nr_pages) limit += Math.ceil(hundredth / pageblock_nr_pages);
  }
  return { now, limit };
}

/** An anonymous mapping of `len` bytes starting on a 2 MiB boundary, so every extent can be a THP. */
function alignedAnon(p: Process, len: number): number {
  const a = p.mmap(0, len + HPAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const start = Math.ceil(a / HPAGE) * HPAGE;
  if (start > a) p.munmap(a, start - a);
  const tail = a + len + HPAGE - (start + len);
  if (tail > 0) p.munmap(start + len, tail);
  return start;
}

/** The probe workload (see the file comment); `options` override the defaults. */
export function collateralProbe(options: ProbeOptions = {}): CollateralProbe {
  return {
    name: 'thp+order3+pagecache',
    options: { ...options },
    run: (m) => runProbe(m, resolveProbeOptions(m, options)),
  };
}

function runProbe(m: Machine, o: ResolvedProbeOptions): ProbeResult {
  const cpus = m.mm.nr_cpus;
  const v0 = readVmstat(m);
  const tenant = m.spawn({ name: 'probe-thp', uid: 2001, gid: 2001, cpu: 1 % cpus });
  const reader = m.spawn({ name: 'probe-reader', uid: 2002, gid: 2002, cpu: 0 });
  const extents = o.thp_bytes / HPAGE;
  const heap = extents ? alignedAnon(tenant, o.thp_bytes) : 0;
  if (extents) tenant.madvise(heap, o.thp_bytes, MADV_HUGEPAGE);
  const path = '/var/tmp/probe-data';
  if (o.read_bytes) {
    const fd = reader.open(path, O_CREAT | O_WRONLY, 0o644);
    reader.ftruncate(fd, o.read_bytes);
    reader.close(fd);
  }
  const fd = o.read_bytes ? reader.open(path, O_RDONLY) : -1;
  const step_ns = Math.floor(o.window / o.steps);
  const held: Array<{ pfn: number; until: number }> = [];
  const k = { atomic_attempts: 0, atomic_failures: 0, noretry_attempts: 0, noretry_failures: 0 };
  let touched = 0;
  let bytes_read = 0;
  let ha_max = highatomic(m).now;
  let tenantAlive = true;
  let readerAlive = true;
  const t0 = m.now;
  for (let s = 0; s < o.steps; s++) {
    // The tenant's heap grows by its share of extents this step.
    const upto = Math.floor((extents * (s + 1)) / o.steps);
    for (; touched < upto && tenantAlive; touched++) {
      try {
        tenant.touch(heap + touched * HPAGE, HPAGE, { write: true });
      } catch (e) {
        failure(e);
        tenantAlive = false;
      }
    }
    // The NIC refills its rings; some blocks wait on sockets for a few steps.
    const cpu = s % cpus;
    for (let i = 0; i < o.atomic_per_step; i++) {
      k.atomic_attempts++;
      const pfn = m.kernel.alloc_pages(GFP_ATOMIC | __GFP_NOWARN, o.order, { cpu });
      if (pfn < 0) k.atomic_failures++;
      else held.push({ pfn, until: s + 1 + m.rand.below(o.hold_steps) });
    }
    for (let i = 0; i < o.noretry_per_step; i++) {
      k.noretry_attempts++;
      const pfn = m.kernel.alloc_pages(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, o.order, { cpu });
      if (pfn < 0) k.noretry_failures++;
      else held.push({ pfn, until: s + 1 + m.rand.below(o.hold_steps) });
    }
    ha_max = Math.max(ha_max, highatomic(m).now);
    // The reader streams its share of the file.
    if (fd >= 0 && readerAlive) {
      const want = Math.floor((o.read_bytes * (s + 1)) / o.steps) - bytes_read;
      try {
        while (bytes_read < Math.floor((o.read_bytes * (s + 1)) / o.steps)) {
          const n = reader.read(fd, Math.min(want, 1 << 20));
          if (!n) break;
          bytes_read += n;
        }
      } catch (e) {
        failure(e);
        readerAlive = false;
      }
    }
    m.advance(Math.max(0, t0 + (s + 1) * step_ns - m.now));
    // Blocks whose time is up go back (in the order they were taken, for determinism).
    let kept = 0;
    for (const h of held) {
      if (h.until <= s) m.kernel.free_pages(h.pfn, o.order, { cpu });
      else held[kept++] = h;
    }
    held.length = kept;
  }
  const v = vmstatDelta(v0, readVmstat(m), PROBE_COUNTERS);
  const ha = highatomic(m);
  const thp_tries = v.thp_fault_alloc + v.thp_fault_fallback;
  const attempts = k.atomic_attempts + k.noretry_attempts;
  return {
    thp: {
      extents: touched,
      thp_fault_alloc: v.thp_fault_alloc,
      thp_fault_fallback: v.thp_fault_fallback,
      fallback_rate: thp_tries ? v.thp_fault_fallback / thp_tries : 0,
      fault_ns: tenant.kernel_ns,
    },
    kernel: {
      ...k,
      failure_rate: attempts ? (k.atomic_failures + k.noretry_failures) / attempts : 0,
    },
    reclaim: {
      pgscan_kswapd: v.pgscan_kswapd,
      pgscan_direct: v.pgscan_direct,
      pgsteal_kswapd: v.pgsteal_kswapd,
      pgsteal_direct: v.pgsteal_direct,
      allocstalls: v.allocstall_dma + v.allocstall_dma32 + v.allocstall_normal + v.allocstall_movable,
    },
    compaction: {
      stalls: v.compact_stall,
      fails: v.compact_fail,
      successes: v.compact_success,
      migrate_scanned: v.compact_migrate_scanned + v.compact_daemon_migrate_scanned,
      free_scanned: v.compact_free_scanned + v.compact_daemon_free_scanned,
      pages_migrated: v.pgmigrate_success,
    },
    highatomic: { pageblocks_max: ha_max, pageblocks_end: ha.now, limit_pageblocks: ha.limit },
    page_cache: { bytes_read, reader_ns: reader.kernel_ns },
    oom_kills: v.oom_kill,
  };
}

/** probe − baseline for every number of the result: the request's collateral damage. */
export function collateral_of(probe: ProbeResult, baseline: ProbeResult): Collateral {
  return diff(probe, baseline) as Collateral;
}

function diff(a: unknown, b: unknown): unknown {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(a))
      out[key] = diff((a as Record<string, unknown>)[key], (b as Record<string, unknown>)[key]);
    return out;
  }
  throw new TypeError('collateral_of: probe results of different shapes');
}

/** True when a collateral difference is zero everywhere. */
export function no_collateral(c: Collateral): boolean {
  const zero = (x: unknown): boolean =>
    typeof x === 'number' ? x === 0 : Object.values(x as Record<string, unknown>).every(zero);
  return zero(c);
}
