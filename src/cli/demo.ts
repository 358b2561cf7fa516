/**
 * `mapcontig demo`: the story so far. Boot a machine and show its free memory in one piece; run a
 * day in the life of a small server, whose memory is held the ways Linux holds it, and show that
 * plenty of memory is free or reclaimable but little of it is physically contiguous, and who is in
 * the way.
 *
 * The day runs from 00:00 to 24:00 in 5-minute steps on the simulated clock (the flusher, kswapd
 * and the vmstat workers run in between); sizes are fractions of RAM, so a small machine tells
 * the same story:
 * - the kernel loads its modules (vmalloc); each CPU's NIC receive queue takes order-3 (32 KiB)
 *   buffers from a page_pool: most packets are recycled at once, some wait in socket queues and
 *   come back from another CPU, and traffic bursts grow the pools, whose surplus goes back to the
 *   page allocator;
 * - systemd-journald appends to its journal and fsyncs it every 5 minutes (SyncIntervalSec),
 *   rotating and deleting old journals; nginx serves static files and appends its access log;
 * - postgres reads its database file randomly with pread (8 KiB pages, a hot set), copies what it
 *   reads into shared_buffers (MAP_SHARED|MAP_ANONYMOUS: shmem), writes pages back, appends and
 *   fsyncs its WAL, checkpoints hourly, and runs parallel queries whose workers share a dynamic
 *   shared memory segment in /dev/shm;
 * - slapd maps its LMDB database MAP_SHARED and reads and writes it through the mapping;
 * - an RDMA server registers its buffers with ib_umem_get (long-term pins) and re-registers some
 *   every hour as clients come and go;
 * - at 02:00 a backup streams the database file into a tar file: the page cache grows until
 *   kswapd trims it, and tar is throttled at the dirty limit if it outruns the disk;
 * - every hour batch jobs start (each with a cgroup BPF program, vmalloc'ed), map libc, read their
 *   input, grow and shrink anonymous memory, sometimes fork, write their output, and exit hours
 *   later; path lookups fill the dentry cache; the firewall reloads its rules (vmalloc'ed tables).
 */
import pc from 'picocolors';
import { collateralProbe } from '../contig/collateral.ts';
import { cloneCopies, compareContenders } from '../contig/compare.ts';
import { ErrnoError } from '../lib/errno.ts';
import { parseSize } from '../lib/size.ts';
import { blockCensus, fragmentationSummary } from '../mm/fragmentation.ts';
import { GFP_KERNEL } from '../mm/gfp.ts';
import { migratetype_names, PAGE_SIZE } from '../mm/mmzone.ts';
import type { PagePool } from '../mm/page_pool.ts';
import { vm_event_index } from '../mm/vmstat_items.ts';
import type { MachineConfigInput } from '../sim/config.ts';
import { Machine } from '../sim/machine.ts';
import { FaultError, type Process, type Umem } from '../vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  O_APPEND,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  SEEK_CUR,
} from '../vm/uapi.ts';

export interface DemoOptions {
  memory: string;
  cpus: number;
  seed: number;
  /** Print /proc/pagetypeinfo as well as /proc/buddyinfo. */
  verbose: boolean;
  out: (line: string) => void;
}

const KiB = 1024;
const MiB = 1024 * KiB;
const mib = (pages: number): string => `${Math.round((pages * PAGE_SIZE) / MiB)} MiB`;
const HOURS = 24;
const STEP_NS = 5 * 60e9;
const STEPS_PER_HOUR = 12;
const PGPGIN = vm_event_index('pgpgin');

