/**
 * Property tests: long random sequences of allocations and frees across orders, GFP masks, CPUs,
 * zones and nodes keep every invariant, and freeing everything returns the machine to its
 * boot-time free state.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import {
  __GFP_COMP,
  __GFP_NORETRY,
  __GFP_RECLAIMABLE,
  __GFP_THISNODE,
  GFP_ATOMIC,
  GFP_DMA,
  GFP_DMA32,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_NOWAIT,
  GFP_TRANSHUGE_LIGHT,
} from '../../src/mm/gfp.ts';
import { NR_FREE_PAGES } from '../../src/mm/vmstat_items.ts';
import type { MachineConfigInput } from '../../src/sim/config.ts';
import { Machine } from '../../src/sim/machine.ts';

const GFPS = [
  GFP_KERNEL,
  GFP_KERNEL | __GFP_RECLAIMABLE,
  GFP_HIGHUSER_MOVABLE,
  GFP_HIGHUSER_MOVABLE | __GFP_COMP,
  GFP_ATOMIC,
  GFP_NOWAIT,
  GFP_KERNEL | GFP_DMA32,
  GFP_KERNEL | GFP_DMA,
  GFP_KERNEL | __GFP_THISNODE,
  GFP_TRANSHUGE_LIGHT,
  GFP_KERNEL | __GFP_NORETRY | __GFP_COMP,
];

type Op =
  | { kind: 'alloc'; gfp: number; order: number; cpu: number; count: number }
  | { kind: 'free'; pick: number; cpu: number }
  | { kind: 'drain' };

const order = fc.oneof(
  { weight: 6, arbitrary: fc.integer({ min: 0, max: 3 }) },
  { weight: 2, arbitrary: fc.constant(9) },
  { weight: 1, arbitrary: fc.integer({ min: 4, max: 10 }) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      gfp: fc.integer({ min: 0, max: GFPS.length - 1 }),
      order,
      cpu: fc.nat(7),
      count: fc.integer({ min: 1, max: 64 }),
    }),
  },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('free' as const), pick: fc.nat(), cpu: fc.nat(7) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drain' as const }) },
);

/** Replay `ops`, checking invariants every `every` operations; returns the live blocks. */
function run(m: Machine, ops: Op[], every: number): Array<[number, number]> {
  const live: Array<[number, number]> = [];
  const cpus = m.mm.nr_cpus;
  ops.forEach((o, i) => {
    if (o.kind === 'alloc') {
      for (let k = 0; k < o.count; k++) {
        const pfn = m.kernel.alloc_pages(GFPS[o.gfp], o.order, { cpu: o.cpu % cpus });
        if (pfn < 0) break;
        live.push([pfn, o.order]);
      }
    } else if (o.kind === 'free') {
      if (live.length) {
        const j = o.pick % live.length;
        const [pfn, ord] = live[j];
        live[j] = live[live.length - 1];
        live.pop();
        m.kernel.free_pages(pfn, ord, { cpu: o.cpu % cpus });
      }
    } else m.kernel.drain_all_pages();
    if ((i + 1) % every === 0) expect(m.invariantViolations()).toEqual([]);
  });
  return live;
}

function freeState(m: Machine): { buddyinfo: string; free: number; highatomic: number; reclaimed: number } {
  return {
    buddyinfo: m.readFile('/proc/buddyinfo'),
    free: m.mm.zones.reduce((s, z) => s + z.vm_stat[NR_FREE_PAGES], 0),
    highatomic: m.mm.zones.reduce((s, z) => s + z.nr_reserved_highatomic, 0),
    reclaimed: m.mm.slab.reclaimed_pages,
  };
}

function roundTrip(config: MachineConfigInput, ops: Op[], every: number): void {
  const m = Machine.boot(config);
  m.kernel.drain_all_pages();
  const boot = freeState(m);
  const live = run(m, ops, every);
  for (const [pfn, ord] of live) m.kernel.free_pages(pfn, ord);
  m.kernel.drain_all_pages();
  expect(m.invariantViolations()).toEqual([]);
  const end = freeState(m);
  // Everything comes back, plus the slab pages reclaim freed when memory ran short.
  const reclaimed = end.reclaimed - boot.reclaimed;
  expect(end.free).toBe(boot.free + reclaimed);
  // Free memory merges back into the same blocks, unless reclaim freed more or a highatomic
  // reserve now keeps a pageblock from merging with its neighbour.
  if (end.highatomic === 0 && reclaimed === 0) expect(end.buddyinfo).toBe(boot.buddyinfo);
}

describe('random allocation sequences', () => {
  test.prop([fc.array(op, { minLength: 50, maxLength: 300 })], { numRuns: 12 })(
    'on a 2-node machine with ZONE_MOVABLE',
    (ops) => {
      roundTrip({ memory: '5G', nodes: 2, cpus: 4, movablecore: '512M', seed: 3 }, ops, 100);
    },
  );

  test.prop([fc.array(op, { minLength: 100, maxLength: 400 })], { numRuns: 12 })(
    'on a small machine driven into exhaustion',
    (ops) => {
      // 512 MiB fills up quickly, exercising the slow path, highatomic reserves and fallbacks.
      roundTrip({ memory: '512M', cpus: 2, seed: 5 }, ops, 80);
    },
  );

  test.prop([fc.array(op, { minLength: 50, maxLength: 200 })], { numRuns: 6 })('under defrag_mode', (ops) => {
    roundTrip({ memory: '1G', cpus: 2, sysctl: { defrag_mode: 1 } }, ops, 100);
  });
});
