/**
 * Property: random mixes of MAP_CONTIG mappings (rfc-poc, rfc strict and best effort) and
 * ordinary ones, cut by munmap/mprotect/mremap/madvise, forked, compacted and squeezed, keep every
 * invariant (map_contig_check: a held page stays mapped where its offset says, pinned), strict
 * mappings stay one unmoved run while mapped, and nothing leaks when the processes exit.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ErrnoError } from '../../src/lib/errno.ts';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FaultError, type Process } from '../../src/vm/process.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_CONTIG_BEST_EFFORT,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { NO_EARLY, PG, pte } from '../vm/helpers.ts';

const RW = PROT_READ | PROT_WRITE;

interface Mapping {
  p: Process;
  addr: number;
  pages: number;
  /** Strict MAP_CONTIG under rfc: its pfns must never change. */
  strict: Int32Array | null;
}

const op = fc.oneof(
  fc.record({
    k: fc.constant('contig' as const),
    proc: fc.nat(1),
    pages: fc.integer({ min: 1, max: 3000 }),
    best: fc.boolean(),
  }),
  fc.record({ k: fc.constant('plain' as const), proc: fc.nat(1), pages: fc.integer({ min: 1, max: 3000 }) }),
  fc.record({
    k: fc.constant('munmap' as const),
    which: fc.nat(),
    off: fc.nat(),
    len: fc.integer({ min: 1, max: 800 }),
  }),
  fc.record({
    k: fc.constant('mprotect' as const),
    which: fc.nat(),
    off: fc.nat(),
    len: fc.integer({ min: 1, max: 800 }),
  }),
  fc.record({ k: fc.constant('mremap' as const), which: fc.nat(), shrink: fc.nat(800) }),
  fc.record({ k: fc.constant('dontneed' as const), which: fc.nat() }),
  fc.record({ k: fc.constant('fork' as const), proc: fc.nat(1) }),
  fc.record({ k: fc.constant('compact' as const) }),
  fc.record({ k: fc.constant('squeeze' as const), order: fc.integer({ min: 0, max: 9 }) }),
);

type Op = typeof op extends fc.Arbitrary<infer T> ? T : never;

function run(policy: 'rfc' | 'rfc-poc', ops: Op[]): void {
  const m = Machine.boot({ memory: '256M', cpus: 2, early: NO_EARLY, map_contig: policy });
  m.kernel.drain_all_pages();
  const free0 = m.mm.zones.reduce((s, z) => s + z.vm_stat[0], 0);
  const procs = [0, 1].map(() => m.spawn({ uid: 1000, rlimits: { memlock: Number.POSITIVE_INFINITY } }));
  const maps: Mapping[] = [];
  const kernelPages: Array<[number, number]> = [];
  const safe = (fn: () => void): void => {
    try {
      fn();
    } catch (e) {
      if (!(e instanceof ErrnoError) && !(e instanceof FaultError)) throw e;
    }
  };
  const pick = (n: number): Mapping | undefined => maps[n % Math.max(1, maps.length)];
  for (const o of ops) {
    switch (o.k) {
      case 'contig':
      case 'plain':
        safe(() => {
          const p = procs[o.proc];
          const flags =
            MAP_PRIVATE |
            MAP_ANONYMOUS |
            (o.k === 'contig' ? MAP_CONTIG | (o.best ? MAP_CONTIG_BEST_EFFORT : 0) : 0);
          const addr = p.mmap(0, o.pages * PG, RW, flags);
          if (o.k === 'plain') p.touch(addr, o.pages * PG, { write: true });
          const strict =
            o.k === 'contig' && !o.best && policy === 'rfc'
              ? Int32Array.from({ length: o.pages }, (_, i) => pte(m, p, addr + i * PG)!.pfn)
              : null;
          if (strict) expect(strict.every((x, i) => x === strict[0] + i)).toBe(true);
          maps.push({ p, addr, pages: o.pages, strict });
        });
        break;
      case 'munmap':
      case 'mprotect': {
        const t = pick(o.which);
        if (!t) break;
        const off = o.off % t.pages;
        const len = Math.min(o.len, t.pages - off);
        if (o.k === 'munmap') {
          safe(() => t.p.munmap(t.addr + off * PG, len * PG));
          if (t.strict) t.strict.fill(-1, off, off + len);
        } else safe(() => t.p.mprotect(t.addr + off * PG, len * PG, PROT_READ));
        break;
      }
      case 'mremap': {
        const t = pick(o.which);
        if (!t || o.shrink >= t.pages) break;
        safe(() => {
          t.p.mremap(t.addr, t.pages * PG, (t.pages - o.shrink) * PG, MREMAP_MAYMOVE);
          if (t.strict) t.strict.fill(-1, t.pages - o.shrink);
          t.pages -= o.shrink;
        });
        break;
      }
      case 'dontneed': {
        const t = pick(o.which);
        if (t) safe(() => t.p.madvise(t.addr, t.pages * PG, MADV_DONTNEED));
        break;
      }
      case 'fork': {
        // The child has every mapping but the held ones (rfc: as if MADV_DONTFORK).
        const c = procs[o.proc].fork();
        const first = maps.find((x) => x.p === procs[o.proc]);
        if (first) safe(() => c.touch(first.addr, PG, { write: true }));
        c.exit();
        break;
      }
      case 'compact':
        m.writeFile('/proc/sys/vm/compact_memory', '1');
        break;
      case 'squeeze': {
        const pfn = m.kernel.alloc_pages(GFP_KERNEL, o.order);
        if (pfn >= 0) kernelPages.push([pfn, o.order]);
        break;
      }
    }
    m.checkInvariants();
    // Strict rfc mappings: every page still mapped is the one it got at mmap.
    for (const t of maps)
      if (t.strict)
        for (let i = 0; i < t.pages; i++)
          if (t.strict[i] >= 0 && t.p.mm.mt.walk(t.addr + i * PG) >= 0)
            expect(pte(m, t.p, t.addr + i * PG)?.pfn).toBe(t.strict[i]);
  }
  for (const p of procs) p.exit();
  for (const [pfn, order] of kernelPages) m.kernel.free_pages(pfn, order);
  m.checkInvariants();
  expect(m.vm.contig_backings.filter(Boolean)).toHaveLength(0);
  m.kernel.drain_all_pages();
  // Everything came back but page-table caches and the like (a handful of pages).
  expect(free0 - m.mm.zones.reduce((s, z) => s + z.vm_stat[0], 0)).toBeLessThan(16);
}

describe('MAP_CONTIG properties', () => {
  for (const policy of ['rfc', 'rfc-poc'] as const)
    it(`${policy}: invariants hold after every step; nothing leaks at exit`, () => {
      fc.assert(
        fc.property(fc.array(op, { minLength: 1, maxLength: 30 }), (ops) => run(policy, ops)),
        { numRuns: 30 },
      );
    });
});
