/**
 * /proc/<pid>/pagemap: one u64 per virtual page, bit 63 present, 56 exclusively mapped, 61 file
 * or shared anon, 55 soft-dirty (only with CONFIG_MEM_SOFT_DIRTY, which our machines' kernel
 * lacks), bits 0-54 the PFN for readers holding CAP_SYS_ADMIN and 0 for others. Values as the
 * real kernel gave them (test/fixtures/real-6.18-fc/kpageflags-samples.json, pagemap_root).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PM_MMAP_EXCLUSIVE, PM_PRESENT, PM_SOFT_DIRTY, pagemap_read } from '../../src/fs/proc/task_mmu.ts';
import type { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import { walk_pte_table } from '../../src/vm/memory.ts';
import type { Process } from '../../src/vm/process.ts';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';

const SAMPLES = JSON.parse(
  readFileSync(
    join(import.meta.dirname, '..', 'fixtures', 'real-6.18-fc', 'kpageflags-samples.json'),
    'utf8',
  ),
) as { pagemap_root: Record<string, string> };
const real = (name: string): bigint => BigInt(SAMPLES.pagemap_root[name]);
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const RW = PROT_READ | PROT_WRITE;
const PFN = (1n << 55n) - 1n;

function u64s(bytes: Uint8Array): bigint[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: bigint[] = [];
  for (let i = 0; i < bytes.length; i += 8) out.push(v.getBigUint64(i, true));
  return out;
}

/** The entries of `n` pages from `addr` in `p`'s pagemap, read as `reader` (root by default). */
function pagemap(
  m: Machine,
  p: Process,
  addr: number,
  n: number,
  reader?: Parameters<Machine['readFile']>[1],
) {
  return u64s(
    m.readFileBytes(`/proc/${p.pid}/pagemap`, { offset: (addr / 4096) * 8, length: n * 8 }, reader),
  );
}

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as ErrnoError).code;
  }
  return undefined;
}

/** A process with one written page, one read (zero) page and one untouched page. */
function setup(opts: Parameters<Machine['spawn']>[0] = {}) {
  const m = Machine.boot({ memory: '1G', cpus: 2, seed: 1 });
  const p = m.spawn(opts);
  const a = p.mmap(0, 3 * 4096, RW, ANON);
  p.touch(a, 4096, { write: true });
  p.touch(a + 4096, 4096);
  return { m, p, a };
}

describe('entries, read by root', () => {
  it('written page: present, exclusive, its PFN; zero page: present, its PFN; untouched: 0', () => {
    const { m, p, a } = setup();
    const [w, z, u] = pagemap(m, p, a, 3);
    expect(w & ~PFN).toBe(real('anon_written_exclusive_flags'));
    const vpn = a / 4096;
    expect(Number(w & PFN)).toBe(m.vm.pt.pfn[walk_pte_table(m.vm, p.mm, vpn) * 512 + (vpn % 512)]);
    expect(m.mm.frames.mapcount[Number(w & PFN)]).toBe(1);
    // The zero page: present with its PFN, neither exclusive nor file (vm_normal_page() is NULL).
    expect(z & ~PFN).toBe(real('zero_page_read_fault') & ~PFN);
    expect(Number(z & PFN)).toBe(m.mm.zero_pfn);
    expect(u).toBe(real('untouched_in_vma'));
  });

  it('pages outside every VMA read 0', () => {
    const { m, p, a } = setup();
    expect(pagemap(m, p, a + 3 * 4096, 4)).toEqual([0n, 0n, 0n, 0n]);
    expect(pagemap(m, p, 0, 16)).toEqual(Array(16).fill(0n));
  });

  it('a page shared with a fork child is not exclusive; a copy-on-write copy is', () => {
    const { m, p, a } = setup();
    const [before] = pagemap(m, p, a, 1);
    const child = p.fork();
    const [shared] = pagemap(m, child, a, 1);
    expect(shared & ~PFN).toBe(real('anon_after_fork_in_child_flags'));
    expect(shared & PFN).toBe(before & PFN);
    child.touch(a, 8, { write: true });
    const [copy] = pagemap(m, child, a, 1);
    expect(copy & PM_MMAP_EXCLUSIVE).toBe(PM_MMAP_EXCLUSIVE);
    expect(copy & PFN).not.toBe(before & PFN);
    // The parent's page is mapped once again.
    expect(pagemap(m, p, a, 1)[0] & PM_MMAP_EXCLUSIVE).toBe(PM_MMAP_EXCLUSIVE);
  });
});

