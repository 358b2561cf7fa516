/**
 * Workload models (issue 7, docs/workloads.md): what a scenario phase's `workloads:` run. A model
 * is an object outside the machine (machines are structurally cloned and refuse closures) that
 * holds its processes by pid and the kernel objects it took, draws every random number from
 * machine.rand, and acts through syscalls and the in-kernel API:
 *
 *   const w = createWorkload(m, 'anon-churn', { processes: 4, rss: '64M' });
 *   w.step(m.now + 1e9);   // its activity up to that simulated time
 *   w.stop();              // release what it holds
 *
 * runWorkloads() steps every model of a phase in slices of simulated time, advancing the clock
 * between slices; same seed, same machine, same params → byte-identical results.
 */
import { readFileSync, statSync } from 'node:fs';
import { z } from 'zod';
import { ErrnoError } from '../lib/errno.ts';
import {
  __GFP_COMP,
  __GFP_NOWARN,
  __GFP_RETRY_MAYFAIL,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
} from '../mm/gfp.ts';
import type { PagePool } from '../mm/page_pool.ts';
import type { Machine } from '../sim/machine.ts';
import { FaultError, type Process, type Umem } from '../vm/process.ts';
import {
  MADV_DONTNEED,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  O_CREAT,
  O_RDONLY,
  O_WRONLY,
  PROT_READ,
  PROT_WRITE,
} from '../vm/uapi.ts';
import { type JsonlEvent, JsonlReplayer, parseJsonlTrace } from './jsonl_trace.ts';
import { isKmemTraceLine, KmemReplayer, type KmemTraceEvent, parseKmemTrace } from './kmem_trace.ts';
import { registerWorkloadModel } from './scenario.ts';
import { isStraceLine, parseStrace } from './strace.ts';
import { duration, shown, size } from './units.ts';

const PAGE = 4096;
const KiB = 1024;
const MiB = 1024 * KiB;
const RW = PROT_READ | PROT_WRITE;

/** A running workload. */
export interface WorkloadModel {
  /** The model's name in WORKLOAD_MODELS. */
  readonly model: string;
  /** Carry its activity forward to simulated time `until_ns` (the runner moves the clock). */
  step(until_ns: number): void;
  /** Release what it holds: exit its processes, give back buffers and pins. Idempotent. */
  stop(): void;
  /** What it did, for reports (counts, rates). */
  report(): Record<string, number>;
}

/** A bad `params` entry: the message is `params.<key>: <why>`. */
export class WorkloadParamError extends Error {
  constructor(
    readonly model: string,
    readonly param: string,
    readonly reason: string,
    /** Where the params are, e.g. `phases[0].workloads[1].` */
    readonly where = '',
  ) {
    super(`${where}params.${param}: ${reason}`);
    this.name = 'WorkloadParamError';
  }
}

// ---------------------------------------------------------------------------------------------
// Parameter types: the messages match the scenario file's (src/workload/scenario.ts).

const count = (min = 0) =>
  z.unknown().transform((v, ctx) => {
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is not a whole number ≥ ${min}` });
      return z.NEVER;
    }
    return v;
  });

const real = (min: number, max: number) =>
  z.unknown().transform((v, ctx) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is not a number in [${min}, ${max}]` });
      return z.NEVER;
    }
    return v;
  });

/** Validate `params` against `shape` (every key optional, defaults applied); one message. */
function parseParams<S extends Record<string, z.ZodType>>(
  model: string,
  shape: S,
  defaults: { [K in keyof S]: unknown },
  params: Record<string, unknown>,
): { [K in keyof S]: z.output<S[K]> } {
  for (const key of Object.keys(params))
    if (!Object.hasOwn(shape, key))
      throw new WorkloadParamError(
        model,
        key,
        `unknown parameter of ${model} (known: ${Object.keys(shape).join(', ')})`,
      );
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(shape)) {
    const r = shape[key].safeParse(params[key] ?? defaults[key]);
    if (!r.success) throw new WorkloadParamError(model, key, r.error.issues[0].message);
    out[key] = r.data;
  }
  return out as { [K in keyof S]: z.output<S[K]> };
}

// ---------------------------------------------------------------------------------------------
// Shared helpers

/** Run `fn`; false when it failed for want of memory or its process was killed (not a bug). */
function act(fn: () => void): boolean {
  try {
    fn();
    return true;
  } catch (e) {
    if (e instanceof FaultError && e.signal !== 'SIGSEGV') return false;
    if (e instanceof ErrnoError && ['ENOMEM', 'ESRCH', 'ENOSPC', 'EAGAIN'].includes(e.code)) return false;
    throw e;
  }
}

/** A standard normal deviate (Box–Muller) from the machine's PRNG. */
function gauss(m: Machine): number {
  const u = 1 - m.rand.next(); // (0, 1]: log(0) would be -Infinity
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * m.rand.next());
}

/** A whole number of pages ≥ 1 page. */
const pages = (bytes: number): number => Math.max(PAGE, Math.floor(bytes / PAGE) * PAGE);

/** Fault in [addr, addr + len) in 4 MiB pieces (a page-fault loop); false if it ran out. */
function faultIn(p: Process, addr: number, len: number): boolean {
  for (let off = 0; off < len; off += 4 * MiB)
    if (!act(() => p.touch(addr + off, Math.min(4 * MiB, len - off), { write: true }))) return false;
  return true;
}

// ---------------------------------------------------------------------------------------------
// anon-churn

const anonShape = {
  processes: count(1),
  rss: size,
  rss_sigma: real(0, 3),
  lifetime: duration,
  churn: real(0, 1),
};

/** anon-churn's params, validated, defaults applied (also checked when a scenario is parsed). */
function anonChurnParams(params: Record<string, unknown>) {
  return parseParams(
    'anon-churn',
    anonShape,
    { processes: 4, rss: '64M', rss_sigma: 0.7, lifetime: '10min', churn: 0.05 },
    params,
  );
}

/**
 * Processes that come and go: each maps and faults in an anonymous RSS drawn from a lognormal
 * distribution around `rss`, churns a share of it each second (free() returning memory with
 * MADV_DONTNEED, malloc() faulting it back elsewhere), and exits after a lifetime drawn from
 * the Pareto tail of Harchol-Balter & Downey (P[L > t] ∝ 1/t), when another takes its place.
 */