export function runDemo(opts: DemoOptions): void {
  const { out } = opts;
  const m = Machine.boot(demoConfig(opts));
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
  const bootBlocks = blockCensus(m.mm);

  const day = new Day(m);
  day.run();
  m.kernel.drain_all_pages();
  const after = fragmentationSummary(m.mm);
  const afterBlocks = blockCensus(m.mm);

  out(
    `${pc.bold(`2. After ${HOURS} simulated hours`)}${pc.dim(
      ` — a database, a web server, an LDAP server, an RDMA server, the journal, a nightly backup and ${day.jobsStarted} batch jobs; ${day.running()} processes still running`,
    )}`,
  );
  out(m.readFile('/proc/buddyinfo'));
  if (opts.verbose) out(m.readFile('/proc/pagetypeinfo'));

  out(`${pc.bold('3. Who holds memory')}${pc.dim(' — /proc/meminfo and /proc/vmstat')}`);
  const mi = procFields(m.readFile('/proc/meminfo'), /^(\w+):\s+(\d+) kB/);
  const vs = procFields(m.readFile('/proc/vmstat'), /^(\w+) (\d+)/);
  const kB = (k: string): string => mib((mi.get(k) ?? 0) / 4);
  const vm = (k: string): number => vs.get(k) ?? 0;
  const rows: Array<[string, string, string]> = [
    [
      'Cached',
      kB('Cached'),
      `page cache of files on disk and tmpfs (Dirty ${kB('Dirty')}, Shmem ${kB('Shmem')})`,
    ],
    ['AnonPages', kB('AnonPages'), `processes' private memory (Mlocked ${kB('Mlocked')})`],
    [
      'pinned',
      mib(vm('nr_foll_pin_acquired') - vm('nr_foll_pin_released')),
      'pinned for DMA by RDMA registrations (nr_foll_pin_acquired - nr_foll_pin_released)',
    ],
    ['Slab', kB('Slab'), 'kernel objects: dentries, inodes, kmalloc'],
    ['VmallocUsed', kB('VmallocUsed'), 'modules, BPF programs, firewall tables, page_pool rings'],
    ['page_pool', mib(day.netPages()), 'NIC receive buffers of 32 KiB (no /proc counter shows them)'],
    [
      'MemFree',
      kB('MemFree'),
      `free; MemAvailable, which adds what reclaim could free: ${kB('MemAvailable')}`,
    ],
  ];
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const w1 = Math.max(...rows.map((r) => r[1].length));
  for (const [k, v, what] of rows) out(`  ${k.padEnd(w0)}  ${v.padStart(w1)}  ${pc.dim(what)}`);
  const throttled = vm('nr_throttled_written');
  out(
    `During the day kswapd reclaimed ${mib(vm('pgsteal_kswapd'))} and direct reclaim ` +
      `${mib(vm('pgsteal_direct'))}; ${mib(vm('pgpgout') / 4)} was written back to disk` +
      (throttled ? `, ${mib(throttled)} of it by writers throttled at the dirty limit.` : '.'),
  );
  out('');

  out(pc.bold('4. What changed'));
  table(out, [
    ['free memory', mib(boot.freePages), mib(after.freePages)],
    ['free 2 MiB blocks (order >= 9)', String(boot.freeHugeBlocks), String(after.freeHugeBlocks)],
    ['longest contiguous free run', mib(boot.largestFreeRun), mib(after.largestFreeRun)],
    ...[0, 1, 2].map((mt): [string, string, string] => [
      `${migratetype_names[mt]} pageblocks (2 MiB)`,
      String(boot.pageblocks[mt]),
      String(after.pageblocks[mt]),
    ]),
    ['2 MiB blocks in use, movable pages only', String(bootBlocks.movable), String(afterBlocks.movable)],
    ['2 MiB blocks with pinned pages', String(bootBlocks.pinned), String(afterBlocks.pinned)],
    ['2 MiB blocks with kernel memory', String(bootBlocks.kernel), String(afterBlocks.kernel)],
  ]);
  out('');
  out(
    `Fallbacks into other migratetypes: ${extfrag.claimed} pageblocks claimed, ${extfrag.stolen} blocks stolen ` +
      `(a steal leaves a pageblock mixed). OOM kills: ${vm('oom_kill')}.`,
  );
  out(
    `${pc.bold(mib(after.freePages))} is free, but the longest physically contiguous free run is ` +
      `${pc.bold(mib(after.largestFreeRun))}. A device asking for one contiguous buffer larger than that ` +
      'fails however much memory is free — unless something moves pages out of the way. Migrating and ' +
      `reclaiming pages could at best empty the ${afterBlocks.movable} 2 MiB blocks that hold only movable ` +
      `pages; ${afterBlocks.pinned} more are held in place by pages pinned for RDMA and ${afterBlocks.kernel} ` +
      'by kernel memory, which nothing moves. That is the question MAP_CONTIG raised in 2017.',
  );
  out('');
  // The tracepoint's probe is the demo's, not the machine's: clones do not take it along.
  m.mm.trace.mm_page_alloc_extfrag = null;
  everyContender(m, out);
  kernelToday(m, out);
  m.checkInvariants();
}

/** The RFC's request, or an eighth of a smaller machine, in whole 64 MiB steps. */
function requestBytes(m: Machine): number {
  const step = 64 * MiB;
  return Math.min(700 * MiB, Math.floor((m.mm.totalram_pages * PAGE_SIZE) / 8 / step) * step);
}

/**
 * The demo machine: a CMA area of an eighth of RAM (as embedded boards reserve), and an
 * administrator who gave the RDMA user's group (gid 1000) MAP_CONTIG, /dev/contig0 and the dma-buf
 * heaps, under the bounded policy's default quotas.
 */