describe('who sees what', () => {
  it('PFNs only for CAP_SYS_ADMIN: a user reading its own pagemap gets the flags alone', () => {
    const { m, p, a } = setup({ uid: 1000, gid: 1000 });
    const asRoot = pagemap(m, p, a, 2);
    const asSelf = pagemap(m, p, a, 2, p);
    expect(asSelf).toEqual(asRoot.map((e) => e & ~PFN));
    expect(asSelf[0]).toBe(PM_PRESENT | PM_MMAP_EXCLUSIVE);
    expect(asSelf[1]).toBe(PM_PRESENT);
  });

  it('a root process without CAP_SYS_ADMIN sees no PFNs; one with it does', () => {
    const { m, p, a } = setup();
    const noAdmin = m.spawn({ uid: 0, caps: [] });
    expect(pagemap(m, p, a, 1, noAdmin)[0]).toBe(PM_PRESENT | PM_MMAP_EXCLUSIVE);
    expect(pagemap(m, p, a, 1, p)[0] & PFN).not.toBe(0n);
  });

  it('another user cannot open it (mode 0400 and the ptrace check): EACCES', () => {
    const { m, p } = setup({ uid: 1000, gid: 1000 });
    expect(
      errnoOf(() => m.readFileBytes(`/proc/${p.pid}/pagemap`, { length: 8 }, { uid: 1001, gid: 1001 })),
    ).toBe('EACCES');
    const root = m.spawn();
    expect(errnoOf(() => m.readFileBytes(`/proc/${root.pid}/pagemap`, { length: 8 }, p))).toBe('EACCES');
    expect(m.readFileBytes(`/proc/${p.pid}/pagemap`, { length: 8 }, root).length).toBe(8);
  });

  it('is gone once the process exits', () => {
    const { m, p } = setup();
    p.exit();
    expect(errnoOf(() => m.readFileBytes(`/proc/${p.pid}/pagemap`, { length: 8 }))).toBe('ENOENT');
  });
});

describe('reads', () => {
  it('offset and length must be multiples of 8 (EINVAL); length 0 reads nothing', () => {
    const { m, p } = setup();
    const path = `/proc/${p.pid}/pagemap`;
    expect(errnoOf(() => m.readFileBytes(path, { offset: 4, length: 8 }))).toBe('EINVAL');
    expect(errnoOf(() => m.readFileBytes(path, { offset: 8, length: 7 }))).toBe('EINVAL');
    expect(m.readFileBytes(path, { offset: 8, length: 0 }).length).toBe(0);
  });

  it('ends at TASK_SIZE: a read across it is cut short, one beyond it is empty', () => {
    const { m, p } = setup();
    const path = `/proc/${p.pid}/pagemap`;
    const end = (p.mm.task_size / 4096) * 8;
    expect(m.readFileBytes(path, { offset: end - 16, length: 64 }).length).toBe(16);
    expect(m.readFileBytes(path, { offset: end, length: 64 }).length).toBe(0);
    expect(m.readFileBytes(path, { offset: 2 ** 52, length: 64 }).length).toBe(0);
    expect(m.readFileBytes(path, { offset: 2 ** 60, length: 64 }).length).toBe(0);
    expect(() => m.readFileBytes(path)).toThrow(/pass a length/);
  });

  it('a long read spans VMAs, holes and page-table boundaries', () => {
    const { m, p } = setup();
    const b = p.mmap(0x40000000 - 8 * 4096, 16 * 4096, RW, ANON | MAP_FIXED); // across a 1 GiB boundary
    p.touch(b, 16 * 4096, { write: true });
    const e = pagemap(m, p, b - 4096, 18);
    expect(e[0]).toBe(0n);
    expect(e.slice(1, 17).every((x) => (x & PM_PRESENT) !== 0n)).toBe(true);
    expect(e[17]).toBe(0n);
    expect(new Set(e.slice(1, 17).map((x) => x & PFN)).size).toBe(16);
  });

  it('with CONFIG_MEM_SOFT_DIRTY every page inside a VMA is soft-dirty (VM_SOFTDIRTY), others not', () => {
    const { m, p, a } = setup();
    const bytes = pagemap_read(m.vm, p.mm, 'pagemap', ((a - 4096) / 4096) * 8, 5 * 8, {
      show_pfn: true,
      soft_dirty: true,
    });
    const e = u64s(bytes);
    expect(e.map((x) => (x & PM_SOFT_DIRTY) !== 0n)).toEqual([false, true, true, true, false]);
    expect(e[3]).toBe(PM_SOFT_DIRTY); // untouched, but inside the VMA
  });
});