class AnonChurn implements WorkloadModel {
  readonly model = 'anon-churn';
  private readonly p: ReturnType<typeof anonChurnParams>;
  /** `owed`: pieces of churn due but not yet done (a low rate adds up over several slices). */
  private live: Array<{ pid: number; addr: number; len: number; until: number; owed: number }> = [];
  private last: number;
  private readonly stats = { spawned: 0, exited: 0, failed: 0, churned_bytes: 0 };

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = anonChurnParams(params);
    this.last = m.now;
  }

  /** Pareto(α = 1) with median `lifetime` (x_m = median / 2), capped at 100 medians. */
  private lifetime(): number {
    const xm = this.p.lifetime / 2;
    return Math.min(100 * this.p.lifetime, xm / (1 - this.m.rand.next()));
  }

  /** Start a process and fault in its RSS; false if not even the process could be had. */
  private spawnOne(): boolean {
    const m = this.m;
    const len = pages(this.p.rss * Math.exp(this.p.rss_sigma * gauss(m)));
    let p: Process | undefined;
    if (!act(() => (p = this.spawnProcess())) || !p) {
      this.stats.failed++;
      return false;
    }
    this.stats.spawned++;
    let addr = 0;
    const proc = p;
    const ok = act(() => {
      addr = proc.mmap(0, len, RW, MAP_PRIVATE | MAP_ANONYMOUS);
    });
    if (!ok || !faultIn(proc, addr, len)) this.stats.failed++;
    this.live.push({ pid: proc.pid, addr, len, until: m.now + this.lifetime(), owed: 0 });
    return true;
  }

  private spawnProcess(): Process {
    const m = this.m;
    return m.spawn({
      name: 'anon-churn',
      uid: 2000 + (this.stats.spawned % 100),
      cpu: this.stats.spawned % m.mm.nr_cpus,
    });
  }

  step(until: number): void {
    const m = this.m;
    const dt = Math.max(0, until - this.last);
    this.last = until;
    // Exits first, so their memory is free for the processes that replace them.
    this.live = this.live.filter((j) => {
      const p = m.process(j.pid);
      if (p && j.until > until) return true;
      p?.exit();
      this.stats.exited++;
      return false;
    });
    while (this.live.length < this.p.processes) if (!this.spawnOne()) break;
    // Churn: `churn` of each RSS per second, in 64 KiB pieces (a malloc arena's trim unit).
    for (const j of this.live) {
      const p = m.process(j.pid);
      if (!p || !j.addr) continue;
      const chunk = 64 * KiB;
      // Fractions carry over: 0.01 %/s of 128 MiB is a piece every 5 s, not none.
      j.owed += (j.len * this.p.churn * dt) / 1e9 / chunk;
      const n = Math.floor(j.owed);
      j.owed -= n;
      const slots = Math.floor(j.len / chunk);
      for (let i = 0; i < n && slots > 0; i++) {
        const off = m.rand.below(slots) * chunk;
        act(() => p.madvise(j.addr + off, chunk, MADV_DONTNEED));
        const re = m.rand.below(slots) * chunk;
        act(() => p.touch(j.addr + re, chunk, { write: true }));
        this.stats.churned_bytes += chunk;
      }
    }
  }

  stop(): void {
    for (const j of this.live) this.m.process(j.pid)?.exit();
    this.live = [];
  }

  report(): Record<string, number> {
    return { ...this.stats, running: this.live.length };
  }
}

// ---------------------------------------------------------------------------------------------
// page-cache

const cacheShape = {
  working_set: size,
  read_mb_s: real(0, 1e5),
  reread: real(0, 1),
  stream_size: size,
  io_size: size,
};

/** page-cache's params, validated, defaults applied (also checked when a scenario is parsed). */
function pageCacheParams(params: Record<string, unknown>) {
  const p = parseParams(
    'page-cache',
    cacheShape,
    { working_set: '64M', read_mb_s: 50, reread: 0.8, stream_size: '1G', io_size: '128K' },
    params,
  );
  if (p.io_size < PAGE) throw new WorkloadParamError('page-cache', 'io_size', 'must be at least 4K');
  return p;
}

/**
 * A reader of files: `reread` of its bytes are random re-reads of a hot working set (a database
 * or web server's files), the rest a sequential stream through a large file (a backup, a log
 * scan) that fills the page cache with pages read once, until reclaim trims them.
 */
class PageCache implements WorkloadModel {
  readonly model = 'page-cache';
  private readonly p: ReturnType<typeof pageCacheParams>;
  private readonly pid: number;
  private ws = -1;
  private stream = -1;
  private last: number;
  private readonly stats = { read_bytes: 0, reread_bytes: 0, stream_bytes: 0, failed: 0 };

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = pageCacheParams(params);
    const p = m.spawn({ name: 'reader', uid: 33, cpu: 1 % m.mm.nr_cpus });
    this.pid = p.pid;
    // Files of the given sizes (sparse: their pages come into the cache as they are read).
    const make = (path: string, len: number): number => {
      const fd = p.open(path, O_CREAT | O_WRONLY, 0o644);
      p.ftruncate(fd, len);
      p.close(fd);
      return p.open(path, O_RDONLY);
    };
    this.ws = make(`/srv/ws-${p.pid}`, pages(this.p.working_set));
    this.stream = make(`/srv/stream-${p.pid}`, pages(this.p.stream_size));
    this.last = m.now;
  }

  step(until: number): void {
    const m = this.m;
    const p = m.process(this.pid);
    const dt = Math.max(0, until - this.last);
    this.last = until;
    if (!p) return;
    const io = this.p.io_size;
    const ios = Math.round((this.p.read_mb_s * MiB * dt) / 1e9 / io);
    const wsSlots = Math.max(1, Math.floor(pages(this.p.working_set) / io));
    for (let i = 0; i < ios; i++) {
      let got = 0;
      const hot = m.rand.next() < this.p.reread;
      const ok = act(() => {
        if (hot) got = p.pread(this.ws, io, m.rand.below(wsSlots) * io);
        else {
          got = p.read(this.stream, io);
          // At the end of the stream, start over (the next night's backup).
          if (!got) {
            p.lseek(this.stream, 0, 0);
            got = p.read(this.stream, io);
          }
        }
      });
      if (!ok) this.stats.failed++;
      this.stats.read_bytes += got;
      if (hot) this.stats.reread_bytes += got;
      else this.stats.stream_bytes += got;
    }
  }

  /** The reader exits; the files' pages stay in the page cache, reclaimable, as they would. */
  stop(): void {
    this.m.process(this.pid)?.exit();
  }

  report(): Record<string, number> {
    return { ...this.stats };
  }
}

