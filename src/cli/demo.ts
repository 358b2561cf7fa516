/**
 * `mapcontig demo`: the story so far. Boot a machine, show its free memory in one piece, run a
 * workload that mixes long-lived kernel allocations into memory full of movable pages, free most
 * of the movable ones, and show that plenty of memory is free but little of it is contiguous.
 */
import pc from 'picocolors';
import { __GFP_RECLAIMABLE, GFP_ATOMIC, GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../mm/gfp.ts';
import { migratetype_names, PAGE_SIZE, pageblock_nr_pages } from '../mm/mmzone.ts';
import { type FragmentationSummary, fragmentationSummary } from '../report/fragmentation.ts';
import { Machine } from '../sim/machine.ts';

export interface DemoOptions {
  memory: string;
  cpus: number;
  seed: number;
  /** Print /proc/pagetypeinfo as well as /proc/buddyinfo. */
  verbose: boolean;
  out: (line: string) => void;
}

const MiB = (pages: number): string =>
  `${((pages * PAGE_SIZE) / 2 ** 20).toFixed(pages * PAGE_SIZE < 2 ** 20 ? 2 : 0)} MiB`;

export function runDemo(opts: DemoOptions): void {
  const { out } = opts;
  const m = Machine.boot({ memory: opts.memory, cpus: opts.cpus, seed: opts.seed });
  const rand = m.rand;
  const extfrag = { claimed: 0, stolen: 0 };
  m.mm.trace.mm_page_alloc_extfrag = (_pfn, _order, _fb, _amt, _fmt, claimed) => {
    if (claimed) extfrag.claimed++;
    else extfrag.stolen++;
  };

  out(
    pc.bold(
      `mapcontig demo: a ${opts.memory} machine with ${opts.cpus} CPUs (Linux 6.18 page allocator model, seed ${opts.seed})`,
    ),
  );
  out('');
  out(pc.bold('1. Freshly booted') + pc.dim(' — /proc/buddyinfo'));
  out(m.readFile('/proc/buddyinfo'));
  if (opts.verbose) out(m.readFile('/proc/pagetypeinfo'));
  m.kernel.drain_all_pages();
  const boot = fragmentationSummary(m.mm);

  // Phase 2: memory fills with movable pages (page cache, anonymous memory) while the kernel
  // keeps allocating for itself: slab (order 0-1, some reclaimable), network page pools (order 3).
  const movable: number[] = [];
  const kernelPages: Array<[number, number]> = [];
  const total = m.mm.totalram_pages;
  const target = Math.floor(total * 0.95);
  let used = 0;
  while (used < target) {
    const cpu = rand.below(m.mm.nr_cpus);
    const pfn = m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE, 0, { cpu });
    if (pfn < 0) break;
    movable.push(pfn);
    used++;
    if (rand.next() < 0.02) {
      const r = rand.next();
      const [gfp, order] =
        r < 0.5
          ? [GFP_KERNEL, 0]
          : r < 0.8
            ? [GFP_KERNEL | __GFP_RECLAIMABLE, 0]
            : r < 0.95
              ? [GFP_KERNEL, 1]
              : [GFP_ATOMIC, 3];
      const k = m.kernel.alloc_pages(gfp, order, { cpu });
      if (k >= 0) {
        kernelPages.push([k, order]);
        used += 1 << order;
      }
    }
  }
  // Phase 3: most movable memory is freed again (a cache drop, processes exiting); a few kernel
  // objects go too. What stays pins its pageblock.
  for (let i = movable.length - 1; i > 0; i--) {
    const j = rand.below(i + 1);
    const t = movable[i];
    movable[i] = movable[j];
    movable[j] = t;
  }
  const keep = Math.floor(movable.length * 0.25);
  for (let i = keep; i < movable.length; i++)
    m.kernel.free_pages(movable[i], 0, { cpu: rand.below(m.mm.nr_cpus) });
  let freedKernel = 0;
  for (const [pfn, order] of kernelPages) {
    if (rand.next() < 0.3) {
      m.kernel.free_pages(pfn, order);
      freedKernel++;
    }
  }
  m.kernel.drain_all_pages();
  const after = fragmentationSummary(m.mm);

  out(
    pc.bold('2. After a workload') +
      pc.dim(
        ` — ${movable.length} movable pages allocated, ${kernelPages.length} kernel allocations mixed in; 75% of the movable pages and ${freedKernel} kernel allocations freed`,
      ),
  );
  out(m.readFile('/proc/buddyinfo'));
  if (opts.verbose) out(m.readFile('/proc/pagetypeinfo'));

  out(pc.bold('3. What changed'));
  table(out, boot, after);
  out('');
  out(
    `Fallbacks into other migratetypes: ${extfrag.claimed} pageblocks claimed, ${extfrag.stolen} pages stolen (each steal leaves a mixed pageblock).`,
  );
  const freeMiB = MiB(after.freePages);
  out(
    `${pc.bold(freeMiB)} is free, but the longest physically contiguous free run is ${pc.bold(MiB(after.largestFreeRun))}: ` +
      `a device asking for one contiguous buffer larger than that fails, however much memory is free. ` +
      `That is the question MAP_CONTIG raised in 2017.`,
  );
  m.checkInvariants();
}

function table(out: (l: string) => void, a: FragmentationSummary, b: FragmentationSummary): void {
  const rows: Array<[string, string, string]> = [
    ['free memory', MiB(a.freePages), MiB(b.freePages)],
    ['free 2 MiB blocks (order >= 9)', String(a.freeHugeBlocks), String(b.freeHugeBlocks)],
    ['longest contiguous free run', MiB(a.largestFreeRun), MiB(b.largestFreeRun)],
    ...[0, 1, 2].map((mt): [string, string, string] => [
      `${migratetype_names[mt]} pageblocks (2 MiB)`,
      String(a.pageblocks[mt]),
      String(b.pageblocks[mt]),
    ]),
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  out(`  ${''.padEnd(w0)}  ${'booted'.padStart(12)}  ${'after'.padStart(12)}`);
  for (const [k, x, y] of rows) out(`  ${k.padEnd(w0)}  ${x.padStart(12)}  ${y.padStart(12)}`);
  void pageblock_nr_pages;
}
