/**
 * Overcommit accounting (mm/util.c __vm_enough_memory() and its callers): what is charged to
 * vm_committed_as (Committed_AS) by mmap, brk, mprotect, mremap and fork, what unmapping and exit
 * give back, and when vm.overcommit_memory 0, 1 and 2 refuse a charge with ENOMEM. The deltas were
 * measured on our 6.18 machines (mode 0) with the same sequences.
 */
import { describe, expect, it } from 'vitest';
import type { Machine } from '../../src/sim/machine.ts';
import { mmap_region } from '../../src/vm/mmap.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MADV_DONTFORK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { VM_ACCOUNT, VM_IO, VM_LOCKED, VM_NORESERVE, VM_READ, VM_WRITE } from '../../src/vm/vma.ts';
import { boot, errno, meminfo, PG, vmas } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/** A machine in mode 2 with a commit limit of exactly `limit` pages (overcommit_kbytes). */
function strict(limit: number) {
  const b = boot();
  b.m.writeFile('/proc/sys/vm/overcommit_kbytes', String(limit * 4));
  b.m.writeFile('/proc/sys/vm/overcommit_memory', '2');
  return b;
}

/** The flags of the VMA containing `addr`. */
function flagsAt(m: Machine, p: Process, addr: number): number {
  return m.vm.vmas.vm_flags[p.mm.mt.walk(addr)];
}

