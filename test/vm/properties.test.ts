/**
 * Random syscall sequences over several processes (fork, mprotect, mlock, madvise, mremap and brk
 * included, under every vm.overcommit_memory mode) keep the page tables, reverse map, LRU lists
 * and counters — the commit charge too — consistent, and when every process has exited the
 * machine's free memory is back where it started and nothing is left charged.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import { DEFAULT_START_BRK } from '../../src/vm/mm_struct.ts';
import { FaultError, type Process } from '../../src/vm/process.ts';
import {
  MADV_COLD,
  MADV_DOFORK,
  MADV_DONTFORK,
  MADV_DONTNEED,
  MADV_DONTNEED_LOCKED,
  MADV_FREE,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MADV_PAGEOUT,
  MADV_POPULATE_WRITE,
  MADV_WIPEONFORK,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_POPULATE,
  MAP_PRIVATE,
  MCL_CURRENT,
  MCL_FUTURE,
  MCL_ONFAULT,
  MLOCK_ONFAULT,
  MREMAP_DONTUNMAP,
  MREMAP_FIXED,
  MREMAP_MAYMOVE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';

const PAGE = 4096;
/** A 64 MiB window low in the address space where MAP_FIXED mappings land and overlap. */
const WINDOW = 0x40000000;
const WINDOW_PAGES = 16384;

type Op =
  | { kind: 'spawn'; cpu: number }
  | {
      kind: 'mmap';
      proc: number;
      pages: number;
      prot: number;
      fixed: number;
      populate: boolean;
      locked: boolean;
    }
  | { kind: 'munmap'; proc: number; page: number; pages: number }
  | { kind: 'touch'; proc: number; page: number; pages: number; write: boolean }
  | { kind: 'fork'; proc: number }
  | { kind: 'exit'; proc: number }
  | { kind: 'mprotect'; proc: number; page: number; pages: number; prot: number }
  | { kind: 'mlock'; proc: number; page: number; pages: number; onfault: boolean; unlock: boolean }
  | { kind: 'mlockall'; proc: number; flags: number }
  | { kind: 'madvise'; proc: number; page: number; pages: number; advice: number }
  | {
      kind: 'mremap';
      proc: number;
      page: number;
      pages: number;
      newPages: number;
      flags: number;
      target: number;
    }
  | { kind: 'brk'; proc: number; pages: number }
  | { kind: 'overcommit'; mode: number; kbytes: number };

const proc = fc.nat(7);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('spawn' as const), cpu: fc.nat(1) }) },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('mmap' as const),
      proc,
      pages: fc.integer({ min: 1, max: 2048 }),
      prot: fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE),
      fixed: fc.oneof(fc.constant(-1), fc.nat(WINDOW_PAGES - 1)),
      populate: fc.boolean(),
      locked: fc.boolean(),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('munmap' as const),
      proc,
      page: fc.nat(WINDOW_PAGES - 1),
      pages: fc.integer({ min: 1, max: 4096 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('touch' as const),
      proc,
      page: fc.nat(WINDOW_PAGES - 1),
      pages: fc.integer({ min: 1, max: 1024 }),
      write: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fork' as const), proc }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exit' as const), proc }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('mprotect' as const),
      proc,
      page: fc.nat(WINDOW_PAGES - 1),
      pages: fc.integer({ min: 1, max: 2048 }),
      prot: fc.constantFrom(PROT_NONE, PROT_READ, PROT_READ | PROT_WRITE),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('mlock' as const),
      proc,
      page: fc.nat(WINDOW_PAGES - 1),
      pages: fc.integer({ min: 1, max: 1024 }),
      onfault: fc.boolean(),
      unlock: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('mlockall' as const),
      proc,
      flags: fc.constantFrom(0, MCL_CURRENT, MCL_FUTURE, MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('madvise' as const),
      proc,
      page: fc.nat(WINDOW_PAGES - 1),
      pages: fc.integer({ min: 1, max: 2048 }),
      advice: fc.constantFrom(
        MADV_DONTNEED,
        MADV_DONTNEED_LOCKED,
        MADV_FREE,
        MADV_COLD,
        MADV_PAGEOUT,
        MADV_DONTFORK,
        MADV_DOFORK,
        MADV_WIPEONFORK,
        MADV_HUGEPAGE,
        MADV_NOHUGEPAGE,
        MADV_POPULATE_WRITE,
      ),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('mremap' as const),
      proc,
      page: fc.nat(WINDOW_PAGES - 1),
      pages: fc.integer({ min: 1, max: 1024 }),
      newPages: fc.integer({ min: 1, max: 1024 }),
      flags: fc.constantFrom(
        0,
        MREMAP_MAYMOVE,
        MREMAP_MAYMOVE | MREMAP_FIXED,
        MREMAP_MAYMOVE | MREMAP_DONTUNMAP,
      ),
      target: fc.nat(WINDOW_PAGES - 1),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('brk' as const),
      proc,
      pages: fc.integer({ min: 0, max: 512 }),
    }),
  },
  {
    weight: 2,
    // vm.overcommit_memory (mostly 2, where charges get refused) and a commit limit of
    // 16..256 MiB (overcommit_kbytes), around what the 64 MiB window and its forks need.
    arbitrary: fc.record({
      kind: fc.constant('overcommit' as const),
      mode: fc.constantFrom(0, 1, 2, 2),
      kbytes: fc.integer({ min: 16384, max: 262144 }),
    }),
  },
);