// ---------------------------------------------------------------------------------------------
// net-buffers

const netShape = {
  queues: count(0),
  order: count(0),
  ring: count(1),
  packets_per_s: real(0, 1e7),
  hold: real(0, 1),
  hold_time: duration,
};

/** net-buffers's params, validated, defaults applied (also checked when a scenario is parsed). */
function netBuffersParams(params: Record<string, unknown>) {
  const p = parseParams(
    'net-buffers',
    netShape,
    { queues: 0, order: 3, ring: 256, packets_per_s: 2000, hold: 0.05, hold_time: '50ms' },
    params,
  );
  if (p.order > 10) throw new WorkloadParamError('net-buffers', 'order', `${p.order} is not 0..10`);
  return p;
}

/**
 * A NIC's receive queues, one page_pool each: the driver keeps `ring` buffers posted; each packet
 * consumes one, which is recycled at once or, for a `hold` share, waits on a socket for
 * `hold_time` and comes back through the pool's ring from the reader's CPU. The pool's pages are
 * unmovable (GFP_ATOMIC), order 0 or order 3 (drivers using 32 KiB buffers).
 */
class NetBuffers implements WorkloadModel {
  readonly model = 'net-buffers';
  private readonly p: ReturnType<typeof netBuffersParams>;
  private readonly rx: Array<{
    pool: PagePool;
    posted: number[];
    held: Array<{ pfn: number; until: number }>;
  }> = [];
  private last: number;
  private stopped = false;
  private readonly stats = { packets: 0, alloc_failed: 0 };

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = netBuffersParams(params);
    const queues = this.p.queues || m.mm.nr_cpus;
    for (let q = 0; q < queues; q++) {
      const pool = m.kernel.page_pool_create({
        order: this.p.order,
        pool_size: this.p.ring,
        cpu: q % m.mm.nr_cpus,
      });
      if (pool) this.rx.push({ pool, posted: [], held: [] });
    }
    for (const q of this.rx) this.refill(q);
    this.last = m.now;
  }

  private refill(q: (typeof this.rx)[number]): void {
    while (q.posted.length < this.p.ring) {
      const pfn = this.m.kernel.page_pool_alloc_pages(q.pool);
      if (pfn < 0) {
        this.stats.alloc_failed++;
        return;
      }
      q.posted.push(pfn);
    }
  }

  step(until: number): void {
    if (this.stopped) return;
    const m = this.m;
    const dt = Math.max(0, until - this.last);
    const t0 = this.last;
    this.last = until;
    const packets = Math.round((this.p.packets_per_s * dt) / 1e9);
    for (const q of this.rx) {
      for (let i = 0; i < packets && q.posted.length; i++) {
        const pfn = q.posted.pop() as number;
        // The packet's arrival time within the slice, so holds end spread over the next slices.
        const at = t0 + Math.floor((dt * i) / Math.max(1, packets));
        if (m.rand.next() < this.p.hold) q.held.push({ pfn, until: at + this.p.hold_time });
        else m.kernel.page_pool_put_page(q.pool, pfn);
        this.stats.packets++;
        const fresh = m.kernel.page_pool_alloc_pages(q.pool);
        if (fresh >= 0) q.posted.push(fresh);
        else this.stats.alloc_failed++;
      }
      let kept = 0;
      for (const h of q.held) {
        if (h.until <= until) m.kernel.page_pool_put_page(q.pool, h.pfn, { allow_direct: false });
        else q.held[kept++] = h;
      }
      q.held.length = kept;
      this.refill(q);
    }
  }

  /** Pages the pools hold from the page allocator (posted, held, cached). */
  inflightPages(): number {
    return this.rx.reduce((n, q) => n + (q.pool.inflight << q.pool.order), 0);
  }

  /** The driver is unloaded: every buffer goes back and the pools are destroyed. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    const k = this.m.kernel;
    for (const q of this.rx) {
      for (const pfn of q.posted) k.page_pool_put_page(q.pool, pfn, { allow_direct: false });
      for (const h of q.held) k.page_pool_put_page(q.pool, h.pfn, { allow_direct: false });
      q.posted = [];
      q.held = [];
      k.page_pool_destroy(q.pool);
    }
  }

  report(): Record<string, number> {
    return { ...this.stats, queues: this.rx.length, inflight_pages: this.stopped ? 0 : this.inflightPages() };
  }
}

// ---------------------------------------------------------------------------------------------
// stress-highalloc

const GFPS: Record<string, number> = {
  GFP_KERNEL: GFP_KERNEL | __GFP_COMP | __GFP_NOWARN,
  GFP_KERNEL_RETRY: GFP_KERNEL | __GFP_RETRY_MAYFAIL | __GFP_COMP | __GFP_NOWARN,
  GFP_HIGHUSER_MOVABLE: GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOWARN,
};

const highShape = {
  fill: real(0, 0.95),
  file_share: real(0, 1),
  order: count(1),
  attempts: count(0),
  interval: duration,
  gfp: z.unknown().transform((v, ctx) => {
    if (typeof v !== 'string' || !Object.hasOwn(GFPS, v)) {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is not one of ${Object.keys(GFPS).join(', ')}` });
      return z.NEVER;
    }
    return v;
  }),
};

/** stress-highalloc's params, validated, defaults applied (also checked when a scenario is parsed). */
function stressHighallocParams(params: Record<string, unknown>) {
  const p = parseParams(
    'stress-highalloc',
    highShape,
    { fill: 0.6, file_share: 0.5, order: 9, attempts: 0, interval: '100ms', gfp: 'GFP_KERNEL' },
    params,
  );
  if (p.order > 10) throw new WorkloadParamError('stress-highalloc', 'order', `${p.order} is not 1..10`);
  return p;
}

