/**
 * mmap(MAP_CONTIG) under the `rfc` policy on a fragmented machine (bench/lib/memory.ts: 85% of
 * RAM faulted in as anonymous memory, half freed at random in 4 KiB holes): how long the model
 * takes, and what the request costs in simulated time, for the thread's 700 MiB strictly
 * (alloc_contig_pages() of 179,200 pages: isolation and migration) and best effort (buddy blocks,
 * compaction within its 100 ms budget). Each row is one timed run on a state built once.
 * --quick uses 16 GiB instead of 64 GiB.
 */
import { count_segments } from '../src/contig/segments.ts';
import { Machine } from '../src/sim/machine.ts';
import { walk_pte_table } from '../src/vm/memory.ts';
import {
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_CONTIG_BEST_EFFORT,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../src/vm/uapi.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';
import { checkInvariants, describeFragmentation, eventCounters, fragment, label } from './lib/memory.ts';

const LEN = 700 * 2 ** 20;
const EV = eventCounters({ migrated: 'pgmigrate_success', stall: 'compact_stall', pgscan: 'pgscan_direct' });

/** The pfns mapped at [addr, addr + LEN). */
function pfnsOf(m: Machine, p: ReturnType<Machine['spawn']>, addr: number): Int32Array {
  const out = new Int32Array(LEN / 4096);
  for (let i = 0; i < out.length; i++) {
    const vpn = addr / 4096 + i;
    const t = walk_pte_table(m.vm, p.mm, vpn);
    out[i] = t < 0 ? -1 : m.vm.pt.pfn[t * 512 + (vpn % 512)];
  }
  return out;
}

function rows(memory: string, best: boolean): Row[] {
  const t0 = performance.now();
  const m = Machine.boot({ memory, cpus: 2, map_contig: 'rfc' });
  const state = describeFragmentation(fragment(m));
  note(`${memory}: ${state} in ${((performance.now() - t0) / 1e3).toFixed(1)} s`);
  const p = m.spawn({ name: 'rdma-app', rlimits: { memlock: Number.POSITIVE_INFINITY } });
  const c0 = EV.read(m);
  const k0 = p.kernel_ns;
  const t1 = performance.now();
  const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG | (best ? MAP_CONTIG_BEST_EFFORT : 0);
  let outcome: string;
  let segments = 0;
  try {
    const addr = p.mmap(0, LEN, PROT_READ | PROT_WRITE, flags);
    segments = count_segments(pfnsOf(m, p, addr));
    outcome = `mapped, ${segments} physical segment(s)`;
  } catch (e) {
    outcome = (e as Error).message;
  }
  const wall = performance.now() - t1;
  const simulated = (p.kernel_ns - k0) / 1e6;
  const d = EV.delta(c0, EV.read(m));
  checkInvariants(m, `${memory} MAP_CONTIG`);
  const name = `mmap(MAP_CONTIG${best ? ' | MAP_CONTIG_BEST_EFFORT' : ''}, 700 MiB), rfc, fragmented ${label(memory)}`;
  const detail = `${outcome}; pgmigrate_success ${d.migrated}, compact_stall ${d.stall}, pgscan_direct ${d.pgscan}; ${state}`;
  return [
    { case: name, metric: 'wall time', value: wall, unit: 'ms', detail },
    { case: name, metric: 'simulated latency', value: simulated, unit: 'ms', detail },
    ...(best ? [{ case: name, metric: 'physical segments', value: segments, unit: 'segments', detail }] : []),
  ];
}

export default defineBenchmark({
  title: 'mmap(MAP_CONTIG) of 700 MiB under the rfc policy (fragmented: 85% of RAM anonymous, half freed)',
  async run(ctx: BenchContext) {
    const memory = ctx.quick ? '16G' : '64G';
    return [...rows(memory, false), ...rows(memory, true)];
  },
});
