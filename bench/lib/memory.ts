/**
 * What the compaction and hugetlb benchmarks share: their fragmented machines, vm event
 * counters by name, free 2 MiB blocks and the invariant check after a run.
 *
 * The fragmented machines: 8 processes fault in 85% of
 * RAM as anonymous memory in 64 MiB chunks, then free about half of it page by page at random
 * (the machine's seeded PRNG), leaving the freed pages in the buddy allocator. Built instantly:
 * no background work (kswapd, kcompactd) runs meanwhile.
 */

import { vm_event_index } from '../../src/mm/vmstat_items.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';

const PAGE = 4096;
const CHUNK = 64 * 2 ** 20;
const PROCS = 8;

export interface Fragmentation {
  /** Pages faulted in, pages freed again. */
  faulted: number;
  freed: number;
}

export function fragment(m: Machine): Fragmentation {
  return m.instantly(() => {
    const target = Math.floor((m.mm.totalram_pages * 0.85) / (CHUNK / PAGE));
    const procs = Array.from({ length: PROCS }, () => m.spawn());
    const maps: Array<{ p: (typeof procs)[number]; a: number }> = [];
    for (let i = 0; i < target; i++) {
      const p = procs[i % PROCS];
      const a = p.mmap(0, CHUNK, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      p.touch(a, CHUNK, { write: true });
      maps.push({ p, a });
    }
    const r = m.rand;
    let freed = 0;
    for (const { p, a } of maps) {
      let run = 0;
      for (let off = 0; off <= CHUNK; off += PAGE) {
        if (off < CHUNK && r.below(2)) {
          run++;
          continue;
        }
        if (run) p.madvise(a + off - run * PAGE, run * PAGE, MADV_DONTNEED);
        freed += run;
        run = 0;
      }
    }
    m.kernel.drain_all_pages();
    return { faulted: (target * CHUNK) / PAGE, freed };
  });
}

/** "3.49 M pages faulted in, 1.75 M freed at random" */
export function describeFragmentation(f: Fragmentation): string {
  return `${(f.faulted / 1e6).toFixed(2)} M pages faulted in, ${(f.freed / 1e6).toFixed(2)} M freed at random`;
}

/** Named /proc/vmstat events: read them all, and the difference of two readings. */
type EventName = Parameters<typeof vm_event_index>[0];

export function eventCounters<K extends string>(names: Record<K, EventName>) {
  const index = (Object.entries(names) as Array<[K, EventName]>).map(
    ([k, n]) => [k, vm_event_index(n)] as const,
  );
  type Counters = Record<K, number>;
  return {
    read(m: Machine): Counters {
      const out = {} as Counters;
      for (const [k, i] of index) out[k] = m.mm.vm_events[i];
      return out;
    },
    delta(a: Counters, b: Counters): Counters {
      const out = {} as Counters;
      for (const [k] of index) out[k] = b[k] - a[k];
      return out;
    },
  };
}

/** Free 2 MiB blocks (order ≥ 9 free blocks, in pageblocks) over all zones. */
export function freeHuge(m: Machine): number {
  let n = 0;
  for (const zone of m.mm.zones)
    for (let o = 9; o < zone.nr_free.length; o++) n += zone.nr_free[o] << (o - 9);
  return n;
}

/** '16G' → '16 GiB' */
export function label(memory: string): string {
  return memory.replace('G', ' GiB');
}

export function checkInvariants(m: Machine, what: string): void {
  const v = m.invariantViolations();
  if (v.length) throw new Error(`${what}: invariants broken after the run:\n  ${v.join('\n  ')}`);
}
