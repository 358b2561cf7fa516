/**
 * Machine.clone(): a copy behaves byte-identically to the original from the moment it is made
 * (the same /proc output, time, CPU time, PRNG stream and background work), and the two share
 * nothing. Checked for several machine states by running one random operation sequence on two
 * copies and comparing what every operation returned, the /proc files, /proc/kpageflags and the
 * whole object graph; the machine cloned from stays as it was.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../../src/lib/errno.ts';
import { __GFP_NOWARN, __GFP_RETRY_MAYFAIL, GFP_HIGHUSER_MOVABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { KthreadWork } from '../../src/mm/workqueue.ts';
import { CloneError, cloneGraph, closurePaths } from '../../src/sim/clone.ts';
import type { MachineConfigInput } from '../../src/sim/config.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FOLL_LONGTERM, FOLL_WRITE } from '../../src/vm/gup.ts';
import { FaultError } from '../../src/vm/process.ts';
import {
  MADV_DONTNEED,
  MADV_HUGEPAGE,
  MADV_PAGEOUT,
  MAP_ANONYMOUS,
  MAP_HUGETLB,
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_HUGETLB,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';

const PAGE = 4096;
const MiB = 2 ** 20;

describe('cloneGraph()', () => {
  class Point {
    constructor(
      public x: number,
      public y: number,
    ) {}
    norm(): number {
      return Math.abs(this.x) + Math.abs(this.y);
    }
  }

  it('keeps prototypes, aliasing, cycles, Maps, Sets, symbols and shared buffers', () => {
    const sym = Symbol('s');
    const buf = new ArrayBuffer(16);
    const holey = [1, 2, 3];
    delete holey[1];
    const p = new Point(1, -2);
    const src = {
      a: p,
      b: p,
      list: [p, 3, 'x', undefined, null],
      holey,
      map: new Map<object, Point>([[p, p]]),
      set: new Set([p]),
      u8: new Uint8Array(buf, 0, 8),
      u32: new Uint32Array(buf, 8, 2),
      f64: new Float64Array([1.5, 2.5]),
      frozen: Object.freeze({ k: 1 }),
      [sym]: p,
      self: null as unknown,
    };
    src.self = src;
    src.u32[0] = 7;
    const c = cloneGraph(src);
    expect(c).not.toBe(src);
    expect(c.a).toBeInstanceOf(Point);
    expect(c.a).not.toBe(p);
    expect(c.a.norm()).toBe(3);
    expect(c.b).toBe(c.a);
    expect(c.list[0]).toBe(c.a);
    expect(c.list).toEqual([c.a, 3, 'x', undefined, null]);
    expect(1 in c.holey).toBe(false);
    expect(c.map.get(c.a)).toBe(c.a);
    expect(c.set.has(c.a)).toBe(true);
    expect(c[sym]).toBe(c.a);
    expect(c.self).toBe(c);
    expect(c.frozen).toBe(src.frozen);
    // One buffer behind both views, copied once.
    expect(c.u8.buffer).toBe(c.u32.buffer);
    expect(c.u8.buffer).not.toBe(buf);
    expect(c.u32[0]).toBe(7);
    c.u32[0] = 9;
    expect(src.u32[0]).toBe(7);
    expect([...c.f64]).toEqual([1.5, 2.5]);
  });

  it('refuses a closure anywhere in the graph, naming its path', () => {
    const src = { a: { list: [1, { cb: () => 1 }] } };
    expect(() => cloneGraph(src)).toThrow(CloneError);
    expect(() => cloneGraph(src)).toThrow(/machine\.a\.list\[1\]\.cb/);
    expect(() => cloneGraph({ m: new Map([['k', () => 1]]) })).toThrow(/machine\.m\.get\("k"\)/);
  });
});

// --- Machine states ----------------------------------------------------------------------------

/** A program's state while it drives one machine: only ids and numbers, so it clones as data. */
class Driver {
  pid = 0;
  anon = 0;
  shared = 0;
  huge = 0;
  fd = -1;
  memfd = -1;
  child = 0;
  readonly blocks: Array<{ pfn: number; order: number }> = [];
  readonly pins: number[] = [];
  readonly vmallocs: number[] = [];
  readonly cma: Array<{ pfn: number; count: number }> = [];
}

const ANON_PAGES = 2048;
const FILE_BYTES = 16 * MiB;

