/**
 * fork(2): the child shares the parent's anonymous pages copy-on-write, MADV_DONTFORK-style
 * VM_DONTCOPY mappings stay behind, memory locks are not inherited, and either side's exit
 * leaves the other intact.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/sim/machine.ts';
import { walk_pte_table } from '../../src/vm/memory.ts';
import { _PAGE_RW, PTRS_PER_TABLE, pte_index } from '../../src/vm/pgtable.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { VM_DONTCOPY } from '../../src/vm/vma.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function pte(m: Machine, p: Process, addr: number): { pfn: number; bits: number } {
  const vpn = addr / 4096;
  const t = walk_pte_table(m.vm, p.mm, vpn);
  const e = t * PTRS_PER_TABLE + pte_index(vpn);
  return { pfn: m.vm.pt.pfn[e], bits: m.vm.pt.bits[e] };
}

describe('fork', () => {
  it('shares pages copy-on-write until one side writes', () => {
    const m = Machine.boot({ memory: '1G', cpus: 2 });
    const parent = m.spawn();
    const a = parent.mmap(0, 8 * 4096, RW, ANON | MAP_POPULATE);
    const child = parent.fork();
    const shared = pte(m, parent, a).pfn;
    expect(pte(m, child, a).pfn).toBe(shared);
    expect(m.mm.frames.mapcount[shared]).toBe(2);
    expect(pte(m, parent, a).bits & _PAGE_RW).toBe(0);
    expect(child.mm.rss[1]).toBe(8);
    expect(m.invariantViolations()).toEqual([]);
    child.touch(a, 1, { write: true });
    expect(pte(m, child, a).pfn).not.toBe(shared);
    expect(m.mm.frames.mapcount[shared]).toBe(1);
    // The parent, now the only user, reuses its page in place on its next write.
    parent.touch(a, 1, { write: true });
    expect(pte(m, parent, a).pfn).toBe(shared);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('leaves VM_DONTCOPY mappings and memory locks behind', () => {
    const m = Machine.boot({ memory: '1G', cpus: 2 });
    const parent = m.spawn();
    const kept = parent.mmap(0, 4096, RW, ANON | MAP_POPULATE | MAP_LOCKED);
    const dontfork = parent.mmap(0x10000000, 4096, RW, ANON | MAP_POPULATE);
    m.vm.vmas.vm_flags[parent.mm.mt.walk(dontfork)] |= VM_DONTCOPY;
    const child = parent.fork();
    expect(child.mm.mt.walk(dontfork)).toBe(-1);
    expect(child.mm.mt.walk(kept)).toBeGreaterThanOrEqual(0);
    expect(child.mm.locked_vm).toBe(0);
    expect(parent.mm.locked_vm).toBe(1);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('gives everything back when both sides exit, in either order', () => {
    for (const childFirst of [true, false]) {
      const m = Machine.boot({ memory: '1G', cpus: 2 });
      m.kernel.drain_all_pages();
      const boot = m.readFile('/proc/buddyinfo');
      const parent = m.spawn();
      const a = parent.mmap(0, 4 * 2 ** 20, RW, ANON | MAP_POPULATE);
      const child = parent.fork();
      child.touch(a, 2 ** 20, { write: true });
      const grandchild = child.fork();
      (childFirst ? child : parent).exit();
      expect(m.invariantViolations()).toEqual([]);
      grandchild.touch(a, 4 * 2 ** 20, { write: true });
      (childFirst ? parent : child).exit();
      grandchild.exit();
      m.kernel.drain_all_pages();
      expect(m.readFile('/proc/buddyinfo')).toBe(boot);
      expect(m.invariantViolations()).toEqual([]);
    }
  });
});