/**
 * mmtests' stress-highalloc, in the manner of its "fill memory, then allocate" runs: a load fills
 * `fill` of RAM (anonymous memory, and file pages for `file_share` of it), then a kernel caller
 * tries `attempts` allocations of 2^order pages, one every `interval`, keeping those it gets;
 * the success rate is the share it got.
 */
class StressHighalloc implements WorkloadModel {
  readonly model = 'stress-highalloc';
  private readonly p: ReturnType<typeof stressHighallocParams>;
  private pid = 0;
  private filled = false;
  private next: number;
  private tried = 0;
  private succeeded = 0;
  private got: number[] = [];
  private readonly attempts: number;

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = stressHighallocParams(params);
    // By default as many blocks as would make up 90% of RAM (mmtests asks for most of memory).
    this.attempts =
      this.p.attempts || Math.max(1, Math.floor((0.9 * m.mm.totalram_pages) / (1 << this.p.order)));
    this.next = m.now;
  }

  private fillMemory(): void {
    const m = this.m;
    const ram = m.mm.totalram_pages * PAGE;
    const p = m.spawn({ name: 'highalloc-load', uid: 1000, cpu: 0 });
    this.pid = p.pid;
    const file = pages(ram * this.p.fill * this.p.file_share);
    const anon = pages(ram * this.p.fill - file);
    let addr = 0;
    if (act(() => (addr = p.mmap(0, anon, RW, MAP_PRIVATE | MAP_ANONYMOUS)))) faultIn(p, addr, anon);
    const path = `/srv/highalloc-${p.pid}`;
    const fd = p.open(path, O_CREAT | O_WRONLY, 0o644);
    p.ftruncate(fd, file);
    p.close(fd);
    const rd = p.open(path, O_RDONLY);
    for (let n = 0; n < file; ) {
      let got = 0;
      if (!act(() => (got = p.read(rd, MiB))) || !got) break;
      n += got;
    }
    p.close(rd);
    this.filled = true;
  }

  step(until: number): void {
    if (!this.filled) this.fillMemory();
    const gfp = GFPS[this.p.gfp];
    while (this.tried < this.attempts && this.next <= until) {
      const pfn = this.m.kernel.alloc_pages(gfp, this.p.order, { cpu: this.tried % this.m.mm.nr_cpus });
      this.tried++;
      if (pfn >= 0) {
        this.got.push(pfn);
        this.succeeded++;
      }
      this.next += this.p.interval;
    }
  }

  /** Share of the attempts so far that succeeded (0 before any). */
  get successRate(): number {
    return this.tried ? this.succeeded / this.tried : 0;
  }

  stop(): void {
    for (const pfn of this.got) this.m.kernel.free_pages(pfn, this.p.order);
    this.got = [];
    this.m.process(this.pid)?.exit();
  }

  report(): Record<string, number> {
    return { attempts: this.tried, planned: this.attempts, success_rate: this.successRate };
  }
}

// ---------------------------------------------------------------------------------------------
// slab-churn

const slabShape = { files_per_s: real(0, 1e6), lifetime: duration, keep: real(0, 1) };

/** slab-churn's params, validated, defaults applied (also checked when a scenario is parsed). */
function slabChurnParams(params: Record<string, unknown>) {
  return parseParams('slab-churn', slabShape, { files_per_s: 500, lifetime: '30s', keep: 0.2 }, params);
}

/**
 * Files created and deleted (a build, a mail spool, a cache directory): each creation allocates a
 * dentry and an inode (reclaimable slab); at the end of its lifetime the file is unlinked
 * (d_drop + dput frees both), except a `keep` share that is only closed and stays cached on the
 * LRU until the shrinkers trim it. Lifetimes are exponential (assumed).
 */
class SlabChurn implements WorkloadModel {
  readonly model = 'slab-churn';
  private readonly p: ReturnType<typeof slabChurnParams>;
  private live: Array<{ dentry: number; until: number }> = [];
  private last: number;
  private readonly stats = { created: 0, deleted: 0, cached: 0, failed: 0 };

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = slabChurnParams(params);
    this.last = m.now;
  }

  step(until: number): void {
    const m = this.m;
    const k = m.kernel;
    const dt = Math.max(0, until - this.last);
    const t0 = this.last;
    this.last = until;
    const n = Math.round((this.p.files_per_s * dt) / 1e9);
    for (let i = 0; i < n; i++) {
      const cpu = m.rand.below(m.mm.nr_cpus);
      const d = k.d_alloc(GFP_KERNEL, { cpu });
      const ino = d ? k.new_inode(GFP_KERNEL, { cpu }) : 0;
      if (!d || !ino) {
        if (d) k.dput(d, { cpu });
        this.stats.failed++;
        continue;
      }
      k.d_instantiate(d, ino);
      const at = t0 + Math.floor((dt * i) / Math.max(1, n));
      this.live.push({ dentry: d, until: at - this.p.lifetime * Math.log(1 - m.rand.next()) });
      this.stats.created++;
    }
    this.live = this.live.filter((f) => {
      if (f.until > until) return true;
      this.release(f.dentry);
      return false;
    });
  }

  private release(d: number): void {
    const k = this.m.kernel;
    if (this.m.rand.next() < this.p.keep) this.stats.cached++;
    else {
      k.d_drop(d);
      this.stats.deleted++;
    }
    k.dput(d);
  }

  stop(): void {
    for (const f of this.live) this.release(f.dentry);
    this.live = [];
  }

  report(): Record<string, number> {
    return { ...this.stats, open: this.live.length };
  }
}

// ---------------------------------------------------------------------------------------------
// longterm-pin

const pinShape = { regions: count(1), region_size: size, reregister: duration };

/** longterm-pin's params, validated, defaults applied (also checked when a scenario is parsed). */
function longtermPinParams(params: Record<string, unknown>) {
  return parseParams(
    'longterm-pin',
    pinShape,
    { regions: 4, region_size: '8M', reregister: '10min' },
    params,
  );
}