/** Start the driver's process and give it memory of every kind (`heavy`: more of everything). */
function populate(m: Machine, d: Driver, heavy: boolean): void {
  const p = m.spawn({ name: 'driver' });
  d.pid = p.pid;
  d.anon = p.mmap(0, ANON_PAGES * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(d.anon, ANON_PAGES * PAGE, MADV_HUGEPAGE);
  p.touch(d.anon, ANON_PAGES * PAGE, { write: true });
  d.fd = p.open('/data', O_RDWR | O_CREAT);
  p.write(d.fd, heavy ? FILE_BYTES : FILE_BYTES / 4);
  d.shared = p.mmap(0, 4 * MiB, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS);
  p.touch(d.shared, 4 * MiB, { write: true });
  m.writeFile('/proc/sys/vm/nr_hugepages', '16');
  d.huge = p.mmap(0, 8 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
  p.touch(d.huge, 8 * MiB, { write: true });
  d.memfd = p.memfd_create('hugefd', MFD_HUGETLB);
  p.ftruncate(d.memfd, 4 * MiB);
  for (const pfn of p.pin_user_pages(d.anon, 8 * PAGE, FOLL_WRITE | FOLL_LONGTERM)) d.pins.push(pfn);
  d.vmallocs.push(m.kernel.vmalloc(heavy ? 4 * MiB : MiB));
  const child = p.fork();
  d.child = child.pid;
  child.touch(d.anon, 64 * PAGE, { write: true });
  if (heavy) {
    // Swap: push some anonymous memory out.
    p.madvise(d.anon, 256 * PAGE, MADV_PAGEOUT);
    // Partly unmapped THPs on the deferred split queue; holes for compaction.
    for (let i = 0; i < ANON_PAGES; i += 64) p.madvise(d.anon + i * PAGE, 8 * PAGE, MADV_DONTNEED);
  }
}

/** Kernel allocations until kswapd is woken and left queued (no syscall lets the clock move). */
function pressure(m: Machine, d: Driver): void {
  for (let i = 0; i < 1 << 18 && !m.mm.kswapd.some((k) => k.queued); i++) {
    const pfn = m.kernel.alloc_pages(GFP_HIGHUSER_MOVABLE | __GFP_NOWARN, 0);
    if (pfn < 0) break;
    d.blocks.push({ pfn, order: 0 });
  }
}

interface Scenario {
  name: string;
  config: MachineConfigInput;
  build(m: Machine, d: Driver): void;
  /** Work that must be pending on the clock when the machine is cloned. */
  pending?: string[];
}

const SCENARIOS: Scenario[] = [
  { name: 'fresh boot', config: { memory: '512M', seed: 11 }, build: () => {}, pending: ['VmstatWork'] },
  {
    name: 'after a workload, background work pending',
    config: { memory: '512M', cpus: 2, swap: '256M', thp: 'always', seed: 12 },
    build(m, d) {
      populate(m, d, true);
      m.advance('1500ms');
      const p = m.process(d.pid)!;
      // Dirty page cache the flusher has started writing; memory pressure for kswapd.
      p.write(d.fd, 8 * MiB);
      m.writeFile('/proc/sys/vm/drop_caches', '1');
      p.fsync(d.fd);
      p.write(d.fd, 4 * MiB);
      m.writeFile('/proc/sys/vm/dirty_background_bytes', String(2 * PAGE));
      p.write(d.fd, PAGE);
      pressure(m, d);
    },
    pending: [
      'VmstatWork',
      'WbPeriodic',
      'KcompactdTimeout',
      'KhugepagedTimeout',
      'KswapdRun',
      'WritebackDone',
    ],
  },
  {
    name: 'NUMA, two nodes',
    config: { memory: '1G', nodes: 2, cpus: 4, swap: '128M', thp: 'always', seed: 13 },
    build(m, d) {
      populate(m, d, false);
      m.advance('3s');
    },
  },
  {
    name: 'CMA',
    config: { memory: '512M', cma: '64M', seed: 14 },
    build(m, d) {
      populate(m, d, false);
      const pfn = m.kernel.cma_alloc('reserved', 1024);
      if (pfn >= 0) d.cma.push({ pfn, count: 1024 });
      m.advance('700ms');
    },
  },
];

// --- Operations --------------------------------------------------------------------------------

type Op =
  | { kind: 'touch'; page: number; pages: number }
  | { kind: 'drop'; page: number; pages: number }
  | { kind: 'kalloc'; order: number; movable: boolean }
  | { kind: 'kfree'; index: number }
  | { kind: 'pin'; page: number }
  | { kind: 'unpin'; index: number }
  | { kind: 'write'; pages: number }
  | { kind: 'read'; pages: number }
  | { kind: 'fsync' }
  | { kind: 'pageout'; page: number; pages: number }
  | { kind: 'fork' }
  | { kind: 'exit' }
  | { kind: 'huge'; mib: number }
  | { kind: 'vmalloc'; kib: number }
  | { kind: 'vfree'; index: number }
  | { kind: 'cma'; count: number; release: boolean }
  | { kind: 'sysctl'; name: 'nr_hugepages' | 'compact_memory' | 'drop_caches'; value: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'random' };

const page = fc.nat(ANON_PAGES - 1);
const pages = fc.integer({ min: 1, max: 256 });
const OP: fc.Arbitrary<Op> = fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('touch' as const), page, pages }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('drop' as const), page, pages }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('kalloc' as const),
      order: fc.constantFrom(0, 0, 1, 3, 9),
      movable: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('kfree' as const), index: fc.nat() }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pin' as const), page }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unpin' as const), index: fc.nat() }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('write' as const), pages: fc.integer({ min: 1, max: 1024 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('read' as const), pages: fc.integer({ min: 1, max: 1024 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'fsync' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('pageout' as const), page, pages }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'fork' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'exit' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('huge' as const), mib: fc.constantFrom(2, 4, 8) }) },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('vmalloc' as const), kib: fc.integer({ min: 1, max: 8192 }) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('vfree' as const), index: fc.nat() }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('cma' as const),
      count: fc.integer({ min: 1, max: 512 }),
      release: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.record({
        kind: fc.constant('sysctl' as const),
        name: fc.constant('nr_hugepages' as const),
        value: fc.nat(32),
      }),
      fc.record({
        kind: fc.constant('sysctl' as const),
        name: fc.constantFrom('compact_memory' as const, 'drop_caches' as const),
        value: fc.constantFrom(1, 2, 3),
      }),
    ),
  },
  {
    weight: 3,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 5000 }) }),
  },
  { weight: 1, arbitrary: fc.constant({ kind: 'random' as const }) },
);

