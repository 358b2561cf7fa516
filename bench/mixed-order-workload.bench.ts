/**
 * A mixed-order workload through the full path (machine.kernel.alloc_pages/free_pages) on a
 * 16 GiB, 4-CPU machine: orders 0-3 and 9, movable, unmovable and reclaimable requests, on any
 * CPU, keeping a live set of up to LIVE_SLOTS blocks.
 *
 * The live set is filled before timing. Each op then picks a slot, frees its block on the op's
 * CPU (usually not the CPU that allocated it, so pcp lists fill on one CPU and drain to the buddy)
 * and allocates a new block into it on the same CPU. Slot, CPU, order and GFP mask come from a
 * tape generated with the seeded PRNG before timing. About 250k pages stay live, so pcp refills
 * and drains, buddy splits and merges, and migratetype fallbacks all happen. One op is one free
 * plus one alloc, as in order0-alloc-free.
 */
import { Prng } from '../src/lib/prng.ts';
import { __GFP_RECLAIMABLE, GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../src/mm/gfp.ts';
import { Machine } from '../src/sim/machine.ts';
import { defineBenchmark, note, opsRow, timeOps } from './lib/harness.ts';

const LIVE_SLOTS = 8192;
const OPS_PER_PASS = 1 << 17;
const NR_CPUS = 4;
const ORDERS = [0, 1, 2, 3, 9];
/** Mostly order 0; 5% THP-sized blocks, which are always movable. */
const ORDER_WEIGHTS = [60, 15, 10, 10, 5];
const GFPS = [GFP_HIGHUSER_MOVABLE, GFP_KERNEL, GFP_KERNEL | __GFP_RECLAIMABLE];
const GFP_WEIGHTS = [70, 20, 10];

export default defineBenchmark({
  title: 'mixed-order workload, full path (16 GiB, 4 CPUs, orders 0-3 + 9)',
  async run(ctx) {
    const machine = Machine.boot({ memory: '16G', cpus: NR_CPUS });
    const kernel = machine.kernel;
    const rand = new Prng(0x5eed);
    const tapeSlot = new Int32Array(OPS_PER_PASS);
    const tapeCpu = new Uint8Array(OPS_PER_PASS);
    const tapeOrder = new Uint8Array(OPS_PER_PASS);
    const tapeGfp = new Int32Array(OPS_PER_PASS);
    for (let i = 0; i < OPS_PER_PASS; i++) {
      tapeSlot[i] = rand.below(LIVE_SLOTS);
      tapeCpu[i] = rand.below(NR_CPUS);
      const order = ORDERS[rand.weighted(ORDER_WEIGHTS)];
      tapeOrder[i] = order;
      tapeGfp[i] = order === 9 ? GFP_HIGHUSER_MOVABLE : GFPS[rand.weighted(GFP_WEIGHTS)];
    }
    // One `where` object per CPU, made up front: no allocation inside the timed loop.
    const where = Array.from({ length: NR_CPUS }, (_, cpu) => ({ cpu }));
    const live = new Int32Array(LIVE_SLOTS).fill(-1);
    const liveOrder = new Uint8Array(LIVE_SLOTS);
    let allocs = 0;
    let failures = 0;
    for (let s = 0; s < LIVE_SLOTS; s++) {
      // The fill uses the tape's first LIVE_SLOTS orders, masks and CPUs.
      const order = tapeOrder[s];
      live[s] = kernel.alloc_pages(tapeGfp[s], order, where[tapeCpu[s]]);
      liveOrder[s] = order;
    }

    const pass = (): number => {
      let sum = 0;
      for (let i = 0; i < OPS_PER_PASS; i++) {
        const s = tapeSlot[i];
        const on = where[tapeCpu[i]];
        const pfn = live[s];
        if (pfn >= 0) kernel.free_pages(pfn, liveOrder[s], on);
        const order = tapeOrder[i];
        const got = kernel.alloc_pages(tapeGfp[i], order, on);
        allocs++;
        live[s] = got;
        liveOrder[s] = order;
        if (got < 0) {
          failures++;
          continue;
        }
        sum = (sum + got) | 0;
      }
      return sum;
    };

    note('mixed orders');
    const stats = await timeOps(pass, OPS_PER_PASS, ctx);
    let livePages = 0;
    for (let s = 0; s < LIVE_SLOTS; s++) if (live[s] >= 0) livePages += 1 << liveOrder[s];
    const v = machine.invariantViolations();
    if (v.length) throw new Error(`invariants broken after the run:\n  ${v.join('\n  ')}`);
    return [
      opsRow(
        'free + alloc, orders 0/1/2/3/9 at 60/15/10/10/5',
        stats,
        `; ${livePages} pages live at the end, ${failures} of ${allocs} allocations failed`,
      ),
    ];
  },
});
