/**
 * Property: THP faults (PMD-sized, and mTHP sizes 16kB..1024kB enabled at random) mixed with
 * munmap/mprotect/madvise/mlock/fork/exit/migration and khugepaged passes keep every invariant.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { PG_anon, PG_head } from '../../src/mm/page-flags.ts';
import { Machine } from '../../src/sim/machine.ts';
import { huge_pmd_entry } from '../../src/vm/huge_memory.ts';
import { walk_pte_table } from '../../src/vm/memory.ts';
import {
  MADV_COLD,
  MADV_DONTNEED,
  MADV_FREE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';

const MiB = 2 ** 20;
const PG = 4096;

function pte(m: Machine, p: ReturnType<Machine['spawn']>, addr: number): { pfn: number } | null {
  const table = walk_pte_table(m.vm, p.mm, addr / PG);
  if (table < 0) return null;
  const e = table * 512 + ((addr / PG) % 512);
  return m.vm.pt.bits[e] & 1 ? { pfn: m.vm.pt.pfn[e] } : null;
}

const op = fc.oneof(
  fc.record({
    k: fc.constant('touch'),
    off: fc.nat(1023),
    len: fc.integer({ min: 1, max: 1024 }),
    w: fc.boolean(),
  }),
  fc.record({ k: fc.constant('munmap'), off: fc.nat(1023), len: fc.integer({ min: 1, max: 600 }) }),
  fc.record({
    k: fc.constant('mprotect'),
    off: fc.nat(1023),
    len: fc.integer({ min: 1, max: 600 }),
    w: fc.boolean(),
  }),
  fc.record({
    k: fc.constant('madvise'),
    off: fc.nat(1023),
    len: fc.integer({ min: 1, max: 600 }),
    adv: fc.constantFrom(MADV_DONTNEED, MADV_FREE, MADV_COLD),
  }),
  fc.record({ k: fc.constant('mlock'), off: fc.nat(1023), len: fc.integer({ min: 1, max: 64 }) }),
  fc.record({ k: fc.constant('fork') }),
  fc.record({ k: fc.constant('exitChild') }),
  fc.record({ k: fc.constant('contig') }),
  fc.record({ k: fc.constant('shrink') }),
  fc.record({ k: fc.constant('khugepaged') }),
  fc.record({
    k: fc.constant('size'),
    order: fc.integer({ min: 2, max: 8 }),
    mode: fc.constantFrom('always', 'inherit', 'madvise', 'never'),
  }),
  fc.record({ k: fc.constant('contigMthp'), off: fc.nat(1023) }),
);

describe('THP properties', () => {
  it('invariants hold after every step', () => {
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 25 }), (ops) => {
        const m = Machine.boot({
          memory: '256M',
          cpus: 2,
          thp: 'always',
          early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
        });
        const p = m.spawn();
        const raw = p.mmap(0, 6 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
        const base = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
        const children: Array<ReturnType<typeof p.fork>> = [];
        const safe = (fn: () => void): void => {
          try {
            fn();
          } catch (e) {
            if (!(e as { code?: string }).code) throw e;
          }
        };
        for (const o of ops) {
          const a = base + ('off' in o ? o.off : 0) * PG;
          const len = 'len' in o ? o.len * PG : 0;
          switch (o.k) {
            case 'touch':
              safe(() => p.touch(a, len, { write: o.w }));
              break;
            case 'munmap':
              safe(() => p.munmap(a, len));
              break;
            case 'mprotect':
              safe(() => p.mprotect(a, len, PROT_READ | (o.w ? PROT_WRITE : 0)));
              break;
            case 'madvise':
              safe(() => p.madvise(a, len, o.adv));
              break;
            case 'mlock':
              safe(() => p.mlock(a, len));
              break;
            case 'fork':
              if (children.length < 3) children.push(p.fork());
              break;
            case 'exitChild':
              children.shift()?.exit();
              break;
            case 'contig': {
              // Migrate the first THP of the range through alloc_contig_range.
              for (let x = base; x < base + 4 * MiB; x += 2 * MiB) {
                const e = huge_pmd_entry(m.vm, p.mm, x / PG);
                if (e < 0) continue;
                const head = m.vm.pt.pfn[e];
                if (m.kernel.alloc_contig_range(head, head + 512, 0, GFP_KERNEL) === 0)
                  m.kernel.free_contig_range(head, 512);
                break;
              }
              break;
            }
            case 'shrink':
              m.writeFile('/proc/sys/vm/drop_caches', '2');
              break;
            case 'size':
              m.writeFile(`/sys/kernel/mm/transparent_hugepage/hugepages-${4 << o.order}kB/enabled`, o.mode);
              break;
            case 'contigMthp': {
              // Migrate the first PTE-mapped large folio head at or after `a` (any order).
              const f = m.mm.frames;
              for (let x = a; x < base + 4 * MiB; x += PG) {
                const e = pte(m, p, x);
                if (!e || !(f.flags[e.pfn] & PG_head) || !(f.flags[e.pfn] & PG_anon)) continue;
                const nr = 1 << f.order[e.pfn];
                if (m.kernel.alloc_contig_range(e.pfn, e.pfn + nr, 0, GFP_KERNEL) === 0)
                  m.kernel.free_contig_range(e.pfn, nr);
                break;
              }
              break;
            }
            case 'khugepaged':
              // One khugepaged pass: collapses the PTE-mapped ranges (4 KiB pages or split THPs).
              m.advance('10s');
              break;
          }
          m.checkInvariants();
        }
        for (const c of children) c.exit();
        p.exit();
        m.checkInvariants();
      }),
      { numRuns: 40, seed: 5 },
    );
  });
});