/** Apply `o` to `m`; what it returned (or the error it threw), for comparing two machines. */
function apply(m: Machine, d: Driver, o: Op): unknown {
  try {
    return step(m, d, o);
  } catch (e) {
    if (e instanceof ErrnoError || e instanceof FaultError) return `${e.name}: ${e.message}`;
    throw e;
  }
}

function step(m: Machine, d: Driver, o: Op): unknown {
  const p = m.process(d.pid);
  switch (o.kind) {
    case 'touch': {
      const n = Math.min(o.pages, ANON_PAGES - o.page);
      return p?.touch(d.anon + o.page * PAGE, n * PAGE, { write: true });
    }
    case 'drop':
      return p?.madvise(d.anon + o.page * PAGE, Math.min(o.pages, ANON_PAGES - o.page) * PAGE, MADV_DONTNEED);
    case 'pageout':
      return p?.madvise(d.anon + o.page * PAGE, Math.min(o.pages, ANON_PAGES - o.page) * PAGE, MADV_PAGEOUT);
    case 'kalloc': {
      const gfp = (o.movable ? GFP_HIGHUSER_MOVABLE : GFP_KERNEL) | __GFP_RETRY_MAYFAIL | __GFP_NOWARN;
      const pfn = m.kernel.alloc_pages(gfp, o.order, { cpu: o.order & 1 });
      if (pfn >= 0) d.blocks.push({ pfn, order: o.order });
      return pfn;
    }
    case 'kfree': {
      if (!d.blocks.length) return null;
      const { pfn, order } = d.blocks.splice(o.index % d.blocks.length, 1)[0];
      return m.kernel.free_pages(pfn, order);
    }
    case 'pin': {
      if (!p) return null;
      const got = p.pin_user_pages(d.anon + o.page * PAGE, PAGE, FOLL_WRITE | FOLL_LONGTERM);
      d.pins.push(...got);
      return got;
    }
    case 'unpin': {
      if (!d.pins.length || !p) return null;
      return p.unpin_user_pages(d.pins.splice(o.index % d.pins.length, 1));
    }
    case 'write':
      return p?.write(d.fd, o.pages * PAGE);
    case 'read':
      return p && [p.lseek(d.fd, 0, 0), p.read(d.fd, o.pages * PAGE)];
    case 'fsync':
      return p?.fsync(d.fd);
    case 'fork': {
      if (!p || m.process(d.child)) return null;
      const c = p.fork();
      d.child = c.pid;
      return c.touch(d.anon, 128 * PAGE, { write: true });
    }
    case 'exit':
      return m.process(d.child)?.exit();
    case 'huge': {
      if (!p) return null;
      const a = p.mmap(0, o.mib * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB);
      const r = p.touch(a, o.mib * MiB, { write: true });
      p.munmap(a, o.mib * MiB);
      return [a, r];
    }
    case 'vmalloc': {
      const h = m.kernel.vmalloc(o.kib * 1024);
      if (h > 0) d.vmallocs.push(h);
      return h;
    }
    case 'vfree': {
      if (!d.vmallocs.length) return null;
      return m.kernel.vfree(d.vmallocs.splice(o.index % d.vmallocs.length, 1)[0]);
    }
    case 'cma': {
      if (!m.kernel.cma_areas().length) return null;
      if (o.release && d.cma.length) {
        const { pfn, count } = d.cma.pop()!;
        return m.kernel.cma_release('reserved', pfn, count);
      }
      const pfn = m.kernel.cma_alloc('reserved', o.count, 0, true);
      if (pfn >= 0) d.cma.push({ pfn, count: o.count });
      return pfn;
    }
    case 'sysctl':
      return m.writeFile(`/proc/sys/vm/${o.name}`, String(o.value));
    case 'advance':
      return m.advance(o.ms * 1e6);
    case 'random':
      return [m.rand.below(1000), m.rand.below(2 ** 30)];
  }
}