function demoConfig(opts: DemoOptions): MachineConfigInput {
  let eighth = 0;
  try {
    eighth = Math.floor(parseSize(opts.memory, 'memory') / 8 / MiB);
  } catch {
    // Machine.boot() names the bad size with the rest of the configuration.
  }
  return {
    memory: opts.memory,
    cpus: opts.cpus,
    seed: opts.seed,
    ...(eighth ? { cma: `${eighth}M` } : {}),
    contig_devices: [{ name: 'contig0', gid: RDMA_GID, mode: 0o660 }],
    dma_heap: { gid: RDMA_GID, mode: 0o660 },
    sysctl: { contig_group: RDMA_GID },
  };
}

const RDMA_GID = 1000;

const signed = (n: number): string => `${n >= 0 ? '+' : ''}${n}`;

/**
 * Section 5: the thread's request through every contender, each on its own clone of the machine
 * as the day left it: success, latency, pages moved, what the NIC and an accelerator make of the
 * buffer, and what a workload running afterwards loses compared with a clone where nothing was
 * asked (docs/comparison.md).
 */
function everyContender(m: Machine, out: (line: string) => void): void {
  const bytes = requestBytes(m);
  const c = compareContenders({
    copy: cloneCopies(m),
    request: { bytes, uid: 1000, gid: RDMA_GID, devices: ['rdma-nic', 'qat-like-accelerator'] },
    probe: collateralProbe({ window: '3s', steps: 6 }),
  });
  out(
    pc.bold(
      `5. The thread's request — ${mib(bytes / PAGE_SIZE)} of physically contiguous memory for an RDMA NIC — through every contender`,
    ),
  );
  out(
    pc.dim(
      '   each on its own clone of this machine; "after" is a 3 s workload that follows (THP faults, order-3 kernel allocations, reads), against a clone where nothing was asked',
    ),
  );
  const head = [
    'contender',
    'result',
    'latency',
    'migrated',
    'reclaimed',
    'NIC MTT',
    'accelerator',
    'after: THP fallback',
    'reclaim',
    'kernel fails',
  ];
  const rows = c.results.map((r) => {
    const nic = r.benefit.find((b) => b.device === 'rdma-nic');
    const acc = r.benefit.find((b) => b.device === 'qat-like-accelerator');
    const d = r.collateral;
    const pp = d ? `${d.thp.fallback_rate >= 0 ? '+' : ''}${(100 * d.thp.fallback_rate).toFixed(1)} pp` : '';
    const fails = d ? d.kernel.atomic_failures + d.kernel.noretry_failures : 0;
    return [
      r.name,
      r.skipped ? 'skipped' : r.ok ? 'ok' : (r.errno ?? ''),
      r.cost ? `${(r.cost.latency_ns / 1e6).toFixed(1)} ms` : '',
      r.cost ? String(r.cost.pages_migrated) : '',
      r.cost ? String(r.cost.pgsteal) : '',
      nic?.mtt_entries
        ? `${nic.mtt_entries} × ${nic.mtt_page_size! >= MiB ? `${nic.mtt_page_size! / MiB}M` : `${nic.mtt_page_size! / 1024}K`}`
        : '',
      acc ? (acc.usable ? 'usable' : `${acc.segments} pieces`) : '',
      r.ok ? pp : '',
      r.ok && d ? signed(d.reclaim.pgsteal_kswapd + d.reclaim.pgsteal_direct) : '',
      r.ok ? signed(fails) : '',
    ];
  });
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const fmt = (cells: string[]) =>
    `  ${cells.map((x, i) => (i === 0 ? x.padEnd(widths[i]) : x.padStart(widths[i]))).join('  ')}`;
  out(pc.dim(fmt(head)));
  for (const [i, r] of rows.entries()) {
    const line = fmt(r);
    const res = c.results[i];
    out(res.ok ? line : res.skipped ? pc.dim(line) : line.replace(r[1], pc.red(r[1])));
  }
  // "ENOMEM: Cannot allocate memory, mmap (why)" → "why": the table already has the errno.
  for (const r of c.results)
    if (!r.ok && !r.skipped && r.note)
      out(pc.dim(`  ${r.name}: ${r.note.replace(/\b[A-Z]+: [^,;]+, \w+ \((.*)\)$/, '$1')}`));
  out('');
}

const PGMIGRATE_SUCCESS = vm_event_index('pgmigrate_success');

/**
 * Section 6: what Linux 6.18 itself offers on the fragmented machine — a driver's
 * alloc_contig_pages() (the RFC's 700 MiB, or an eighth of a smaller machine), a runtime hugetlb
 * pool, and compact_memory — each with its simulated latency and the pages it moved.
 */