/**
 * An RDMA service: registers `regions` buffers of `region_size` with ib_umem_get (FOLL_LONGTERM
 * pins: the pages cannot migrate while registered), and every `reregister` drops one and
 * registers a fresh one (clients coming and going), scattering pinned pages over time.
 */
class LongtermPin implements WorkloadModel {
  readonly model = 'longterm-pin';
  private readonly p: ReturnType<typeof longtermPinParams>;
  private readonly pid: number;
  private mrs: Array<{ addr: number; umem: Umem }> = [];
  private next: number;
  private readonly stats = { registered: 0, released: 0, failed: 0 };

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = longtermPinParams(params);
    this.pid = m.spawn({
      name: 'rdma-server',
      uid: 1000,
      cpu: 0,
      rlimits: { memlock: Number.POSITIVE_INFINITY },
    }).pid;
    this.next = m.now + this.p.reregister;
    for (let i = 0; i < this.p.regions; i++) this.register();
  }

  private register(): void {
    const p = this.m.process(this.pid);
    if (!p) return;
    const len = pages(this.p.region_size);
    let addr = 0;
    let umem: Umem | undefined;
    const ok = act(() => {
      addr = p.mmap(0, len, RW, MAP_PRIVATE | MAP_ANONYMOUS);
      p.touch(addr, len, { write: true });
      umem = p.ib_umem_get(addr, len, true);
    });
    if (ok && umem) {
      this.mrs.push({ addr, umem });
      this.stats.registered++;
    } else this.stats.failed++;
  }

  step(until: number): void {
    const p = this.m.process(this.pid);
    while (p && this.p.reregister > 0 && this.next <= until) {
      this.next += this.p.reregister;
      if (this.mrs.length) {
        const mr = this.mrs.splice(this.m.rand.below(this.mrs.length), 1)[0];
        p.ib_umem_release(mr.umem);
        act(() => p.munmap(mr.addr, pages(this.p.region_size)));
        this.stats.released++;
      }
      this.register();
    }
  }

  /** The service exits: its registrations are released with its address space. */
  stop(): void {
    this.m.process(this.pid)?.exit();
    this.mrs = [];
  }

  report(): Record<string, number> {
    return { ...this.stats, pinned_pages: this.mrs.reduce((n, r) => n + r.umem.pages.length, 0) };
  }
}

// ---------------------------------------------------------------------------------------------
// fork-server

const forkShape = {
  rss: size,
  forks_per_s: real(0, 1e4),
  lifetime: duration,
  cow: real(0, 1),
  max_children: count(1),
};

/** fork-server's params, validated, defaults applied (also checked when a scenario is parsed). */
function forkServerParams(params: Record<string, unknown>) {
  return parseParams(
    'fork-server',
    forkShape,
    { rss: '128M', forks_per_s: 5, lifetime: '2s', cow: 0.1, max_children: 32 },
    params,
  );
}

/**
 * A forking server (a pre-fork web server, a shell running scripts, Redis' BGSAVE): a parent
 * with `rss` of anonymous memory forks children at `forks_per_s`; each copies the parent's page
 * tables (unmovable page-table pages), writes `cow` of the memory (copy-on-write faults), and
 * exits after an exponential lifetime (assumed) around `lifetime`.
 */
class ForkServer implements WorkloadModel {
  readonly model = 'fork-server';
  private readonly p: ReturnType<typeof forkServerParams>;
  private readonly pid: number;
  private addr = 0;
  private len: number;
  private children: Array<{ pid: number; until: number }> = [];
  private last: number;
  private owed = 0;
  private readonly stats = { forked: 0, failed: 0, cow_bytes: 0 };

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = forkServerParams(params);
    const p = m.spawn({ name: 'server', uid: 33, cpu: 0 });
    this.pid = p.pid;
    this.len = pages(this.p.rss);
    if (act(() => (this.addr = p.mmap(0, this.len, RW, MAP_PRIVATE | MAP_ANONYMOUS))))
      faultIn(p, this.addr, this.len);
    this.last = m.now;
  }

  step(until: number): void {
    const m = this.m;
    const dt = Math.max(0, until - this.last);
    this.last = until;
    this.children = this.children.filter((c) => {
      const p = m.process(c.pid);
      if (p && c.until > until) return true;
      p?.exit();
      return false;
    });
    const parent = m.process(this.pid);
    if (!parent || !this.addr) return;
    // Fractional forks carry over, so a low rate still forks on time.
    this.owed += (this.p.forks_per_s * dt) / 1e9;
    for (; this.owed >= 1; this.owed--) {
      if (this.children.length >= this.p.max_children) continue;
      let child: Process | undefined;
      if (!act(() => (child = parent.fork())) || !child) {
        this.stats.failed++;
        continue;
      }
      this.stats.forked++;
      const cow = pages(this.len * this.p.cow);
      const off = Math.floor(m.rand.below(Math.max(1, (this.len - cow) / PAGE + 1))) * PAGE;
      const c = child;
      if (act(() => c.touch(this.addr + off, cow, { write: true }))) this.stats.cow_bytes += cow;
      this.children.push({ pid: c.pid, until: m.now - this.p.lifetime * Math.log(1 - m.rand.next()) });
    }
  }

  stop(): void {
    for (const c of this.children) this.m.process(c.pid)?.exit();
    this.children = [];
    this.m.process(this.pid)?.exit();
  }

  report(): Record<string, number> {
    return { ...this.stats, children: this.children.length };
  }
}

// ---------------------------------------------------------------------------------------------
// page-tables

const ptShape = { processes: count(1), vsize: size, stride: size };

/** page-tables's params, validated, defaults applied (also checked when a scenario is parsed). */
function pageTablesParams(params: Record<string, unknown>) {
  const p = parseParams('page-tables', ptShape, { processes: 1, vsize: '8G', stride: '2M' }, params);
  if (p.stride < PAGE) throw new WorkloadParamError('page-tables', 'stride', 'must be at least 4K');
  return p;
}

/**
 * Sparse mappings (a JVM or Go heap reservation, an address-sanitizer shadow, a sparse hash
 * table): each process reserves `vsize` of address space and touches one page every `stride`,
 * so each touch costs a page-table page (unmovable) for a page of data. THP is disabled on the
 * mapping (MADV_NOHUGEPAGE): otherwise each touch would fault in a 2 MiB page.
 */