// --- Comparing machines ------------------------------------------------------------------------

const PROC = ['/proc/buddyinfo', '/proc/pagetypeinfo', '/proc/zoneinfo', '/proc/vmstat', '/proc/meminfo'];

/** Everything the user sees of a machine: the /proc files, kpageflags, time and CPU time. */
function snapshot(m: Machine): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const f of PROC) out[f] = m.readFile(f);
  for (const f of m.listFiles('/proc/sys/vm')) {
    try {
      out[f] = m.readFile(f);
    } catch {
      // write-only
    }
  }
  out.kpageflags = Buffer.from(m.readFileBytes('/proc/kpageflags')).toString('base64');
  out.files = m.listFiles('/').join(',');
  out.now = m.now;
  out.kernel_ns = m.kernel_ns;
  out.pending = m.clock.pending;
  return out;
}

/**
 * The first place two object graphs differ (prototypes, values, typed array contents, or the
 * aliasing between their objects), or null. The machines' VFS (rebuilt, not copied) is skipped.
 */
function graphDiff(a: unknown, b: unknown): string | null {
  const seen = new Map<unknown, unknown>();
  const stack: Array<[unknown, unknown, string]> = [[a, b, 'machine']];
  while (stack.length) {
    const [x, y, path] = stack.pop()!;
    if (typeof x !== 'object' || x === null || typeof y !== 'object' || y === null) {
      if (!Object.is(x, y)) return `${path}: ${String(x)} vs ${String(y)}`;
      continue;
    }
    if (seen.has(x)) {
      if (seen.get(x) !== y) return `${path}: aliasing differs`;
      continue;
    }
    seen.set(x, y);
    if (Object.getPrototypeOf(x) !== Object.getPrototypeOf(y)) return `${path}: prototypes differ`;
    if (ArrayBuffer.isView(x)) {
      const yv = y as ArrayBufferView;
      const xb = Buffer.from(x.buffer, x.byteOffset, x.byteLength);
      const yb = Buffer.from(yv.buffer, yv.byteOffset, yv.byteLength);
      if (!xb.equals(yb)) return `${path}: typed array contents differ`;
      continue;
    }
    if (x instanceof Map) {
      const ym = y as Map<unknown, unknown>;
      if (x.size !== ym.size) return `${path}: Map sizes differ`;
      const xs = [...x];
      const ys = [...ym];
      xs.forEach(([k, v], i) => {
        stack.push([k, ys[i][0], `${path}.keys()[${i}]`], [v, ys[i][1], `${path}.values()[${i}]`]);
      });
    } else if (x instanceof Set) {
      const ys = [...(y as Set<unknown>)];
      if (x.size !== ys.length) return `${path}: Set sizes differ`;
      [...x].forEach((v, i) => {
        stack.push([v, ys[i], `${path}.values()[${i}]`]);
      });
    }
    const xo = x as Record<string | symbol, unknown>;
    const yo = y as Record<string | symbol, unknown>;
    const xk = Reflect.ownKeys(xo).filter((k) => Object.prototype.propertyIsEnumerable.call(xo, k));
    const yk = Reflect.ownKeys(yo).filter((k) => Object.prototype.propertyIsEnumerable.call(yo, k));
    const names = (ks: Array<string | symbol>): string => ks.map(String).join();
    if (names(xk) !== names(yk)) return `${path}: keys differ (${names(xk)} vs ${names(yk)})`;
    for (const k of xk) if (k !== 'vfs') stack.push([xo[k], yo[k], `${path}.${String(k)}`]);
  }
  return null;
}