function kernelToday(m: Machine, out: (line: string) => void): void {
  const nr = requestBytes(m) / PAGE_SIZE;
  const measure = (fn: () => void): { ms: string; moved: number } => {
    const t0 = m.kernel_ns;
    const moved0 = m.mm.vm_events[PGMIGRATE_SUCCESS];
    fn();
    return { ms: ((m.kernel_ns - t0) / 1e6).toFixed(1), moved: m.mm.vm_events[PGMIGRATE_SUCCESS] - moved0 };
  };
  const contig = (): string => {
    let pfn = -1;
    const r = measure(() => {
      pfn = m.kernel.alloc_contig_pages(nr, GFP_KERNEL);
    });
    if (pfn >= 0) m.kernel.free_contig_range(pfn, nr);
    const what = pfn >= 0 ? pc.green('got it') : pc.red('failed (NULL)');
    return `${what} in ${r.ms} ms, migrating ${r.moved} pages`;
  };
  const hugepages = (): string => {
    const want = Math.floor(nr / 512);
    m.writeFile('/proc/sys/vm/nr_hugepages', '0');
    const r = measure(() => m.writeFile('/proc/sys/vm/nr_hugepages', String(want)));
    const got = Number(m.readFile('/proc/sys/vm/nr_hugepages'));
    m.writeFile('/proc/sys/vm/nr_hugepages', '0');
    return `${got} of ${want} 2 MiB pages in ${r.ms} ms, migrating ${r.moved} pages`;
  };
  const line = (label: string, text: string): void => out(`  ${label.padEnd(40)}${text}`);
  out(pc.bold('6. What Linux 6.18 does by itself on this machine'));
  line(`echo ${Math.floor(nr / 512)} > nr_hugepages`, hugepages());
  line(`a driver's alloc_contig_pages(${mib(nr)})`, contig());
  const c = measure(() => m.writeFile('/proc/sys/vm/compact_memory', '1'));
  m.kernel.drain_all_pages();
  const compacted = fragmentationSummary(m.mm);
  line(
    'echo 1 > compact_memory',
    `${c.ms} ms, migrating ${c.moved} pages: ${compacted.freeHugeBlocks} free 2 MiB blocks, ` +
      `longest free run ${mib(compacted.largestFreeRun)}`,
  );
  line('then nr_hugepages again', hugepages());
  line(`then alloc_contig_pages(${mib(nr)})`, contig());
  out(
    pc.dim(
      '  A contiguous allocation can fail after migrating many pages: isolation turns a range down ' +
        'for kernel pages at once, but a page pinned for DMA shows only when its migration fails.',
    ),
  );
}

/** Lines "name value" of a /proc file, by `re` (name, number). */
function procFields(text: string, re: RegExp): Map<string, number> {
  const fields = new Map<string, number>();
  for (const line of text.split('\n')) {
    const match = re.exec(line);
    if (match) fields.set(match[1], Number(match[2]));
  }
  return fields;
}

function table(out: (l: string) => void, rows: Array<[string, string, string]>): void {
  const w0 = Math.max(...rows.map((r) => r[0].length));
  out(`  ${''.padEnd(w0)}  ${'booted'.padStart(12)}  ${'after'.padStart(12)}`);
  for (const [k, x, y] of rows) out(`  ${k.padEnd(w0)}  ${x.padStart(12)}  ${y.padStart(12)}`);
}

/** A process's call failed the way a busy machine makes calls fail (no memory, killed meanwhile). */
const TRANSIENT = new Set(['ENOMEM', 'ESRCH', 'ENOSPC', 'EAGAIN']);

/** One NIC receive queue: its page_pool, the buffers posted to the RX ring, those held by sockets. */
interface RxQueue {
  cpu: number;
  pool: PagePool;
  posted: number[];
  /** Buffers queued on sockets, with the step at which the application reads them. */
  held: Array<{ pfn: number; until: number }>;
}

interface Job {
  p: Process;
  /** The cgroup's BPF program (a vmalloc area). */
  bpf: number;
}

/** The simulated day: the machine's services, jobs and kernel activity. */
class Day {
  private readonly rand: Machine['rand'];
  /** RAM in bytes. */
  private readonly ram: number;
  private step = 0;
  jobsStarted = 0;
  private readonly jobs: Job[] = [];
  private readonly dentries: number[] = [];
  private readonly rx: RxQueue[] = [];
  /** Packets per step per queue; raised during an hour of burst. */
  private burst = 1;
  private firewall = 0;

  // Services (spawned in boot()).
  private init!: Process;
  private journald!: Process;
  private journal = { fd: -1, n: 0, archived: [] as string[] };
  private nginx!: Process;
  private site: Array<{ path: string; size: number }> = [];
  private accessLog = -1;
  private postgres!: Process;
  private pg = { db: -1, dbBlocks: 0, sb: 0, sbSlots: 0, wal: -1, walSeg: 0, walSegs: [] as string[] };
  private slapd!: Process;
  private ldap = { base: 0, pages: 0 };
  private rdma!: Process;
  private mrs: Array<{ addr: number; umem: Umem }> = [];
  private inputs: string[] = [];