class PageTables implements WorkloadModel {
  readonly model = 'page-tables';
  private readonly p: ReturnType<typeof pageTablesParams>;
  private readonly pids: number[] = [];
  private readonly stats = { touched_pages: 0, failed: 0 };

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = pageTablesParams(params);
    const vsize = pages(this.p.vsize);
    for (let i = 0; i < this.p.processes; i++) {
      const p = m.spawn({ name: 'sparse', uid: 1000, cpu: i % m.mm.nr_cpus });
      this.pids.push(p.pid);
      let addr = 0;
      // MAP_NORESERVE, as such reservations are made: the heuristic overcommit check would refuse
      // a mapping larger than RAM + swap.
      if (!act(() => (addr = p.mmap(0, vsize, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)))) {
        this.stats.failed++;
        continue;
      }
      act(() => p.madvise(addr, vsize, MADV_NOHUGEPAGE));
      for (let off = 0; off < vsize; off += this.p.stride) {
        if (!act(() => p.touch(addr + off, PAGE, { write: true }))) {
          this.stats.failed++;
          break;
        }
        this.stats.touched_pages++;
      }
    }
  }

  /** The mappings stay as they are: their cost is their footprint, not their activity. */
  step(_until: number): void {}

  stop(): void {
    for (const pid of this.pids) this.m.process(pid)?.exit();
  }

  report(): Record<string, number> {
    return { ...this.stats };
  }
}

// ---------------------------------------------------------------------------------------------
// trace-replay

const TRACE_FORMATS = ['auto', 'jsonl', 'strace', 'kmem'] as const;
type TraceFormat = Exclude<(typeof TRACE_FORMATS)[number], 'auto'>;

/** The most a trace file may hold: the parsers' own limit (64 MiB). */
const TRACE_MAX_BYTES = 64 << 20;

const oneOf = <T extends string>(values: readonly T[]) =>
  z.unknown().transform((v, ctx) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) {
      ctx.addIssue({ code: 'custom', message: `${shown(v)} is not one of ${values.join(', ')}` });
      return z.NEVER;
    }
    return v as T;
  });

const bool = z.unknown().transform((v, ctx) => {
  if (typeof v !== 'boolean') {
    ctx.addIssue({ code: 'custom', message: `expected true or false, got ${shown(v)}` });
    return z.NEVER;
  }
  return v;
});

const traceShape = {
  file: z.unknown().transform((v, ctx) => {
    if (typeof v !== 'string' || v === '') {
      ctx.addIssue({
        code: 'custom',
        message:
          v === undefined ? 'is required (the trace file to replay)' : `${shown(v)} is not a file path`,
      });
      return z.NEVER;
    }
    return v;
  }),
  format: oneOf(TRACE_FORMATS),
  speed: real(1e-6, 1e6),
  loop: bool,
  every: duration,
  delay: duration,
  file_mmaps: oneOf(['anon', 'skip'] as const),
  max_events: count(0),
};

/**
 * A trace's format from its first event line (comments and blank lines skipped): a JSON object
 * is JSONL, a tracefs or trace-cmd line is a kmem trace, a `[pid] time call(...)` line strace.
 * Undefined when none fits.
 */
