/**
 * The VMA index (src/vm/maple_tree.ts) with 10^5 ranges, as in a large process: ranges of 1-64
 * pages separated by holes of 0-32 pages (a fifth of them adjacent), plus one hole in a hundred
 * of 256-1279 pages so that large top-down searches have somewhere to go. Addresses are random
 * inside the populated span. One op is one call, except store+erase (one store plus one erase, of
 * a page-sized range in a random hole) and adjust (shrink by a page, then restore: two calls).
 *
 * `npm run bench -- vma-tree`, or on its own: `npx tsx bench/vma-tree.bench.ts`.
 */
import { pathToFileURL } from 'node:url';
import { Prng } from '../src/lib/prng.ts';
import { MapleTree } from '../src/vm/maple_tree.ts';
import { type BenchContext, defineBenchmark, note, opsRow, type Row, timeOps } from './lib/harness.ts';

const PAGE = 4096;
const N = 100_000;
/** Queries per pass. */
const Q = 1 << 16;
const BASE = 0x7f00_0000_0000; // where mmap_base-ish addresses live; above 2^46, below 2^47

/** The tree plus arrays describing it, so passes can pick ranges and holes without searching. */
interface Layout {
  tree: MapleTree;
  starts: Float64Array;
  ends: Float64Array;
  top: number;
}

function build(seed: number): Layout {
  const rng = new Prng(seed);
  const tree = new MapleTree(N);
  const starts = new Float64Array(N);
  const ends = new Float64Array(N);
  let a = BASE - 2 ** 40; // leave room below BASE
  for (let i = 0; i < N; i++) {
    const r = rng.below(100);
    const hole = r < 20 ? 0 : r === 99 ? 256 + rng.below(1024) : 1 + rng.below(32);
    a += hole * PAGE;
    const len = (1 + rng.below(64)) * PAGE;
    starts[i] = a;
    ends[i] = a + len;
    a += len;
  }
  // Insert in random order, not address order, so nodes are as full as a real tree's.
  const order = new Int32Array(N);
  for (let i = 0; i < N; i++) order[i] = i;
  for (let i = N - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const t = order[i];
    order[i] = order[j];
    order[j] = t;
  }
  for (let k = 0; k < N; k++) {
    const i = order[k];
    tree.store(starts[i], ends[i], i);
  }
  return { tree, starts, ends, top: a };
}