  constructor(private readonly m: Machine) {
    this.rand = m.rand;
    this.ram = m.mm.totalram_pages * PAGE_SIZE;
  }

  /** `fraction` of RAM in whole pages (at least `min` bytes). */
  private size(fraction: number, min = PAGE_SIZE): number {
    return Math.max(min, Math.floor((this.ram * fraction) / PAGE_SIZE) * PAGE_SIZE);
  }

  /** An index in [0, n) with a hot head: half the accesses go to the first eighth. */
  private hot(n: number): number {
    return Math.floor(n * this.rand.next() ** 3);
  }

  /**
   * Fault in [addr, addr + len) 4 MiB at a time, letting 2 ms pass after each piece (a page
   * fault loop's pace), so kswapd, woken at the low watermark, reclaims alongside.
   */
  private touch(p: Process, addr: number, len: number): void {
    for (let off = 0; off < len; off += 4 * MiB) {
      p.touch(addr + off, Math.min(4 * MiB, len - off), { write: true });
      this.m.advance(2e6);
    }
  }

  /** Run `fn` as `p`, unless it has exited; false if it failed for lack of memory or was killed. */
  private act(p: Process, fn: () => void): boolean {
    if (p.exited) return false;
    try {
      fn();
      return true;
    } catch (e) {
      if (e instanceof FaultError && e.signal !== 'SIGSEGV') return false;
      if (e instanceof ErrnoError && TRANSIENT.has(e.code)) return false;
      throw e;
    }
  }

  running(): number {
    const services = [this.init, this.journald, this.nginx, this.postgres, this.slapd, this.rdma];
    return services.filter((p) => !p.exited).length + this.jobs.filter((j) => !j.p.exited).length;
  }

  /** Pages the NIC page_pools hold (cached, posted to the RX rings, or queued on sockets). */
  netPages(): number {
    return this.rx.reduce((n, q) => n + (q.pool.inflight << q.pool.order), 0);
  }

  run(): void {
    const m = this.m;
    const start = m.now;
    this.boot();
    for (let hour = 0; hour < HOURS; hour++) {
      this.hourly(hour);
      for (let s = 0; s < STEPS_PER_HOUR; s++, this.step++) {
        this.network();
        this.journal_step();
        this.nginx_step();
        this.postgres_step();
        this.slapd_step();
        m.advance(Math.max(0, start + (this.step + 1) * STEP_NS - m.now));
      }
    }
  }