export function detectTraceFormat(text: string): TraceFormat | undefined {
  let from = 0;
  for (let n = 0; n < 1000 && from < text.length; n++) {
    let to = text.indexOf('\n', from);
    if (to < 0) to = text.length;
    const line = text.slice(from, to).replace(/\r$/, '');
    from = to + 1;
    const t = line.trim();
    // tracefs's header names the tracer; JSONL comments start with # or // too.
    if (/^#\s*tracer:/.test(t)) return 'kmem';
    if (t === '' || t.startsWith('#') || t.startsWith('//')) continue;
    if (t.startsWith('{')) return 'jsonl';
    if (isKmemTraceLine(line)) return 'kmem';
    if (isStraceLine(line)) return 'strace';
    return undefined;
  }
  return undefined;
}

/** A trace read and parsed: syscall events (JSONL, strace) or kernel page events (kmem). */
type LoadedTrace =
  | { format: 'jsonl' | 'strace'; kind: 'syscalls'; events: JsonlEvent[]; t0: number; span: number }
  | { format: 'kmem'; kind: 'kmem'; events: KmemTraceEvent[]; t0: number; span: number };

/** Read and parse `path` as `format`; a problem is one WorkloadParamError on `file`. */
function loadTrace(path: string, format: (typeof TRACE_FORMATS)[number]): LoadedTrace {
  const fail = (why: string): never => {
    throw new WorkloadParamError('trace-replay', 'file', why);
  };
  let text = '';
  try {
    const st = statSync(path);
    if (!st.isFile()) fail(`'${path}' is not a file`);
    if (st.size > TRACE_MAX_BYTES)
      fail(`'${path}' is ${st.size} bytes, more than the limit of ${TRACE_MAX_BYTES}`);
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (e instanceof WorkloadParamError) throw e;
    fail(`cannot read '${path}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  const f = format === 'auto' ? detectTraceFormat(text) : format;
  if (!f)
    fail(`cannot tell the format of '${path}' from its first lines (give format: jsonl, strace or kmem)`);
  let loaded: LoadedTrace;
  try {
    if (f === 'kmem') {
      const events = parseKmemTrace(text, { source: path }).events;
      loaded = { format: f, kind: 'kmem', events, t0: 0, span: 0 };
    } else {
      const events =
        f === 'jsonl'
          ? parseJsonlTrace(text, { source: path }).events
          : parseStrace(text, { source: path }).events;
      loaded = { format: f as 'jsonl' | 'strace', kind: 'syscalls', events, t0: 0, span: 0 };
    }
  } catch (e) {
    return fail((e as Error).message);
  }
  const n = loaded.events.length;
  if (n === 0) fail(`'${path}' has no events to replay (read as ${f})`);
  const time = (i: number) =>
    loaded.kind === 'kmem' ? loaded.events[i].ts_ns : (loaded.events[i] as JsonlEvent).t;
  loaded.t0 = time(0);
  // Traces are in time order, but strace -f interleaves CPUs: take the latest, not the last.
  let last = loaded.t0;
  for (let i = 1; i < n; i++) last = Math.max(last, time(i));
  loaded.span = last - loaded.t0;
  return loaded;
}

/**
 * trace-replay's params, validated, defaults applied, and the trace read and parsed (also run
 * when a scenario is parsed, so a missing file or a bad trace line is reported against the
 * scenario's `file:` line).
 */
function traceReplayParams(params: Record<string, unknown>) {
  const p = parseParams(
    'trace-replay',
    traceShape,
    {
      file: undefined,
      format: 'auto',
      speed: 1,
      loop: false,
      every: 0,
      delay: 0,
      file_mmaps: 'anon',
      max_events: 0,
    },
    params,
  );
  const trace = loadTrace(p.file, p.format);
  if (p.loop && trace.span === 0 && p.every === 0)
    throw new WorkloadParamError(
      'trace-replay',
      'every',
      'is needed to loop a trace whose events all have the same time',
    );
  if (p.every > 0 && !p.loop)
    throw new WorkloadParamError('trace-replay', 'every', 'only applies with loop: true');
  return { ...p, trace };
}

/** A syscall or kmem replayer's counts as flat numbers, for report(). */
function replayCounts(r: JsonlReplayer | KmemReplayer): Record<string, number> {
  if (r instanceof KmemReplayer) {
    const k = r.result();
    return {
      replayed_allocs: k.replayed_allocs,
      replayed_frees: k.replayed_frees,
      failed_allocs: k.failed_allocs,
      kernel_failed_allocs: k.kernel_failed_allocs,
      unmatched_frees: k.unmatched_frees,
      order_mismatched_frees: k.order_mismatched_frees,
      batched_after_free: k.batched_after_free,
      implicit_frees: k.implicit_frees,
      kernel_extfrag: k.kernel_extfrag.length,
      model_extfrag: k.model_extfrag.length,
    };
  }
  const j = r.result();
  const out: Record<string, number> = {
    calls_ok: 0,
    model_errors: 0,
    traced_errors: 0,
    mismatched: 0,
    spawned: j.spawned,
    forked: j.forked,
    exited: j.exited,
    file_mmaps_as_anon: j.file_mmaps_as_anon,
    skipped_file_mmaps: j.skipped_file_mmaps,
    untranslated: j.untranslated,
    unmatched_frees: j.unmatched_frees,
  };
  for (const c of Object.values(j.ops)) {
    if (!c) continue;
    out.calls_ok += c.ok;
    out.model_errors += Object.values(c.model_errors).reduce((a, b) => a + b, 0);
    out.traced_errors += c.traced_errors;
    out.mismatched += c.mismatched;
  }
  return out;
}

/**
 * A recorded trace replayed on the clock while the phase's other models run: a JSONL trace or
 * an strace log (processes, mappings, faults, kernel blocks: jsonl_trace.ts) or a real kernel's
 * kmem tracepoints (page allocations and frees: kmem_trace.ts). Event i runs at
 * start + delay + (t_i - t_0) / speed of simulated time, in the step whose slice holds it, the
 * clock moved to it first (so kswapd and kcompactd run between events as they would have). With
 * `loop`, the trace starts over every `every` (back to back by default) once a pass has ended,
 * and what a pass left (processes, blocks) is released first, as the traced program exiting.
 */
class TraceReplay implements WorkloadModel {
  readonly model = 'trace-replay';
  private readonly p: ReturnType<typeof traceReplayParams>;
  private replayer: JsonlReplayer | KmemReplayer;
  private readonly n: number;
  private i = 0;
  /** Simulated time of the current pass's first event. */
  private passStart: number;
  private passes = 1;
  private done = false;
  private stopped = false;
  /** Counts of the passes already released. */
  private readonly earlier: Record<string, number> = {};
  private replayed = 0;

  constructor(
    private readonly m: Machine,
    params: Record<string, unknown>,
  ) {
    this.p = traceReplayParams(params);
    const t = this.p.trace;
    this.n = this.p.max_events ? Math.min(this.p.max_events, t.events.length) : t.events.length;
    this.passStart = m.now + this.p.delay;
    this.replayer = this.newReplayer();
  }

  private newReplayer(): JsonlReplayer | KmemReplayer {
    return this.p.trace.kind === 'kmem'
      ? new KmemReplayer(this.m)
      : new JsonlReplayer(this.m, { file_mmaps: this.p.file_mmaps });
  }

  /** Simulated time of event i of the current pass. */
  private at(i: number): number {
    const t = this.p.trace;
    const ts = t.kind === 'kmem' ? t.events[i].ts_ns : t.events[i].t;
    return this.passStart + Math.round((ts - t.t0) / this.p.speed);
  }

  /** The pass is over: release what it left, keep its counts, and schedule the next. */
  private nextPass(): void {
    this.replayer.release();
    for (const [k, v] of Object.entries(replayCounts(this.replayer)))
      this.earlier[k] = (this.earlier[k] ?? 0) + v;
    const length = Math.round(this.p.trace.span / this.p.speed);
    this.passStart += Math.max(1, this.p.every, length);
    this.replayer = this.newReplayer();
    this.i = 0;
    this.passes++;
  }

  step(until: number): void {
    if (this.stopped || this.done) return;
    const m = this.m;
    const t = this.p.trace;
    if (this.replayer instanceof KmemReplayer) this.replayer.attach();
    try {
      for (;;) {
        if (this.i >= this.n) {
          if (!this.p.loop) {
            this.done = true;
            break;
          }
          this.nextPass();
          if (this.replayer instanceof KmemReplayer) this.replayer.attach();
        }
        const at = this.at(this.i);
        if (at > until) break;
        if (at > m.now) m.advance(at - m.now);
        if (t.kind === 'kmem') (this.replayer as KmemReplayer).replay(t.events[this.i]);
        else (this.replayer as JsonlReplayer).replay(t.events[this.i]);
        this.i++;
        this.replayed++;
      }
    } catch (e) {
      throw new Error(`trace-replay of ${this.p.file}: ${(e as Error).message}`, { cause: e });
    } finally {
      // The hook is a closure: it must not stay in the machine between steps (clones refuse it).
      if (this.replayer instanceof KmemReplayer) this.replayer.detach();
    }
  }

  /** The traced processes exit and the traced kernel blocks still allocated are freed. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.replayer.release();
  }

  report(): Record<string, number> {
    // A pass counts once it has started (the next one is scheduled as soon as one ends).
    const out: Record<string, number> = {
      events: this.replayed,
      passes: this.passes - (this.i === 0 ? 1 : 0),
    };
    for (const [k, v] of Object.entries(replayCounts(this.replayer))) out[k] = (this.earlier[k] ?? 0) + v;
    out.live_blocks = this.stopped ? 0 : this.replayer.result().live_blocks;
    return out;
  }
}

// ---------------------------------------------------------------------------------------------
// Registry and runner

type Factory = (m: Machine, params: Record<string, unknown>) => WorkloadModel;

/** The implemented models, by the names scenarios use. */
export const WORKLOAD_FACTORIES: Readonly<Record<string, Factory>> = {
  'anon-churn': (m, p) => new AnonChurn(m, p),
  'page-cache': (m, p) => new PageCache(m, p),
  'net-buffers': (m, p) => new NetBuffers(m, p),
  'stress-highalloc': (m, p) => new StressHighalloc(m, p),
  'slab-churn': (m, p) => new SlabChurn(m, p),
  'longterm-pin': (m, p) => new LongtermPin(m, p),
  'fork-server': (m, p) => new ForkServer(m, p),
  'page-tables': (m, p) => new PageTables(m, p),
  'trace-replay': (m, p) => new TraceReplay(m, p),
};

/** Each model's parameter check, run when a scenario is parsed so a bad one names its line. */
const PARAM_CHECKS: Readonly<Record<string, (params: Record<string, unknown>) => unknown>> = {
  'anon-churn': anonChurnParams,
  'page-cache': pageCacheParams,
  'net-buffers': netBuffersParams,
  'stress-highalloc': stressHighallocParams,
  'slab-churn': slabChurnParams,
  'longterm-pin': longtermPinParams,
  'fork-server': forkServerParams,
  'page-tables': pageTablesParams,
  'trace-replay': traceReplayParams,
};
/** Params that name files: a scenario resolves them against its own directory and checks them. */
const FILE_PARAMS: Readonly<Record<string, readonly string[]>> = { 'trace-replay': ['file'] };
for (const [name, check] of Object.entries(PARAM_CHECKS))
  registerWorkloadModel(name, check, { files: FILE_PARAMS[name] });

/** Build a model on `m`; throws WorkloadParamError for bad params, Error for an unknown model. */
export function createWorkload(
  m: Machine,
  model: string,
  params: Record<string, unknown> = {},
): WorkloadModel {
  const f = Object.hasOwn(WORKLOAD_FACTORIES, model) ? WORKLOAD_FACTORIES[model] : undefined;
  if (!f)
    throw new Error(
      `workload model '${model}' is not implemented (implemented: ${Object.keys(WORKLOAD_FACTORIES).join(', ')})`,
    );
  return f(m, params);
}

/** A phase as runWorkloads() takes it: ScenarioPhase fits. */
export interface WorkloadPhase {
  name: string;
  /** Nanoseconds. */
  duration: number;
  workloads: Array<{ model: string; params?: Record<string, unknown> }>;
}

export interface PhaseResult {
  name: string;
  start_ns: number;
  end_ns: number;
  /** Each workload's report(), in the phase's order. */
  workloads: Array<{ model: string; report: Record<string, number> }>;
}

/** Times the runner must stop at inside phases (scenario events, samples), and what it does there. */
export interface PhaseStops {
  /** The next simulated time to stop at (Infinity: none). */
  next_ns(): number;
  /** The clock has reached next_ns(): act. Runs before a phase ending now stops its workloads. */
  at(now_ns: number): void;
}

export interface RunWorkloadsOptions {
  /** Simulated ns per step of the models (1 s by default). */
  slice?: number;
  /** Stops inside the phases; events at a phase boundary see the ending phase's workloads. */
  stops?: PhaseStops;
  /** Called after each slice (progress reporting). */
  onSlice?: (now_ns: number) => void;
}

/**
 * Run the phases one after the other: build the phase's models, step them all in slices of
 * `slice` ns (1 s by default) of simulated time in file order, advancing the clock between
 * slices, and stop them at the phase's end. A bad param is a WorkloadParamError whose message is
 * prefixed with the phase and workload (`phases[0].workloads[1].params.rss: …`).
 */
export function runWorkloads(
  m: Machine,
  phases: readonly WorkloadPhase[],
  opts: RunWorkloadsOptions = {},
): PhaseResult[] {
  const slice = opts.slice ?? 1e9;
  if (!(slice > 0)) throw new RangeError(`runWorkloads: slice ${slice} is not a positive duration`);
  const stops = opts.stops;
  const results: PhaseResult[] = [];
  // Phases end on schedule even when something took the clock past a slice's end.
  let end = m.now;
  phases.forEach((phase, i) => {
    const start = m.now;
    end += phase.duration;
    const models: WorkloadModel[] = [];
    while (stops && stops.next_ns() <= m.now) stops.at(m.now);
    phase.workloads.forEach((w, j) => {
      try {
        models.push(createWorkload(m, w.model, w.params ?? {}));
      } catch (e) {
        // Those already built release what they took before the error goes up.
        for (const built of models) built.stop();
        if (e instanceof WorkloadParamError)
          throw new WorkloadParamError(e.model, e.param, e.reason, `phases[${i}].workloads[${j}].`);
        throw e;
      }
    });
    try {
      for (let t = start; ; ) {
        while (stops && stops.next_ns() <= m.now) stops.at(m.now);
        if (t >= end) break;
        t = Math.min(t + slice, end, stops ? Math.max(stops.next_ns(), m.now) : end);
        for (const w of models) w.step(t);
        if (m.now < t) m.advance(t - m.now);
        opts.onSlice?.(m.now);
      }
    } finally {
      for (const w of models) w.stop();
    }
    results.push({
      name: phase.name,
      start_ns: start,
      end_ns: m.now,
      workloads: models.map((w) => ({ model: w.model, report: w.report() })),
    });
  });
  return results;
}