/** The kinds of work queued on the machine's clock. */
function pendingWork(m: Machine): string[] {
  const fns = (m.clock as unknown as { fns: unknown[] }).fns;
  const kinds = new Set<string>();
  for (const e of fns) kinds.add(e instanceof KthreadWork ? e.work.constructor.name : String(e));
  return [...kinds].sort();
}

describe('Machine.clone()', () => {
  for (const s of SCENARIOS) {
    describe(s.name, () => {
      const base = Machine.boot(s.config);
      const driver = new Driver();
      s.build(base, driver);
      const at = snapshot(base);

      it('copies everything: the same graph, files and pending work, nothing shared', () => {
        if (s.pending) expect(pendingWork(base)).toEqual(expect.arrayContaining(s.pending));
        const c = base.clone();
        expect(graphDiff(base, c)).toBeNull();
        expect(snapshot(c)).toEqual(at);
        expect(pendingWork(c)).toEqual(pendingWork(base));
        // (Identity checked as booleans: printing a machine would take a while.)
        expect(c.mm.frames === base.mm.frames).toBe(false);
        if (driver.pid) expect(c.process(driver.pid) === base.process(driver.pid)).toBe(false);
        base.checkInvariants();
        c.checkInvariants();
      });

      test.prop([fc.array(OP, { minLength: 5, maxLength: 30 })], { numRuns: 6 })(
        'two copies running the same operations stay identical; the original does not move',
        (ops) => {
          const a = base.clone();
          const b = a.clone();
          const da = cloneGraph(driver);
          const db = cloneGraph(driver);
          for (const o of ops) expect(apply(b, db, o)).toEqual(apply(a, da, o));
          expect(snapshot(b)).toEqual(snapshot(a));
          expect(graphDiff(a, b)).toBeNull();
          a.checkInvariants();
          b.checkInvariants();
          // Neither copy's operations reached the machine they were copied from.
          expect(snapshot(base)).toEqual(at);
        },
      );
    });
  }

  it('the original does not see the copy’s work, nor the copy the original’s', () => {
    const m = Machine.boot({ memory: '512M', seed: 21 });
    const d = new Driver();
    populate(m, d, false);
    const before = snapshot(m);
    const c = m.clone();
    const dc = cloneGraph(d);
    for (const o of [
      { kind: 'touch', page: 0, pages: 256 },
      { kind: 'advance', ms: 2000 },
    ] as Op[])
      apply(c, dc, o);
    expect(snapshot(m)).toEqual(before);
    const after = snapshot(c);
    apply(m, d, { kind: 'write', pages: 512 });
    m.advance('10s');
    expect(snapshot(c)).toEqual(after);
  });

  it('holds no closures in machine state (a clone would lose them)', () => {
    const m = Machine.boot({ memory: '512M', nodes: 2, cpus: 2, swap: '64M', cma: '32M', thp: 'always' });
    populate(m, new Driver(), true);
    const vfs = (m as unknown as { vfs: object }).vfs;
    expect(closurePaths(m, new Map([[vfs, vfs]]))).toEqual([]);
  });

  it('refuses a machine with a callback shrinker or a closure on its clock, saying where', () => {
    const m = Machine.boot({ memory: '256M' });
    const s = m.kernel.register_shrinker(
      'user',
      () => 0,
      () => 0,
    );
    expect(() => m.clone()).toThrow(CloneError);
    expect(() => m.clone()).toThrow(/shrinker_list\[\d+\]\.count/);
    m.kernel.unregister_shrinker(s);
    expect(() => m.clone()).not.toThrow();
    m.clock.after(10, () => {});
    expect(() => m.clone()).toThrow(/machine\.clock\.fns\[\d+\]/);
  });

  it('leaves tracepoint probes behind: the copy starts with none, the original keeps its own', () => {
    const m = Machine.boot({ memory: '256M' });
    let seen = 0;
    m.mm.trace.mm_page_alloc = () => {
      seen++;
    };
    const copy = m.clone();
    expect(copy.mm.trace.mm_page_alloc).toBeNull();
    copy.kernel.free_pages(copy.kernel.alloc_pages(GFP_KERNEL, 0), 0);
    expect(seen).toBe(0);
    m.kernel.free_pages(m.kernel.alloc_pages(GFP_KERNEL, 0), 0);
    expect(seen).toBe(1);
  });
});
