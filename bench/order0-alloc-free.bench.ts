/**
 * Order-0 alloc+free through the full path: machine.kernel.alloc_pages() → __alloc_pages →
 * get_page_from_freelist → rmqueue_pcplist (refilled by rmqueue_bulk from the buddy lists), and
 * machine.kernel.free_pages() → free_frozen_page_commit (drained by free_pcppages_bulk into
 * __free_one_page). One op is one alloc plus one free, on a 16 GiB, 4-CPU machine.
 *
 * Three shapes per GFP mask:
 * - pcp hit: alloc one page, free it again; the block never leaves CPU 0's pcp list.
 * - batch 4096, same CPU: alloc 4096 pages on CPU 0, then free them oldest first on CPU 0. The
 *   auto-tuned pcp->high (6.7+) grows past 4096 within a few passes, so after warm-up this is the
 *   pcp lists only, walking cold list entries.
 * - batch 4096, freed on CPU 1: alloc on CPU 0, free on CPU 1, the producer/consumer pattern.
 *   CPU 0's list is refilled from the buddy (rmqueue_bulk → __rmqueue_smallest, splitting) and
 *   CPU 1's list drains back (free_pcppages_bulk → __free_one_page, merging): pcp and buddy.
 */
import { GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../src/mm/gfp.ts';
import { Machine } from '../src/sim/machine.ts';
import { defineBenchmark, note, opsRow, type Row, timeOps } from './lib/harness.ts';

const BATCH = 4096;
const HOT_OPS = 1 << 16;
const BATCH_ROUNDS = 4;

export default defineBenchmark({
  title: 'order-0 alloc+free, full path (16 GiB, 4 CPUs)',
  async run(ctx) {
    const rows: Row[] = [];
    for (const [gfpName, gfp] of [
      ['GFP_KERNEL', GFP_KERNEL],
      ['GFP_HIGHUSER_MOVABLE', GFP_HIGHUSER_MOVABLE],
    ] as const) {
      // A fresh machine per mask, so the second mask does not inherit the first one's pcp state.
      const machine = Machine.boot({ memory: '16G', cpus: 4 });
      const kernel = machine.kernel;
      const where = { cpu: 0 }; // hoisted: no object per call
      const remote = { cpu: 1 };
      const pfns = new Int32Array(BATCH);
      let failures = 0;

      const hot = (): number => {
        let sum = 0;
        for (let i = 0; i < HOT_OPS; i++) {
          const pfn = kernel.alloc_pages(gfp, 0, where);
          if (pfn < 0) {
            failures++;
            continue;
          }
          kernel.free_pages(pfn, 0, where);
          sum = (sum + pfn) | 0;
        }
        return sum;
      };
      const batch = (freeOn: { cpu: number }): number => {
        let sum = 0;
        for (let r = 0; r < BATCH_ROUNDS; r++) {
          for (let i = 0; i < BATCH; i++) pfns[i] = kernel.alloc_pages(gfp, 0, where);
          for (let i = 0; i < BATCH; i++) {
            const pfn = pfns[i];
            if (pfn < 0) {
              failures++;
              continue;
            }
            kernel.free_pages(pfn, 0, freeOn);
            sum = (sum + pfn) | 0;
          }
        }
        return sum;
      };
      const batchLocal = (): number => batch(where);
      const batchRemote = (): number => batch(remote);

      note(`${gfpName}: pcp hit`);
      rows.push(opsRow(`${gfpName}, pcp hit`, await timeOps(hot, HOT_OPS, ctx)));
      note(`${gfpName}: batch ${BATCH}, same CPU`);
      rows.push(
        opsRow(`${gfpName}, batch ${BATCH}, same CPU`, await timeOps(batchLocal, BATCH * BATCH_ROUNDS, ctx)),
      );
      note(`${gfpName}: batch ${BATCH}, freed on CPU 1`);
      rows.push(
        opsRow(
          `${gfpName}, batch ${BATCH}, freed on CPU 1`,
          await timeOps(batchRemote, BATCH * BATCH_ROUNDS, ctx),
        ),
      );
      if (failures) throw new Error(`${gfpName}: ${failures} allocations failed on an idle 16 GiB machine`);
      const v = machine.invariantViolations();
      if (v.length) throw new Error(`${gfpName}: invariants broken after the run:\n  ${v.join('\n  ')}`);
    }
    return rows;
  },
});