const benchmark = defineBenchmark({
  title: 'VMA index (maple tree), 10^5 ranges',
  async run(ctx: BenchContext) {
    const rows: Row[] = [];
    const L = build(1);
    const { tree, starts, ends } = L;
    const lo = starts[0];
    const span = L.top - lo;
    const rng = new Prng(2);

    // Random byte addresses in the span (most land in a range, some in a hole).
    const addrs = new Float64Array(Q);
    for (let i = 0; i < Q; i++) addrs[i] = lo + Math.floor(rng.next() * span);
    // Random range indices, and random holes of at least one page.
    const picks = new Int32Array(Q);
    for (let i = 0; i < Q; i++) picks[i] = rng.below(N);
    const holes = new Int32Array(Q);
    for (let k = 0; k < Q; ) {
      const j = rng.below(N - 1);
      if (starts[j + 1] > ends[j]) holes[k++] = j;
    }
    // Top-down search limits: random highs in the span; sizes of 1-16 pages.
    const highs = new Float64Array(Q);
    const sizes = new Float64Array(Q);
    for (let i = 0; i < Q; i++) {
      highs[i] = lo + PAGE * Math.floor((rng.next() * span) / PAGE);
      sizes[i] = (1 + rng.below(16)) * PAGE;
    }

    const bench = async (name: string, ops: number, pass: () => number, extra = ''): Promise<void> => {
      note(name);
      rows.push(opsRow(name, await timeOps(pass, ops, ctx), extra));
    };

    await bench('walk (mas_walk)', Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++) sum = (sum + tree.walk(addrs[i])) | 0;
      return sum;
    });
    await bench('find (find_vma)', Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++) sum = (sum + tree.find(addrs[i])) | 0;
      return sum;
    });
    await bench('prev + next (merge neighbours)', 2 * Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++) {
        const j = picks[i];
        sum = (sum + tree.prev(starts[j]) + tree.next(ends[j])) | 0;
      }
      return sum;
    });
    await bench('store + erase (1 page in a random hole)', Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++) {
        const s = ends[holes[i]];
        tree.store(s, s + PAGE, 7);
        sum = (sum + tree.erase(s)) | 0;
      }
      return sum;
    });
    await bench('adjust in place (vm_end - 1 page, then back)', 2 * Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++) {
        const j = picks[i];
        const s = starts[j];
        const e = ends[j];
        if (e - s < 2 * PAGE) continue;
        sum = (sum + tree.adjust(s, s, e - PAGE) + tree.adjust(s, s, e)) | 0;
      }
      return sum;
    });
    await bench('adjust vm_start (+1 page, then back)', 2 * Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++) {
        const j = picks[i];
        const s = starts[j];
        const e = ends[j];
        if (e - s < 2 * PAGE) continue;
        sum = (sum + tree.adjust(s, s + PAGE, e) + tree.adjust(s + PAGE, s, e)) | 0;
      }
      return sum;
    });
    await bench('iterate (16 ranges per call)', Q, () => {
      let sum = 0;
      const visit = (_s: number, _e: number, id: number): boolean => {
        sum = (sum + id) | 0;
        return true;
      };
      for (let i = 0; i < Q; i++) {
        const j = picks[i] % (N - 16);
        tree.iterate(starts[j], ends[j + 15], visit);
      }
      return sum;
    });
    await bench('emptyAreaRev (1-16 pages, align 4K)', Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++) sum = (sum + tree.emptyAreaRev(PAGE, highs[i], sizes[i], PAGE) / PAGE) | 0;
      return sum;
    });
    await bench('emptyAreaRev (128 pages: only 1% of holes fit)', Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++)
        sum = (sum + tree.emptyAreaRev(PAGE, highs[i], 128 * PAGE, PAGE) / PAGE) | 0;
      return sum;
    });
    await bench('emptyAreaRev (2 MiB, align 2 MiB)', Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++)
        sum = (sum + tree.emptyAreaRev(PAGE, highs[i], 512 * PAGE, 512 * PAGE) / PAGE) | 0;
      return sum;
    });
    await bench('emptyArea (1-16 pages, bottom-up from random low)', Q, () => {
      let sum = 0;
      for (let i = 0; i < Q; i++) sum = (sum + tree.emptyArea(highs[i], L.top, sizes[i], PAGE) / PAGE) | 0;
      return sum;
    });

    // Whole-tree operations: building 10^5 ranges and copying the tree for fork().
    note('build');
    const scratch = new MapleTree(N);
    rows.push(
      opsRow(
        'store, building 10^5 ranges in address order',
        await timeOps(
          () => {
            scratch.clear();
            for (let i = 0; i < N; i++) scratch.store(starts[i], ends[i], i);
            return scratch.size;
          },
          N,
          ctx,
          2,
        ),
      ),
    );
    rows.push(
      opsRow(
        'clone (__mt_dup for fork), whole tree',
        await timeOps(() => tree.clone().size, 1, ctx, 2),
        `; ${(tree.byteLength / 2 ** 20).toFixed(1)} MiB pool`,
      ),
    );

    const bad = tree.check();
    if (bad.length || tree.size !== N) throw new Error(`tree broken after the run:\n  ${bad.join('\n  ')}`);
    return rows;
  },
});

export default benchmark;

// Run on its own (not through bench/run.ts): print one line per row.
if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const rows = await benchmark.run({ quick: process.argv.includes('--quick') });
  for (const r of rows) {
    const [v, p] =
      r.value >= 1e6 ? [r.value / 1e6, 'M'] : r.value >= 1e3 ? [r.value / 1e3, 'k'] : [r.value, ''];
    process.stdout.write(
      `${r.case.padEnd(50)} ${v.toFixed(2).padStart(7)} ${p}${r.unit}  ${r.detail ?? ''}\n`,
    );
  }
}
