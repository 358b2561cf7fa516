/**
 * hugetlb pools and contiguous allocations (issue 5's speed targets): how long the model takes to
 * fill a pool of 2 MiB huge pages by writing nr_hugepages, and to find and allocate 1 GiB with
 * alloc_contig_pages(), on fresh and fragmented machines.
 *
 * Fragmentation is bench/lib/memory.ts's, as in compaction.bench.ts: ~85% of RAM faulted in as
 * anonymous memory, half of it freed at random in 4 KiB holes over every pageblock, built
 * instantly (no background work runs meanwhile and it costs no simulated time). The machines boot with the upstream default (deferred_init 'off': every zone initialised).
 *
 * - hugetlb pool: one write of N to /proc/sys/vm/nr_hugepages, N = 50% of RAM in 2 MiB pages
 *   (set_max_huge_pages() allocating page by page with __GFP_RETRY_MAYFAIL: free blocks first,
 *   then direct reclaim and compaction for each page the free lists cannot serve, until one fails
 *   after a try-hard attempt and the rest go __GFP_NORETRY). Wall time of the write, pages
 *   delivered of asked (HugePages_Total), and the simulated time the write took (machine.kernel_ns,
 *   the cost model).
 * - alloc_contig_pages(): 262144 pages (1 GiB, aligned to 1 GiB) with GFP_KERNEL on the
 *   fragmented machine: the kernel scans for a 1 GiB aligned range whose pages are all free or
 *   movable and migrates what is in it (alloc_contig_range()). Wall time, success (the pfn) or
 *   NULL, simulated latency, pages migrated (pgmigrate_success).
 *
 * Each row is one timed run on a state built once; nothing is repeated, because the operations
 * consume their input. --quick uses 16 GiB machines instead of 64 GiB.
 */
import { GFP_KERNEL } from '../src/mm/gfp.ts';
import { Machine } from '../src/sim/machine.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';
import {
  checkInvariants,
  describeFragmentation,
  eventCounters,
  fragment,
  freeHuge,
  label,
} from './lib/memory.ts';

/** 1 GiB in 4 KiB pages. */
const CONTIG_PAGES = 262144;
const NRHP = '/proc/sys/vm/nr_hugepages';

const EV = eventCounters({
  migrated: 'pgmigrate_success',
  migrate_fail: 'pgmigrate_fail',
  stall: 'compact_stall',
  success: 'compact_success',
  fail: 'compact_fail',
  htlb_ok: 'htlb_buddy_alloc_success',
  htlb_fail: 'htlb_buddy_alloc_fail',
  pgscan_direct: 'pgscan_direct',
});
const counters = EV.read;
const delta = EV.delta;

/** Boot `memory` (upstream boot) and, if asked, fragment it instantly. */
function machine(memory: string, fragmented: boolean): { m: Machine; state: string } {
  const t0 = performance.now();
  const m = Machine.boot({ memory, cpus: 2 });
  const state = fragmented ? describeFragmentation(fragment(m)) : 'fresh';
  note(`${memory}: ${state} in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  return { m, state };
}

function hugepagesTotal(m: Machine): number {
  const hit = m.readFile('/proc/meminfo').match(/^HugePages_Total:\s+(\d+)/m);
  return hit ? Number(hit[1]) : 0;
}

function poolRows(memory: string, fragmented: boolean): Row[] {
  const { m, state } = machine(memory, fragmented);
  const asked = Math.floor(m.mm.totalram_pages / 2 / 512);
  const huge0 = freeHuge(m);
  const c0 = counters(m);
  const k0 = m.kernel_ns;
  note(`${memory}: nr_hugepages = ${asked}`);
  const t0 = performance.now();
  m.writeFile(NRHP, String(asked));
  const seconds = (performance.now() - t0) / 1e3;
  const simulated = (m.kernel_ns - k0) / 1e9;
  const d = delta(c0, counters(m));
  const got = hugepagesTotal(m);
  checkInvariants(m, `${memory} pool`);
  const name = `nr_hugepages = 50% of RAM (${asked} × 2 MiB), ${fragmented ? 'fragmented' : 'fresh'} ${label(memory)}`;
  const detail =
    `${state}; ${huge0} free 2 MiB blocks before; htlb_buddy_alloc_success ${d.htlb_ok}, htlb_buddy_alloc_fail ${d.htlb_fail}; ` +
    `compact_stall ${d.stall}, compact_success ${d.success}, compact_fail ${d.fail}, pgmigrate_success ${d.migrated}, pgscan_direct ${d.pgscan_direct}`;
  return [
    { case: name, metric: 'wall time', value: seconds * 1e3, unit: 'ms', detail },
    {
      case: name,
      metric: 'pages delivered',
      value: (100 * got) / asked,
      unit: '% of asked',
      detail: `${got} of ${asked} (HugePages_Total)`,
    },
    {
      case: name,
      metric: 'simulated time',
      value: simulated * 1e3,
      unit: 'ms',
      detail: `the write's latency under the cost model: ${((simulated / Math.max(got, 1)) * 1e6).toFixed(2)} µs per huge page delivered`,
    },
  ];
}

function contigRows(memory: string): Row[] {
  const { m, state } = machine(memory, true);
  const c0 = counters(m);
  const k0 = m.kernel_ns;
  note(`${memory}: alloc_contig_pages(${CONTIG_PAGES})`);
  const t0 = performance.now();
  const pfn = m.kernel.alloc_contig_pages(CONTIG_PAGES, GFP_KERNEL);
  const seconds = (performance.now() - t0) / 1e3;
  const simulated = (m.kernel_ns - k0) / 1e9;
  const d = delta(c0, counters(m));
  if (pfn >= 0) m.kernel.free_contig_range(pfn, CONTIG_PAGES);
  checkInvariants(m, `${memory} alloc_contig_pages`);
  const name = `alloc_contig_pages(262144 pages = 1 GiB, GFP_KERNEL), fragmented ${label(memory)}`;
  const outcome = pfn >= 0 ? `success at pfn 0x${pfn.toString(16)}` : 'failed (NULL)';
  return [
    {
      case: name,
      metric: 'wall time',
      value: seconds * 1e3,
      unit: 'ms',
      detail: `${outcome}; ${state}`,
    },
    {
      case: name,
      metric: 'simulated latency',
      value: simulated * 1e3,
      unit: 'ms',
      detail: `${outcome} under the cost model`,
    },
    {
      case: name,
      metric: 'pages migrated',
      value: d.migrated / 1e3,
      unit: 'k pages',
      detail: `pgmigrate_success ${d.migrated}, pgmigrate_fail ${d.migrate_fail}; ${outcome}`,
    },
  ];
}

export default defineBenchmark({
  title:
    'hugetlb pool fill and alloc_contig_pages (upstream boot; fragmented: 85% of RAM anonymous, half freed)',
  async run(ctx: BenchContext) {
    const memory = ctx.quick ? '16G' : '64G';
    return [...poolRows(memory, false), ...poolRows(memory, true), ...contigRows(memory)];
  },
});