  /** 00:00: the kernel, the files already on disk, the services. */
  private boot(): void {
    const m = this.m;
    const rand = this.rand;
    const cpus = m.mm.nr_cpus;
    // Kernel modules: 16 KiB .. 1 MiB each.
    for (let i = 0; i < 40; i++) {
      const size = Math.ceil(2 ** (14 + 6 * rand.next()) / PAGE_SIZE) * PAGE_SIZE;
      m.kernel.vmalloc(size, GFP_KERNEL, { caller: 'load_module', cpu: rand.below(cpus) });
    }
    // One receive queue per CPU, its RX ring of 256 posted 32 KiB buffers and a 256-entry pool.
    for (let cpu = 0; cpu < cpus; cpu++) {
      const pool = m.kernel.page_pool_create({ order: 3, pool_size: 256, cpu });
      if (!pool) continue;
      const q: RxQueue = { cpu, pool, posted: [], held: [] };
      this.refill(q);
      this.rx.push(q);
    }

    // What is on the disk, owned by who uses it (ftruncate: the data is there, none of it in memory).
    this.init = m.spawn({ name: 'systemd', oom_score_adj: -1000 });
    const onDisk = (p: Process, path: string, size: number): void => {
      const fd = p.open(path, O_CREAT | O_WRONLY, 0o644);
      p.ftruncate(fd, size);
      p.close(fd);
    };
    onDisk(this.init, '/usr/lib/x86_64-linux-gnu/libc.so.6', 2 * MiB);
    for (let i = 0; i < 300; i++) {
      const size = Math.ceil(2 ** (12 + 9 * rand.next()) / PAGE_SIZE) * PAGE_SIZE; // 4 KiB .. 2 MiB
      const path = `/srv/www/${i}.html`;
      onDisk(this.init, path, size);
      this.site.push({ path, size });
    }
    for (let i = 0; i < 8; i++) {
      this.inputs.push(`/srv/jobs/input-${i}`);
      onDisk(this.init, this.inputs[i], this.size(1 / 64));
    }

    this.journald = m.spawn({ name: 'systemd-journal', cpu: 0, oom_score_adj: -250 });
    this.journal.fd = this.journald.open(
      '/var/log/journal/system.journal',
      O_CREAT | O_WRONLY | O_APPEND,
      0o640,
    );

    this.nginx = m.spawn({ name: 'nginx', cpu: 1 % cpus, uid: 33 });
    this.accessLog = this.nginx.open('/var/log/nginx/access.log', O_CREAT | O_WRONLY | O_APPEND, 0o640);

    this.postgres = m.spawn({ name: 'postgres', cpu: 2 % cpus, uid: 999, oom_score_adj: -900 });
    const pgp = this.postgres;
    const pg = this.pg;
    const dbSize = this.size(1 / 4);
    onDisk(pgp, '/var/lib/postgresql/data/base/16384', dbSize);
    pg.db = pgp.open('/var/lib/postgresql/data/base/16384', O_RDWR);
    pg.dbBlocks = Math.floor(dbSize / (8 * KiB));
    const sbSize = this.size(1 / 16, 8 * KiB);
    pg.sb = pgp.mmap(0, sbSize, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
    pg.sbSlots = Math.floor(sbSize / (8 * KiB));
    this.wal_switch();

    this.slapd = m.spawn({ name: 'slapd', cpu: 3 % cpus, uid: 389 });
    onDisk(this.slapd, '/var/lib/ldap/data.mdb', this.size(1 / 32));
    const fd = this.slapd.open('/var/lib/ldap/data.mdb', O_RDWR);
    this.ldap.pages = this.size(1 / 32) / PAGE_SIZE;
    this.ldap.base = this.slapd.mmap(
      0,
      this.ldap.pages * PAGE_SIZE,
      PROT_READ | PROT_WRITE,
      MAP_SHARED,
      fd,
      0,
    );
    this.slapd.close(fd);

    // The RDMA server needs no CAP_IPC_LOCK: its unit sets LimitMEMLOCK=infinity.
    this.rdma = m.spawn({
      name: 'rdma-server',
      cpu: rand.below(cpus),
      uid: 1000,
      rlimits: { memlock: Infinity },
    });
    for (let i = 0; i < 16; i++) this.register();
  }

  /** The RDMA server registers a new buffer: allocate it, fault it in, pin it. */
  private register(): void {
    const p = this.rdma;
    const len = this.size(1 / 512);
    this.act(p, () => {
      const addr = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      this.touch(p, addr, len);
      this.mrs.push({ addr, umem: p.ib_umem_get(addr, len, true) });
    });
  }

  /** The start of an hour: jobs come and go, caches churn, some services do their hourly work. */
  private hourly(hour: number): void {
    const m = this.m;
    const rand = this.rand;
    const cpus = m.mm.nr_cpus;
    // Network traffic: one hour in five is a burst, with slow readers.
    this.burst = rand.next() < 0.2 ? 8 : 1;
    // Some jobs finish (or were killed); two new ones start.
    for (let i = this.jobs.length - 1; i >= 0; i--) {
      const job = this.jobs[i];
      if (job.p.exited || rand.next() < 0.15) {
        job.p.exit();
        if (job.bpf) m.kernel.vfree(job.bpf, { cpu: job.p.cpu });
        this.jobs.splice(i, 1);
      }
    }
    for (let i = 0; i < 2; i++) this.job(hour, i);
    // Path lookups cache dentries; some are released (unused, on the LRU for the shrinker).
    for (let i = 0; i < 2000; i++) {
      const d = m.kernel.d_alloc(GFP_KERNEL, { cpu: rand.below(cpus) });
      if (d) this.dentries.push(d);
    }
    for (let i = this.dentries.length - 1; i >= 0; i--) {
      if (rand.next() < 0.3) {
        m.kernel.dput(this.dentries[i]);
        this.dentries.splice(i, 1);
      }
    }
    // The firewall reloads its rules: a new table, then the old one goes.
    const table = m.kernel.vmalloc(512 * KiB, GFP_KERNEL, {
      caller: 'xt_alloc_table_info',
      cpu: rand.below(cpus),
    });
    if (this.firewall) m.kernel.vfree(this.firewall);
    this.firewall = table;
    // At 09:00 an administrator loads a module.
    if (hour === 9) m.kernel.vmalloc(2 * MiB, GFP_KERNEL, { caller: 'load_module' });
    // Postgres: a checkpoint every hour, a parallel report query every three.
    this.act(this.postgres, () => this.postgres.fsync(this.pg.db));
    if (hour % 3 === 1) this.report_query(hour);
    // RDMA clients come and go: two buffers deregistered and freed, two new ones registered.
    for (let i = 0; i < 2 && this.mrs.length; i++) {
      const [mr] = this.mrs.splice(rand.below(this.mrs.length), 1);
      this.act(this.rdma, () => {
        this.rdma.ib_umem_release(mr.umem);
        this.rdma.munmap(mr.addr, mr.umem.pages.length * PAGE_SIZE);
      });
    }
    for (let i = 0; i < 2; i++) this.register();
    // 02:00: the nightly backup.
    if (hour === 2) this.backup();
  }

  /** A batch job: libc mapped, an input read, anonymous memory grown and mostly given back, output written. */
  private job(hour: number, i: number): void {
    const m = this.m;
    const rand = this.rand;
    const p = m.spawn({ name: `job${hour}.${i}`, cpu: rand.below(m.mm.nr_cpus) });
    this.jobsStarted++;
    const bpf = m.kernel.vmalloc(4 * PAGE_SIZE, GFP_KERNEL, {
      caller: 'bpf_prog_alloc_no_stats',
      cpu: p.cpu,
    });
    this.jobs.push({ p, bpf });
    const size = Math.ceil((this.ram * (0.3 + rand.next())) / 12 / PAGE_SIZE) * PAGE_SIZE;
    this.act(p, () => {
      const lib = p.open('/usr/lib/x86_64-linux-gnu/libc.so.6', O_RDONLY);
      const text = p.mmap(0, 2 * MiB, PROT_READ | PROT_EXEC, MAP_PRIVATE, lib, 0);
      p.close(lib);
      p.touch(text, 2 * MiB);
      const input = p.open(this.inputs[rand.below(this.inputs.length)], O_RDONLY);
      while (p.read(input, MiB) > 0) {}
      p.close(input);
      const a = p.mmap(0, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      this.touch(p, a, size);
      // Like a malloc arena giving memory back: release most of it in small pieces, keeping
      // every fourth 64 KiB chunk, which stays scattered across the range.
      for (let off = 0; off + 64 * KiB <= size; off += 64 * KiB)
        if (rand.next() < 0.75) p.munmap(a + off, 64 * KiB);
      const output = p.open(`/srv/jobs/output-${hour}.${i}`, O_CREAT | O_WRONLY | O_TRUNC, 0o644);
      for (let n = 0; n < this.size(1 / 128) / MiB; n++) p.write(output, MiB);
      p.close(output);
      if (rand.next() < 0.3) {
        const child = p.fork();
        this.jobs.push({ p: child, bpf: 0 });
      }
    });
  }

  /** The NIC: packets arrive on every queue; buffers are recycled, queued on sockets, reposted. */
  private network(): void {
    const m = this.m;
    const rand = this.rand;
    const hold = this.burst > 1 ? 0.25 : 0.05;
    for (const q of this.rx) {
      const packets = 200 * this.burst;
      for (let i = 0; i < packets && q.posted.length; i++) {
        const pfn = q.posted.pop()!;
        // Most packets are consumed in NAPI and their buffer recycled at once; some wait on a
        // socket until the application reads them, a step or a few later.
        if (rand.next() < hold) q.held.push({ pfn, until: this.step + 1 + rand.below(3) });
        else m.kernel.page_pool_put_page(q.pool, pfn);
        const fresh = m.kernel.page_pool_alloc_pages(q.pool);
        if (fresh >= 0) q.posted.push(fresh);
      }
      // The application reads: the buffers come back from its CPU, through the pool's ring.
      let kept = 0;
      for (const h of q.held) {
        if (h.until <= this.step) m.kernel.page_pool_put_page(q.pool, h.pfn, { allow_direct: false });
        else q.held[kept++] = h;
      }
      q.held.length = kept;
      this.refill(q);
    }
  }

  /** Post buffers until the RX ring is full again (or the pool cannot get more). */
  private refill(q: RxQueue): void {
    while (q.posted.length < 256) {
      const pfn = this.m.kernel.page_pool_alloc_pages(q.pool);
      if (pfn < 0) return;
      q.posted.push(pfn);
    }
  }

  /** journald: 256 KiB of entries per step, synced every 5 minutes; rotation at 1/128 of RAM. */
  private journal_step(): void {
    const p = this.journald;
    const j = this.journal;
    this.act(p, () => {
      for (let i = 0; i < 4; i++) p.write(j.fd, 64 * KiB);
      p.fsync(j.fd);
      if (p.lseek(j.fd, 0, SEEK_CUR) < this.size(1 / 128, 8 * MiB)) return;
      // Rotate: archive this journal, start a new one, delete the oldest beyond four archives.
      p.close(j.fd);
      j.archived.push(
        j.n === 0 ? '/var/log/journal/system.journal' : `/var/log/journal/system@${j.n}.journal`,
      );
      j.n++;
      j.fd = p.open(`/var/log/journal/system@${j.n}.journal`, O_CREAT | O_WRONLY | O_APPEND, 0o640);
      if (j.archived.length > 4) p.unlink(j.archived.shift()!);
    });
  }

  /** nginx: 150 requests for static files (a hot set), the access log appended. */
  private nginx_step(): void {
    const p = this.nginx;
    this.act(p, () => {
      for (let i = 0; i < 150; i++) {
        const f = this.site[this.hot(this.site.length)];
        const fd = p.open(f.path, O_RDONLY);
        p.read(fd, f.size);
        p.close(fd);
        if (i % 32 === 31) p.write(this.accessLog, 4 * KiB);
      }
    });
  }

  /** postgres: random 8 KiB reads into shared_buffers, some writes, the WAL appended and fsynced. */
  private postgres_step(): void {
    const p = this.postgres;
    const pg = this.pg;
    this.act(p, () => {
      for (let i = 0; i < 300; i++) {
        const blk = this.hot(pg.dbBlocks);
        p.pread(pg.db, 8 * KiB, blk * 8 * KiB);
        const slot = Math.imul(blk, 0x9e3779b1) >>> 0;
        p.touch(pg.sb + (slot % pg.sbSlots) * 8 * KiB, 8 * KiB, { write: true });
      }
      for (let i = 0; i < 30; i++) p.pwrite(pg.db, 8 * KiB, this.hot(pg.dbBlocks) * 8 * KiB);
      for (let i = 0; i < 8; i++) p.write(pg.wal, 64 * KiB);
      p.fsync(pg.wal);
      if (p.lseek(pg.wal, 0, SEEK_CUR) >= 16 * MiB) this.wal_switch();
    });
  }

  /** The next 16 MiB WAL segment; the four before it are kept, older ones recycled away. */
  private wal_switch(): void {
    const p = this.postgres;
    const pg = this.pg;
    if (pg.wal >= 0) p.close(pg.wal);
    const path = `/var/lib/postgresql/data/pg_wal/${String(++pg.walSeg).padStart(24, '0')}`;
    pg.wal = p.open(path, O_CREAT | O_WRONLY, 0o600);
    pg.walSegs.push(path);
    if (pg.walSegs.length > 5) p.unlink(pg.walSegs.shift()!);
  }

  /** A parallel query: two workers share a /dev/shm segment and scan part of the table. */
  private report_query(hour: number): void {
    const p = this.postgres;
    const pg = this.pg;
    const path = `/dev/shm/PostgreSQL.${1000 + hour}`;
    const len = this.size(1 / 64);
    this.act(p, () => {
      const fd = p.open(path, O_CREAT | O_RDWR, 0o600);
      p.ftruncate(fd, len);
      const workers = [p.fork(), p.fork()];
      const scan = this.size(1 / 32);
      const from = this.rand.below(Math.max(1, pg.dbBlocks * 8 * KiB - scan));
      workers.forEach((w, k) => {
        this.act(w, () => {
          const a = w.mmap(0, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
          this.touch(w, a + (k * len) / 2, len / 2);
          for (let off = 0; off < scan / 2; off += MiB) w.pread(pg.db, MiB, from + (k * scan) / 2 + off);
          w.munmap(a, len);
        });
        w.exit();
      });
      p.close(fd);
      p.unlink(path);
    });
  }

  /** 02:00: tar streams the database into /backup, 64 MiB at a time at the disk's pace. */
  private backup(): void {
    const m = this.m;
    const tar = m.spawn({ name: 'tar', cpu: this.rand.below(m.mm.nr_cpus) });
    this.act(tar, () => {
      const src = tar.open('/var/lib/postgresql/data/base/16384', O_RDONLY);
      const dst = tar.open('/backup/base.tar', O_CREAT | O_WRONLY | O_TRUNC, 0o600);
      let sectors = m.mm.vm_events[PGPGIN];
      for (;;) {
        let n = 0;
        for (let i = 0; i < 64; i++) {
          const r = tar.read(src, MiB);
          if (!r) break;
          n += tar.write(dst, r);
        }
        if (!n) break;
        // The pace of the disk reads (100 MiB/s) for what was not cached (pgpgin: 512-byte
        // sectors); what was cached comes at once, faster than the flusher can write.
        const read = (m.mm.vm_events[PGPGIN] - sectors) * 512;
        sectors = m.mm.vm_events[PGPGIN];
        m.advance(Math.max(1e7, (read * 1e9) / (100 * MiB)));
      }
      tar.fsync(dst);
      tar.close(src);
      tar.close(dst);
    });
    tar.exit();
  }

  /** slapd: LMDB lookups and updates through its MAP_SHARED mapping. */
  private slapd_step(): void {
    const p = this.slapd;
    const l = this.ldap;
    this.act(p, () => {
      for (let i = 0; i < 200; i++)
        p.touch(l.base + this.hot(l.pages) * PAGE_SIZE, PAGE_SIZE, { write: i % 10 === 0 });
    });
  }
}
