/** Per-size THP controls: hugepages-<size>kB/enabled formats and writes, their effect on PMD THPs, stats. */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/sim/machine.ts';
import { huge_pmd_entry } from '../../src/vm/huge_memory.ts';
import { khugepaged_state } from '../../src/vm/khugepaged.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { errno, MiB, PG, vmstat } from './helpers.ts';

const DIR = '/sys/kernel/mm/transparent_hugepage';
const SIZES = [16, 32, 64, 128, 256, 512, 1024, 2048];

function boot(thp: 'always' | 'madvise' | 'never'): Machine {
  return Machine.boot({
    memory: '256M',
    cpus: 2,
    thp,
    early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
  });
}

/** Write-fault the first aligned 2 MiB of a fresh mapping; whether a PMD maps it. */
function faultHuge(m: Machine): boolean {
  const p = m.spawn();
  const raw = p.mmap(0, 4 * MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  const a = Math.ceil(raw / (2 * MiB)) * 2 * MiB;
  p.touch(a, PG, { write: true });
  return huge_pmd_entry(m.vm, p.mm, a / PG) >= 0;
}

describe('hugepages-<size>kB', () => {
  it('has the anonymous sizes 16kB..2048kB: PMD size inherit, the others never', () => {
    const m = boot('madvise');
    for (const kb of SIZES) {
      const want = kb === 2048 ? 'always [inherit] madvise never\n' : 'always inherit madvise [never]\n';
      expect(m.readFile(`${DIR}/hugepages-${kb}kB/enabled`)).toBe(want);
    }
    expect(errno(() => m.readFile(`${DIR}/hugepages-8kB/enabled`))).toBe('ENOENT');
    expect(errno(() => m.readFile(`${DIR}/hugepages-4096kB/enabled`))).toBe('ENOENT');
  });

  it('takes always, inherit, madvise and never (one trailing newline); EINVAL for anything else', () => {
    const m = boot('madvise');
    const f = `${DIR}/hugepages-64kB/enabled`;
    m.writeFile(f, 'always\n');
    expect(m.readFile(f)).toBe('[always] inherit madvise never\n');
    m.writeFile(f, 'madvise');
    expect(m.readFile(f)).toBe('always inherit [madvise] never\n');
    m.writeFile(f, 'inherit');
    expect(m.readFile(f)).toBe('always [inherit] madvise never\n');
    for (const bad of ['', 'Always', 'never\n\n', '[never]', 'on'])
      expect(errno(() => m.writeFile(f, bad))).toBe('EINVAL');
    expect(m.readFile(f)).toBe('always [inherit] madvise never\n');
  });

  it('the PMD size decides PMD THP faults and khugepaged, overriding or inheriting enabled', () => {
    const m = boot('always');
    expect(faultHuge(m)).toBe(true);
    m.writeFile(`${DIR}/hugepages-2048kB/enabled`, 'never');
    expect(khugepaged_state(m.vm).started).toBe(false);
    expect(faultHuge(m)).toBe(false);
    const n = boot('never');
    expect(faultHuge(n)).toBe(false);
    n.writeFile(`${DIR}/hugepages-2048kB/enabled`, 'always');
    expect(khugepaged_state(n.vm).started).toBe(true);
    expect(faultHuge(n)).toBe(true);
    // madvise at the PMD size needs MADV_HUGEPAGE even with enabled=always.
    const o = boot('always');
    o.writeFile(`${DIR}/hugepages-2048kB/enabled`, 'madvise');
    expect(faultHuge(o)).toBe(false);
    for (const x of [m, n, o]) x.checkInvariants();
  });

  it('stats: the PMD size mirrors thp_fault_alloc and counts its folios; other sizes read 0', () => {
    const m = boot('always');
    faultHuge(m);
    faultHuge(m);
    const stat = (kb: number, name: string): number =>
      Number(m.readFile(`${DIR}/hugepages-${kb}kB/stats/${name}`));
    expect(stat(2048, 'anon_fault_alloc')).toBe(vmstat(m, 'thp_fault_alloc'));
    expect(stat(2048, 'anon_fault_alloc')).toBe(2);
    expect(stat(2048, 'nr_anon')).toBe(2);
    expect(stat(2048, 'nr_anon_partially_mapped')).toBe(0);
    expect(stat(16, 'anon_fault_alloc')).toBe(0);
    expect(stat(16, 'split')).toBe(0);
  });
});
