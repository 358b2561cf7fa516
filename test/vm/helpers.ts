/** Helpers for the address-space tests: a small machine, errno capture, PTE and VMA views. */
import { meminfo_field } from '../../src/fs/proc/meminfo.ts';
import { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import { walk_pte_table } from '../../src/vm/memory.ts';
import { PTRS_PER_TABLE, pte_index } from '../../src/vm/pgtable.ts';
import type { Process } from '../../src/vm/process.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';

export const PG = 4096;
export const MiB = 2 ** 20;

/** A 512 MiB machine with no early kernel allocations, and a root process on CPU 0. */
export function boot(): { m: Machine; p: Process } {
  const m = Machine.boot({
    memory: '512M',
    cpus: 2,
    early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
  });
  return { m, p: m.spawn() };
}

/** The errno code `fn` fails with, or 'ok'. */
export function errno(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (e instanceof ErrnoError) return e.code;
    throw e;
  }
  return 'ok';
}

/** The PTE of `addr` in `p`: its pfn and bits, or null when none. */
export function pte(m: Machine, p: Process, addr: number): { pfn: number; bits: number } | null {
  const vpn = addr / PG;
  const table = walk_pte_table(m.vm, p.mm, vpn);
  if (table < 0) return null;
  const e = table * PTRS_PER_TABLE + pte_index(vpn);
  return m.vm.pt.bits[e] === 0 ? null : { pfn: m.vm.pt.pfn[e], bits: m.vm.pt.bits[e] };
}

/** The VMAs of `p` within [lo, hi) as [start, end, vm_flags]. */
export function vmas(m: Machine, p: Process, lo = 0, hi = 2 ** 48): Array<[number, number, number]> {
  const out: Array<[number, number, number]> = [];
  p.mm.mt.iterate(lo, hi, (s, e, id) => {
    out.push([s, e, m.vm.vmas.vm_flags[id]]);
  });
  return out;
}

/** A /proc/vmstat counter. */
export function vmstat(m: Machine, name: string): number {
  const hit = m.readFile('/proc/vmstat').match(new RegExp(`^${name} (\\d+)$`, 'm'));
  if (!hit) throw new Error(`no ${name} in /proc/vmstat`);
  return Number(hit[1]);
}

/** A /proc/meminfo value in kB. */
export function meminfo(m: Machine, name: string): number {
  const hit = m
    .readFile('/proc/meminfo')
    .match(new RegExp(`^${name.replace(/[()]/g, '\\$&')}:\\s+(\\d+) kB$`, 'm'));
  if (!hit) throw new Error(`no ${name} in /proc/meminfo`);
  return Number(hit[1]);
}

/** How counters changed while `fn` ran. */
export function delta(m: Machine, names: string[], fn: () => void): Record<string, number> {
  const before = names.map((n) => vmstat(m, n));
  fn();
  return Object.fromEntries(names.map((n, i) => [n, vmstat(m, n) - before[i]]));
}

/** Boot options for a machine whose kernel holds no memory of its own after boot. */
export const NO_EARLY = { unmovable: 0, reclaimable: 0, transient_fraction: 0 } as const;

/** The hugetlb pool in /proc/meminfo: [HugePages_Total, HugePages_Free, HugePages_Rsvd, HugePages_Surp]. */
export function hugePool(m: Machine): [number, number, number, number] {
  const t = m.readFile('/proc/meminfo');
  return [
    meminfo_field(t, 'HugePages_Total'),
    meminfo_field(t, 'HugePages_Free'),
    meminfo_field(t, 'HugePages_Rsvd'),
    meminfo_field(t, 'HugePages_Surp'),
  ];
}

/** A 1 GiB machine with no early kernel allocations and `nr` 2 MiB pages in its hugetlb pool. */
export function bootHugetlb(nr = 4): Machine {
  const m = Machine.boot({ memory: '1G', early: NO_EARLY });
  m.writeFile('/proc/sys/vm/nr_hugepages', String(nr));
  return m;
}

/** A machine (512 MiB by default, no early kernel memory) booted with THP `mode`, and a process. */
export function bootThp(mode: 'always' | 'madvise' | 'never', memory = '512M'): { m: Machine; p: Process } {
  const m = Machine.boot({ memory, cpus: 2, thp: mode, early: NO_EARLY });
  return { m, p: m.spawn() };
}

/** An anonymous read-write mapping of `len` bytes starting at a multiple of `align` (2 MiB). */
export function alignedMapping(p: Process, len: number, align = 2 * MiB): number {
  const a = p.mmap(0, len + align, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const start = Math.ceil(a / align) * align;
  if (start > a) p.munmap(a, start - a);
  if (a + len + align > start + len) p.munmap(start + len, a + len + align - (start + len));
  return start;
}