describe('what is charged', () => {
  it('private writable mappings, in pages, shown as Committed_AS; munmap gives back exactly', () => {
    const { m, p } = boot();
    expect(m.vm.vm_committed_as).toBe(0);
    const a = p.mmap(0, 1000 * PG, RW, ANON);
    expect(m.vm.vm_committed_as).toBe(1000);
    expect(meminfo(m, 'Committed_AS')).toBe(4000);
    expect(flagsAt(m, p, a) & VM_ACCOUNT).toBe(VM_ACCOUNT);
    // Read-only and PROT_NONE mappings are not charged; shared memory is not VM_ACCOUNT (shmem
    // charges its own object instead, see below).
    p.mmap(0, 300 * PG, PROT_READ, ANON);
    p.mmap(0, 300 * PG, PROT_NONE, ANON);
    const s = p.mmap(0, 300 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    expect(flagsAt(m, p, s) & VM_ACCOUNT).toBe(0);
    p.munmap(s, 300 * PG);
    expect(m.vm.vm_committed_as).toBe(1000);
    // A hole in the middle splits the VMA; both halves stay charged.
    p.munmap(a + 100 * PG, 50 * PG);
    expect(m.vm.vm_committed_as).toBe(950);
    p.munmap(a, 1000 * PG);
    expect(m.vm.vm_committed_as).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('exit gives back every charge of the address space', () => {
    const { m, p } = boot();
    p.mmap(0, 700 * PG, RW, ANON);
    const q = m.spawn({ uid: 1000 });
    const b = q.mmap(0, 300 * PG, RW, ANON);
    q.touch(b, 300 * PG, { write: true });
    q.mprotect(b + 10 * PG, 10 * PG, PROT_READ); // anon_vma: the charge stays on the read-only part
    expect(m.vm.vm_committed_as).toBe(1000);
    q.exit();
    expect(m.vm.vm_committed_as).toBe(700);
    p.exit();
    expect(m.vm.vm_committed_as).toBe(0);
    expect(meminfo(m, 'Committed_AS')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('MAP_FIXED over charged pages charges only the difference; read-only over them uncharges', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, RW, ANON);
    p.mmap(a + 500 * PG, 1000 * PG, RW, ANON | MAP_FIXED); // 500 replaced, 500 new
    expect(m.vm.vm_committed_as).toBe(1500);
    p.mmap(a + 200 * PG, 100 * PG, PROT_READ, ANON | MAP_FIXED);
    expect(m.vm.vm_committed_as).toBe(1400);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('brk charges what the heap grows by and gives back what it shrinks by', () => {
    const { m, p } = boot();
    const start = p.brk(0);
    expect(p.brk(start + 256 * PG)).toBe(start + 256 * PG);
    expect(m.vm.vm_committed_as).toBe(256);
    expect(flagsAt(m, p, start) & VM_ACCOUNT).toBe(VM_ACCOUNT);
    p.brk(start + 100 * PG);
    expect(m.vm.vm_committed_as).toBe(100);
    p.brk(start);
    expect(m.vm.vm_committed_as).toBe(0);
  });
});

describe('vm.overcommit_memory = 0 (heuristic)', () => {
  it('refuses only a single request larger than RAM (no swap), however much is committed', () => {
    const { m, p } = boot();
    const ram = m.mm.totalram_pages;
    const a = p.mmap(0, ram * PG, RW, ANON);
    expect(errno(() => p.mmap(0, (ram + 1) * PG, RW, ANON))).toBe('ENOMEM');
    expect(m.vm.vm_committed_as).toBe(ram); // the refused charge was undone
    // Two more RAM-sized mappings: three times RAM committed.
    p.mmap(0, ram * PG, RW, ANON);
    p.mmap(0, ram * PG, RW, ANON);
    expect(m.vm.vm_committed_as).toBe(3 * ram);
    expect(m.mm.klog.at(-1)).toBe(
      `__vm_enough_memory: pid: ${p.pid}, comm: proc, bytes: ${(ram + 1) * PG} not enough memory for the allocation`,
    );
    p.munmap(a, ram * PG);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('MAP_NORESERVE is honoured: no charge, no VM_ACCOUNT, any size', () => {
    const { m, p } = boot();
    const ram = m.mm.totalram_pages;
    const a = p.mmap(0, 4 * ram * PG, RW, ANON | MAP_NORESERVE);
    expect(m.vm.vm_committed_as).toBe(0);
    expect(flagsAt(m, p, a) & (VM_ACCOUNT | VM_NORESERVE)).toBe(VM_NORESERVE);
    // Nor does making it writable again charge it.
    p.mprotect(a, PG, PROT_READ);
    p.mprotect(a, PG, RW);
    expect(m.vm.vm_committed_as).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('vm.overcommit_memory = 1 (always)', () => {
  it('never refuses', () => {
    const { m, p } = boot();
    m.writeFile('/proc/sys/vm/overcommit_memory', '1');
    const ram = m.mm.totalram_pages;
    p.mmap(0, 8 * ram * PG, RW, ANON);
    expect(m.vm.vm_committed_as).toBe(8 * ram);
    expect(meminfo(m, 'Committed_AS')).toBe(8 * ram * 4);
  });
});

describe('vm.overcommit_memory = 2 (never)', () => {
  it('CommitLimit is overcommit_kbytes, or the ratio of RAM', () => {
    const { m } = strict(10000);
    expect(meminfo(m, 'CommitLimit')).toBe(40000);
    m.writeFile('/proc/sys/vm/overcommit_ratio', '25');
    expect(meminfo(m, 'CommitLimit')).toBe(Math.floor((m.mm.totalram_pages * 25) / 100) * 4);
  });

  it('refuses at the limit less the admin reserve, with ENOMEM and nothing charged', () => {
    const { m } = strict(10000);
    const user = m.spawn({ uid: 1000 });
    // allowed = 10000 - admin_reserve (8192 kB = 2048 pages); Committed_AS must stay below it.
    expect(errno(() => user.mmap(0, 7952 * PG, RW, ANON))).toBe('ENOMEM');
    expect(m.vm.vm_committed_as).toBe(0);
    expect(vmas(m, user)).toEqual([]);
    user.mmap(0, 7951 * PG, RW, ANON);
    expect(m.vm.vm_committed_as).toBe(7951);
    expect(errno(() => user.mmap(0, PG, RW, ANON))).toBe('ENOMEM');
    expect(m.invariantViolations()).toEqual([]);
  });

  it('CAP_SYS_ADMIN may use the admin reserve', () => {
    const { m, p } = strict(10000);
    const user = m.spawn({ uid: 1000 });
    user.mmap(0, 7951 * PG, RW, ANON);
    // Root's allowance is the whole limit: 10000 - 1 - 7951 pages more.
    expect(errno(() => p.mmap(0, 2049 * PG, RW, ANON))).toBe('ENOMEM');
    p.mmap(0, 2048 * PG, RW, ANON);
    expect(m.vm.vm_committed_as).toBe(9999);
    expect(errno(() => p.mmap(0, PG, RW, ANON))).toBe('ENOMEM');
  });

  it('keeps a user reserve of min(total_vm / 32, user_reserve_kbytes) from the asking process', () => {
    const { m, p } = strict(10000);
    // 32000 pages of PROT_NONE: uncharged, but total_vm / 32 = 1000 pages of reserve.
    p.mmap(0, 32000 * PG, PROT_NONE, ANON);
    expect(errno(() => p.mmap(0, 9000 * PG, RW, ANON))).toBe('ENOMEM');
    const a = p.mmap(0, 8999 * PG, RW, ANON);
    p.munmap(a, 8999 * PG);
    // user_reserve_kbytes caps it: 400 kB = 100 pages.
    m.writeFile('/proc/sys/vm/user_reserve_kbytes', '400');
    expect(errno(() => p.mmap(0, 9900 * PG, RW, ANON))).toBe('ENOMEM');
    p.mmap(0, 9899 * PG, RW, ANON);
  });

  it('ignores MAP_NORESERVE: the mapping is charged and can be refused', () => {
    const { m, p } = strict(10000);
    const a = p.mmap(0, 5000 * PG, RW, ANON | MAP_NORESERVE);
    expect(flagsAt(m, p, a) & (VM_ACCOUNT | VM_NORESERVE)).toBe(VM_ACCOUNT);
    expect(m.vm.vm_committed_as).toBe(5000);
    expect(errno(() => p.mmap(0, 5000 * PG, RW, ANON | MAP_NORESERVE))).toBe('ENOMEM');
    // What was mapped with MAP_NORESERVE under mode 0 stays uncharged.
    m.writeFile('/proc/sys/vm/overcommit_memory', '0');
    p.mmap(0, 5000 * PG, RW, ANON | MAP_NORESERVE);
    expect(m.vm.vm_committed_as).toBe(5000);
  });

  it('a refused MAP_FIXED leaves the old mapping in place; replacing charged pages needs no room', () => {
    const { m, p } = strict(10000);
    const a = p.mmap(0, 9000 * PG, RW, ANON);
    p.touch(a, PG, { write: true });
    const ro = p.mmap(0, 2000 * PG, PROT_READ, ANON);
    expect(errno(() => p.mmap(ro, 2000 * PG, RW, ANON | MAP_FIXED))).toBe('ENOMEM');
    expect(vmas(m, p, ro, ro + 2000 * PG)).toHaveLength(1);
    expect(flagsAt(m, p, ro) & VM_WRITE).toBe(0);
    // Over the charged mapping: 9000 pages replaced, none new.
    p.mmap(a, 9000 * PG, RW, ANON | MAP_FIXED);
    expect(m.vm.vm_committed_as).toBe(9000);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('brk growth is refused (brk returns the old end)', () => {
    const { m, p } = strict(10000);
    const start = p.brk(0);
    expect(p.brk(start + 9999 * PG)).toBe(start + 9999 * PG);
    expect(p.brk(start + 10000 * PG)).toBe(start + 9999 * PG);
    expect(m.vm.vm_committed_as).toBe(9999);
  });
});

describe('mprotect', () => {
  it('charges a private mapping turning writable; read-only before any fault gives it back', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, PROT_READ, ANON);
    p.mprotect(a + 100 * PG, 10 * PG, RW);
    expect(m.vm.vm_committed_as).toBe(10);
    p.mprotect(a, 1000 * PG, RW);
    expect(m.vm.vm_committed_as).toBe(1000);
    expect(vmas(m, p, a, a + 1000 * PG)).toHaveLength(1); // merged again, all VM_ACCOUNT
    p.mprotect(a, 1000 * PG, PROT_READ);
    expect(m.vm.vm_committed_as).toBe(0);
    expect(flagsAt(m, p, a) & VM_ACCOUNT).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('keeps the charge once the mapping has anonymous pages, and does not charge twice', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, RW, ANON);
    p.touch(a, PG, { write: true });
    p.mprotect(a, 1000 * PG, PROT_READ);
    expect(m.vm.vm_committed_as).toBe(1000);
    expect(flagsAt(m, p, a) & VM_ACCOUNT).toBe(VM_ACCOUNT);
    p.mprotect(a, 1000 * PG, RW);
    expect(m.vm.vm_committed_as).toBe(1000);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('mode 2: refused with ENOMEM, the range keeps its protection', () => {
    const { m, p } = strict(10000);
    p.mmap(0, 5000 * PG, RW, ANON);
    const a = p.mmap(0, 6000 * PG, PROT_READ, ANON);
    // total_vm 11000: a user reserve of 343 pages, so 9657 allowed.
    expect(errno(() => p.mprotect(a, 6000 * PG, RW))).toBe('ENOMEM');
    expect(flagsAt(m, p, a) & (VM_ACCOUNT | VM_WRITE)).toBe(0);
    expect(m.vm.vm_committed_as).toBe(5000);
    expect(errno(() => p.mprotect(a, 4657 * PG, RW))).toBe('ENOMEM');
    p.mprotect(a, 4656 * PG, RW);
    expect(m.vm.vm_committed_as).toBe(9656);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('fork', () => {
  it('charges the child its VM_ACCOUNT VMAs, not VM_DONTCOPY ones; its exit gives them back', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, RW, ANON);
    p.touch(a, 10 * PG, { write: true });
    p.mmap(0, 500 * PG, PROT_READ, ANON);
    const d = p.mmap(0, 200 * PG, RW, ANON);
    p.madvise(d, 200 * PG, MADV_DONTFORK);
    expect(m.vm.vm_committed_as).toBe(1200);
    const child = p.fork();
    expect(m.vm.vm_committed_as).toBe(2200);
    expect(m.invariantViolations()).toEqual([]);
    child.exit();
    expect(m.vm.vm_committed_as).toBe(1200);
  });

  it('mode 2: fails with ENOMEM when the copies do not fit, charging nothing', () => {
    const { m, p } = strict(10000);
    p.mmap(0, 3000 * PG, RW, ANON);
    p.mmap(0, 2000 * PG, RW, ANON);
    // total_vm 5000 leaves 9844 allowed: the first copy (2000) fits, the second does not; the
    // first one's charge is given back with the half-built child.
    expect(errno(() => p.fork())).toBe('ENOMEM');
    expect(m.vm.vm_committed_as).toBe(5000);
    expect(m.vm.mms.filter(Boolean)).toHaveLength(1);
    expect(m.invariantViolations()).toEqual([]);
    m.writeFile('/proc/sys/vm/overcommit_kbytes', String(12000 * 4));
    p.fork();
    expect(m.vm.vm_committed_as).toBe(10000);
  });
});

describe('mremap', () => {
  it('growing in place charges the growth; shrinking gives it back', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 100 * PG, RW, ANON);
    expect(p.mremap(a, 100 * PG, 300 * PG)).toBe(a);
    expect(m.vm.vm_committed_as).toBe(300);
    p.mremap(a, 300 * PG, 50 * PG);
    expect(m.vm.vm_committed_as).toBe(50);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a move charges the size difference; the charge follows the pages', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, RW, ANON);
    p.touch(a, 1000 * PG, { write: true });
    // Move the middle 250 pages, growing them to 500: +250.
    const b = p.mremap(a + 250 * PG, 250 * PG, 500 * PG, MREMAP_MAYMOVE);
    expect(b).not.toBe(a + 250 * PG);
    expect(m.vm.vm_committed_as).toBe(1250);
    for (const addr of [a, a + 500 * PG, b]) expect(flagsAt(m, p, addr) & VM_ACCOUNT).toBe(VM_ACCOUNT);
    expect(m.invariantViolations()).toEqual([]);
    p.munmap(b, 500 * PG);
    expect(m.vm.vm_committed_as).toBe(750);
  });

  it('MREMAP_DONTUNMAP charges the new range; the old one keeps its charge (6.18)', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, RW, ANON);
    p.touch(a, PG, { write: true });
    const b = p.mremap(a, 1000 * PG, 1000 * PG, MREMAP_MAYMOVE | MREMAP_DONTUNMAP);
    expect(m.vm.vm_committed_as).toBe(2000);
    expect(flagsAt(m, p, a) & VM_ACCOUNT).toBe(VM_ACCOUNT);
    p.munmap(b, 1000 * PG);
    p.munmap(a, 1000 * PG);
    expect(m.vm.vm_committed_as).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a MREMAP_FIXED move that shrinks charges the shrink again, for good (as 6.18 does)', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, RW, ANON);
    const target = p.mmap(0, 600 * PG, PROT_NONE, ANON);
    p.munmap(target, 600 * PG);
    p.mremap(a, 1000 * PG, 500 * PG, MREMAP_MAYMOVE | MREMAP_FIXED, target);
    expect(m.vm.vm_committed_as).toBe(1000);
    p.munmap(target, 500 * PG);
    expect(m.vm.vm_committed_as).toBe(500);
    expect(m.vm.vm_committed_leaked).toBe(500);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('mode 2: growth refused with ENOMEM, the mapping unchanged', () => {
    const { m, p } = strict(10000);
    const a = p.mmap(0, 9000 * PG, RW, ANON);
    expect(errno(() => p.mremap(a, 9000 * PG, 11000 * PG, MREMAP_MAYMOVE))).toBe('ENOMEM');
    expect(vmas(m, p)).toEqual([[a, a + 9000 * PG, expect.any(Number)]]);
    expect(m.vm.vm_committed_as).toBe(9000);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('mmap_region', () => {
  it('a VM_SPECIAL mapping loses VM_LOCKED instead of counting in locked_vm', () => {
    const { m, p } = boot();
    const vm = m.vm;
    const addr = 0x40000000;
    const vma = mmap_region(vm, p.mm, addr, 16 * PG, VM_READ | VM_IO | VM_LOCKED, addr / PG);
    expect(vm.vmas.vm_flags[vma] & VM_LOCKED).toBe(0);
    expect(p.mm.locked_vm).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('the invariant checker', () => {
  it('notices a charge no source accounts for', () => {
    const { m, p } = boot();
    p.mmap(0, 10 * PG, RW, ANON);
    m.vm.vm_committed_as++;
    expect(m.invariantViolations().join('\n')).toMatch(
      /vm_committed_as 11 but its sources hold 10 \(VM_ACCOUNT VMAs 10, leaked 0, shmem 0\)/,
    );
  });
});

describe('shared memory and tmpfs (shmem_acct_size, shmem_acct_blocks)', () => {
  it('charges a shared anonymous mapping for its size at mmap and gives it back with its last user', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, RW, MAP_SHARED | MAP_ANONYMOUS);
    expect(meminfo(m, 'Committed_AS')).toBe(4000);
    const child = p.fork(); // the child shares the same object: no new charge
    expect(meminfo(m, 'Committed_AS')).toBe(4000);
    p.munmap(a, 1000 * PG);
    expect(meminfo(m, 'Committed_AS')).toBe(4000);
    child.exit();
    expect(meminfo(m, 'Committed_AS')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('charges MAP_NORESERVE shared memory and tmpfs files page by page as they fill', () => {
    const { m, p } = boot();
    const a = p.mmap(0, 1000 * PG, RW, MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE);
    expect(meminfo(m, 'Committed_AS')).toBe(0);
    p.touch(a, 10 * PG, { write: true });
    expect(meminfo(m, 'Committed_AS')).toBe(40);
    const fd = p.open('/dev/shm/seg', 0o102); // O_CREAT | O_RDWR
    p.write(fd, 25 * PG);
    expect(meminfo(m, 'Committed_AS')).toBe(140);
    p.ftruncate(fd, 5 * PG);
    expect(meminfo(m, 'Committed_AS')).toBe(60);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('refuses shared memory and tmpfs pages beyond the commit limit in mode 2', () => {
    const { m, p } = strict(2000);
    expect(errno(() => p.mmap(0, 3000 * PG, RW, MAP_SHARED | MAP_ANONYMOUS))).toBe('ENOMEM');
    expect(meminfo(m, 'Committed_AS')).toBe(0);
    const fd = p.open('/dev/shm/big', 0o102);
    expect(errno(() => p.write(fd, 3000 * PG))).toBe('ok'); // a short write: as far as the limit
    expect(meminfo(m, 'Committed_AS')).toBeLessThan(2000 * 4);
    expect(errno(() => p.write(fd, PG))).toBe('ENOMEM');
    expect(m.invariantViolations()).toEqual([]);
  });
});
