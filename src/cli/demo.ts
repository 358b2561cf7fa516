/**
 * `mapcontig demo`: the story so far. Boot a machine and show its free memory in one piece; run
 * a day of ordinary life — processes that map, touch, fork and exit, the kernel caching dentries
 * and inodes, network drivers holding order-3 buffers — and show that plenty of memory is free
 * but little of it is physically contiguous, and who is in the way.
 */
import pc from 'picocolors';
import { GFP_ATOMIC, GFP_KERNEL } from '../mm/gfp.ts';
import { migratetype_names, PAGE_SIZE } from '../mm/mmzone.ts';
import { type FragmentationSummary, fragmentationSummary } from '../report/fragmentation.ts';
import { Machine } from '../sim/machine.ts';
import { FaultError, type Process } from '../vm/process.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../vm/uapi.ts';

export interface DemoOptions {
  memory: string;
  cpus: number;
  seed: number;
  /** Print /proc/pagetypeinfo as well as /proc/buddyinfo. */
  verbose: boolean;
  out: (line: string) => void;
}

const MiB = (pages: number): string => `${Math.round((pages * PAGE_SIZE) / 2 ** 20)} MiB`;
const HOURS = 24;

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
      `mapcontig demo: a ${opts.memory} machine with ${opts.cpus} CPUs (a model of Linux 6.18, seed ${opts.seed})`,
    ),
  );
  out('');
  out(
    `${pc.bold('1. Freshly booted')}${pc.dim(' — /proc/buddyinfo: free blocks of 4 KiB << order, orders 0..10')}`,
  );
  out(m.readFile('/proc/buddyinfo'));
  if (opts.verbose) out(m.readFile('/proc/pagetypeinfo'));
  m.kernel.drain_all_pages();
  const boot = fragmentationSummary(m.mm);

  // A day in the life: each hour some processes start, grow, fork and exit, the kernel caches
  // dentries and inodes for the files they touch, and NIC drivers refill their order-3 pools.
  const procs: Process[] = [];
  const netbufs: number[] = [];
  const dentries: number[] = [];
  const budget = Math.floor((m.mm.totalram_pages * PAGE_SIZE) / 6);
  let oomKills = 0;
  const act = (p: Process, fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof FaultError)) throw e;
      oomKills++;
    }
    void p;
  };
  for (let hour = 0; hour < HOURS; hour++) {
    for (let i = 0; i < 3; i++) {
      const p = m.spawn({ name: `worker${hour}.${i}`, cpu: rand.below(m.mm.nr_cpus) });
      const size = Math.ceil((budget * (0.3 + rand.next())) / PAGE_SIZE) * PAGE_SIZE;
      act(p, () => {
        const a = p.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        p.touch(a, size, { write: true });
        // Like a malloc arena giving memory back: release most of it in small pieces, keeping
        // every fourth 64 KiB chunk, which stays scattered across the range.
        for (let off = 0; off + 65536 <= size; off += 65536) if (rand.next() < 0.75) p.munmap(a + off, 65536);
        if (rand.next() < 0.3) procs.push(p.fork());
      });
      if (!p.exited) procs.push(p);
    }
    for (let i = 0; i < 2000; i++) {
      const cpu = rand.below(m.mm.nr_cpus);
      const d = m.kernel.d_alloc(GFP_KERNEL, { cpu });
      if (d) dentries.push(d);
      if (i % 20 === 0) {
        const buf = m.kernel.alloc_pages(GFP_ATOMIC, 3, { cpu });
        if (buf >= 0) netbufs.push(buf);
      }
    }
    // Older processes exit; some dentries and network buffers are released.
    for (let i = procs.length - 1; i >= 0; i--) {
      if (procs[i].exited || rand.next() < 0.1) {
        procs[i].exit();
        procs.splice(i, 1);
      }
    }
    for (let i = dentries.length - 1; i >= 0; i--) {
      if (rand.next() < 0.3) {
        m.kernel.dput(dentries[i]);
        dentries.splice(i, 1);
      }
    }
    for (let i = netbufs.length - 1; i >= 0; i--) {
      if (rand.next() < 0.4) {
        m.kernel.free_pages(netbufs[i], 3);
        netbufs.splice(i, 1);
      }
    }
    m.advance('1h');
  }
  m.kernel.drain_all_pages();
  const after = fragmentationSummary(m.mm);

  out(
    `${pc.bold(`2. After ${HOURS} simulated hours`)}${pc.dim(` — ${procs.length} processes still running, ${dentries.length} dentries and ${netbufs.length} order-3 network buffers held`)}`,
  );
  out(m.readFile('/proc/buddyinfo'));
  if (opts.verbose) out(m.readFile('/proc/pagetypeinfo'));

  out(pc.bold('3. What changed'));
  table(out, boot, after);
  out('');
  out(
    `Fallbacks into other migratetypes: ${extfrag.claimed} pageblocks claimed, ${extfrag.stolen} blocks stolen ` +
      `(a steal leaves a pageblock mixed). OOM kills: ${oomKills}.`,
  );
  out(
    `${pc.bold(MiB(after.freePages))} is free, but the longest physically contiguous free run is ` +
      `${pc.bold(MiB(after.largestFreeRun))}. A device asking for one contiguous buffer larger than that ` +
      'fails however much memory is free — unless something moves pages out of the way. That is the ' +
      'question MAP_CONTIG raised in 2017.',
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
}
