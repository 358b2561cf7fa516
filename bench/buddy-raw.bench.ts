/**
 * The raw buddy path: __rmqueue_smallest() + __free_one_page() called directly on zone Normal of
 * a 16 GiB machine (bench/lib/buddy-workload.ts), for order 0 only and for a mix of orders 0-3
 * and 9. One op is one free plus one alloc. This is the loop bench/c/buddy.c replays in C.
 */
import { BuddyWorkload, OPS_PER_PASS } from './lib/buddy-workload.ts';
import { defineBenchmark, note, opsRow, type Row, timeOps } from './lib/harness.ts';

export default defineBenchmark({
  title: 'raw buddy path: __rmqueue_smallest + __free_one_page (16 GiB zone Normal)',
  async run(ctx) {
    const rows: Row[] = [];
    for (const mix of ['order0', 'mixed'] as const) {
      note(mix);
      const w = new BuddyWorkload(mix);
      const label = mix === 'order0' ? 'order 0' : 'orders 0-3 + 9 (60/20/10/9/1)';
      rows.push(opsRow(label, await timeOps(() => w.pass(), OPS_PER_PASS, ctx)));
      const bad = w.releaseAndCheck();
      if (bad.length) throw new Error(`${mix}: invariants broken after the run:\n  ${bad.join('\n  ')}`);
    }
    return rows;
  },
});