/** Run a syscall, accepting the failures Linux allows (errno or a fault signal). */
function tolerate(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ErrnoError) && !(e instanceof FaultError)) throw e;
  }
}

describe('random syscall sequences', () => {
  test.prop([fc.array(op, { minLength: 20, maxLength: 120 })], { numRuns: 15 })(
    'keep the VM consistent and give everything back',
    (ops) => {
      const m = Machine.boot({ memory: '1G', cpus: 2, seed: 9, swap: '256M' });
      m.kernel.drain_all_pages();
      const boot = m.readFile('/proc/buddyinfo');
      const procs: Process[] = [m.spawn()];
      // A mapped window, so that the range syscalls find whole VMAs more often than holes.
      procs[0].mmap(
        WINDOW,
        WINDOW_PAGES * PAGE,
        PROT_READ | PROT_WRITE,
        MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
      );
      const pick = (i: number): Process | undefined => {
        const live = procs.filter((p) => !p.exited);
        return live.length ? live[i % live.length] : undefined;
      };
      ops.forEach((o, i) => {
        if (o.kind === 'spawn') procs.push(m.spawn({ cpu: o.cpu }));
        else if (o.kind === 'overcommit') {
          m.writeFile('/proc/sys/vm/overcommit_kbytes', String(o.kbytes));
          m.writeFile('/proc/sys/vm/overcommit_memory', String(o.mode));
        } else if (o.kind === 'exit') pick(o.proc)?.exit();
        else if (o.kind === 'fork') {
          const p = pick(o.proc);
          if (p) tolerate(() => procs.push(p.fork()));
        } else {
          const p = pick(o.proc);
          if (!p) return;
          if (o.kind === 'mmap') {
            const flags =
              MAP_PRIVATE |
              MAP_ANONYMOUS |
              (o.fixed >= 0 ? MAP_FIXED : 0) |
              (o.populate ? MAP_POPULATE : 0) |
              (o.locked ? MAP_LOCKED : 0);
            tolerate(() => p.mmap(o.fixed >= 0 ? WINDOW + o.fixed * PAGE : 0, o.pages * PAGE, o.prot, flags));
          } else if (o.kind === 'munmap') tolerate(() => p.munmap(WINDOW + o.page * PAGE, o.pages * PAGE));
          else if (o.kind === 'touch')
            tolerate(() => p.touch(WINDOW + o.page * PAGE, o.pages * PAGE, { write: o.write }));
          else if (o.kind === 'mprotect')
            tolerate(() => p.mprotect(WINDOW + o.page * PAGE, o.pages * PAGE, o.prot));
          else if (o.kind === 'mlock') {
            const addr = WINDOW + o.page * PAGE;
            if (o.unlock) tolerate(() => p.munlock(addr, o.pages * PAGE));
            else tolerate(() => p.mlock2(addr, o.pages * PAGE, o.onfault ? MLOCK_ONFAULT : 0));
          } else if (o.kind === 'mlockall') tolerate(() => (o.flags ? p.mlockall(o.flags) : p.munlockall()));
          else if (o.kind === 'madvise')
            tolerate(() => p.madvise(WINDOW + o.page * PAGE, o.pages * PAGE, o.advice));
          else if (o.kind === 'mremap') {
            // MREMAP_DONTUNMAP moves without resizing.
            const newPages = o.flags & MREMAP_DONTUNMAP ? o.pages : o.newPages;
            tolerate(() =>
              p.mremap(
                WINDOW + o.page * PAGE,
                o.pages * PAGE,
                newPages * PAGE,
                o.flags,
                WINDOW + o.target * PAGE,
              ),
            );
          } else tolerate(() => p.brk(DEFAULT_START_BRK + o.pages * PAGE));
        }
        if ((i + 1) % 40 === 0) expect(m.invariantViolations()).toEqual([]);
      });
      expect(m.invariantViolations()).toEqual([]);
      for (const p of procs) p.exit();
      m.kernel.drain_all_pages();
      expect(m.vm.pt.count).toBe(0);
      expect(m.vm.vmas.count).toBe(0);
      expect(m.vm.anon.count).toBe(0);
      // Only what the kernel itself leaks (mremap, see mremap.ts) stays charged.
      expect(m.vm.vm_committed_as).toBe(m.vm.vm_committed_leaked);
      expect(m.readFile('/proc/buddyinfo')).toBe(boot);
      expect(m.invariantViolations()).toEqual([]);
    },
  );
});
