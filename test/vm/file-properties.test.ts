/**
 * Random sequences of file syscalls, file and shared mappings, faults, forks, exits, time passing
 * (the flusher) and memory pressure (reclaim) keep the page cache, the file rmap, page tables,
 * LRU lists and counters consistent; when every process has exited and every file is unlinked,
 * no page-cache page, open file or address_space is left.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FaultError, type Process } from '../../src/vm/process.ts';
import {
  MADV_COLD,
  MADV_DONTNEED,
  MADV_PAGEOUT,
  MADV_REMOVE,
  MADV_WILLNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  POSIX_FADV_DONTNEED,
  POSIX_FADV_WILLNEED,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';

const PAGE = 4096;
const PATHS = ['/data/a', '/data/b', '/dev/shm/c', '/run/d'];

type Op =
  | { kind: 'spawn' }
  | { kind: 'open'; proc: number; path: number; rdonly: boolean }
  | { kind: 'close'; proc: number; fd: number }
  | { kind: 'write'; proc: number; fd: number; page: number; pages: number }
  | { kind: 'read'; proc: number; fd: number; page: number; pages: number }
  | { kind: 'truncate'; proc: number; fd: number; pages: number }
  | { kind: 'unlink'; proc: number; path: number }
  | { kind: 'mmap'; proc: number; fd: number; page: number; pages: number; shared: boolean; write: boolean }
  | { kind: 'shanon'; proc: number; pages: number }
  | { kind: 'touch'; proc: number; map: number; page: number; pages: number; write: boolean }
  | { kind: 'munmap'; proc: number; map: number }
  | { kind: 'madvise'; proc: number; map: number; advice: number }
  | { kind: 'mlock'; proc: number; map: number }
  | { kind: 'fadvise'; proc: number; fd: number; advice: number }
  | { kind: 'fsync'; proc: number; fd: number }
  | { kind: 'fork'; proc: number }
  | { kind: 'exit'; proc: number }
  | { kind: 'advance'; ms: number }
  | { kind: 'pressure'; proc: number; mib: number }
  | { kind: 'drop' };

const n = fc.nat(15);
const op: fc.Arbitrary<Op> = fc.oneof(
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('spawn' as const) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('open' as const),
      proc: n,
      path: fc.nat(3),
      rdonly: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('close' as const), proc: n, fd: n }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('write' as const),
      proc: n,
      fd: n,
      page: fc.nat(4096),
      pages: fc.integer({ min: 1, max: 2048 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('read' as const),
      proc: n,
      fd: n,
      page: fc.nat(4096),
      pages: fc.integer({ min: 1, max: 2048 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant('truncate' as const), proc: n, fd: n, pages: fc.nat(4096) }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('unlink' as const), proc: n, path: fc.nat(3) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('mmap' as const),
      proc: n,
      fd: n,
      page: fc.nat(2048),
      pages: fc.integer({ min: 1, max: 2048 }),
      shared: fc.boolean(),
      write: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('shanon' as const),
      proc: n,
      pages: fc.integer({ min: 1, max: 1024 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('touch' as const),
      proc: n,
      map: n,
      page: fc.nat(2048),
      pages: fc.integer({ min: 1, max: 1024 }),
      write: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('munmap' as const), proc: n, map: n }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('madvise' as const),
      proc: n,
      map: n,
      advice: fc.constantFrom(MADV_DONTNEED, MADV_COLD, MADV_PAGEOUT, MADV_REMOVE, MADV_WILLNEED),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('mlock' as const), proc: n, map: n }) },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('fadvise' as const),
      proc: n,
      fd: n,
      advice: fc.constantFrom(POSIX_FADV_DONTNEED, POSIX_FADV_WILLNEED),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fsync' as const), proc: n, fd: n }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('fork' as const), proc: n }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('exit' as const), proc: n }) },
  {
    weight: 2,
    arbitrary: fc.record({ kind: fc.constant('advance' as const), ms: fc.integer({ min: 1, max: 40000 }) }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      kind: fc.constant('pressure' as const),
      proc: n,
      mib: fc.integer({ min: 8, max: 96 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('drop' as const) }) },
);

/** Run a call, accepting the failures Linux allows (an errno or a fault signal). */
function tolerate(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ErrnoError) && !(e instanceof FaultError)) throw e;
  }
}

describe('random file and mapping sequences', () => {
  test.prop([fc.array(op, { minLength: 20, maxLength: 100 })], { numRuns: 12 })(
    'keep the page cache, the file rmap and the counters consistent, and leave nothing behind',
    (ops) => {
      const m = Machine.boot({ memory: '256M', cpus: 2, seed: 3, swap: '128M' });
      const procs: Process[] = [m.spawn()];
      /** Per process: its mappings (address, pages). */
      const maps = new Map<Process, Array<[number, number]>>();
      const live = (i: number): Process | undefined => {
        const l = procs.filter((p) => !p.exited);
        return l.length ? l[i % l.length] : undefined;
      };
      const fdOf = (p: Process, i: number): number => {
        const fds = p.openFiles().map((f) => f.fd);
        return fds.length ? fds[i % fds.length] : 99;
      };
      const mapOf = (p: Process, i: number): [number, number] | undefined => {
        const l = maps.get(p) ?? [];
        return l.length ? l[i % l.length] : undefined;
      };
      const addMap = (p: Process, a: number, pages: number): void => {
        maps.set(p, [...(maps.get(p) ?? []), [a, pages]]);
      };
      ops.forEach((o, i) => {
        if (o.kind === 'spawn') procs.push(m.spawn({ cpu: procs.length % 2 }));
        else if (o.kind === 'advance') m.advance(o.ms * 1e6);
        else if (o.kind === 'drop') m.writeFile('/proc/sys/vm/drop_caches', '3');
        else {
          const p = live(o.proc);
          if (!p) return;
          switch (o.kind) {
            case 'open':
              tolerate(() => p.open(PATHS[o.path], o.rdonly ? O_RDONLY : O_CREAT | O_RDWR));
              break;
            case 'close':
              tolerate(() => p.close(fdOf(p, o.fd)));
              break;
            case 'write':
              tolerate(() => p.pwrite(fdOf(p, o.fd), o.pages * PAGE, o.page * PAGE));
              break;
            case 'read':
              tolerate(() => p.pread(fdOf(p, o.fd), o.pages * PAGE, o.page * PAGE));
              break;
            case 'truncate':
              tolerate(() => p.ftruncate(fdOf(p, o.fd), o.pages * PAGE));
              break;
            case 'unlink':
              tolerate(() => p.unlink(PATHS[o.path]));
              break;
            case 'mmap': {
              const prot = PROT_READ | (o.write ? PROT_WRITE : 0);
              tolerate(() =>
                addMap(
                  p,
                  p.mmap(
                    0,
                    o.pages * PAGE,
                    prot,
                    o.shared ? MAP_SHARED : MAP_PRIVATE,
                    fdOf(p, o.fd),
                    o.page * PAGE,
                  ),
                  o.pages,
                ),
              );
              break;
            }
            case 'shanon':
              tolerate(() =>
                addMap(
                  p,
                  p.mmap(0, o.pages * PAGE, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS),
                  o.pages,
                ),
              );
              break;
            case 'touch': {
              const mp = mapOf(p, o.map);
              if (mp) {
                const page = o.page % mp[1];
                tolerate(() =>
                  p.touch(mp[0] + page * PAGE, Math.min(o.pages, mp[1] - page) * PAGE, { write: o.write }),
                );
              }
              break;
            }
            case 'munmap': {
              const mp = mapOf(p, o.map);
              if (mp) tolerate(() => p.munmap(mp[0], mp[1] * PAGE));
              break;
            }
            case 'madvise': {
              const mp = mapOf(p, o.map);
              if (mp) tolerate(() => p.madvise(mp[0], mp[1] * PAGE, o.advice));
              break;
            }
            case 'mlock': {
              const mp = mapOf(p, o.map);
              if (mp) tolerate(() => p.mlock(mp[0], Math.min(mp[1], 256) * PAGE));
              break;
            }
            case 'fadvise':
              tolerate(() => p.fadvise(fdOf(p, o.fd), 0, 0, o.advice));
              break;
            case 'fsync':
              tolerate(() => p.fsync(fdOf(p, o.fd)));
              break;
            case 'fork':
              tolerate(() => {
                const child = p.fork();
                procs.push(child);
                maps.set(child, [...(maps.get(p) ?? [])]);
              });
              break;
            case 'exit':
              p.exit();
              break;
            case 'pressure':
              tolerate(() => {
                const a = p.mmap(0, o.mib * 2 ** 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
                p.touch(a, o.mib * 2 ** 20, { write: true });
                p.munmap(a, o.mib * 2 ** 20);
              });
              break;
          }
        }
        if ((i + 1) % 25 === 0) expect(m.invariantViolations()).toEqual([]);
      });
      expect(m.invariantViolations()).toEqual([]);
      for (const p of procs) p.exit();
      for (const path of PATHS) if (m.vm.files.lookup(path)) m.spawn().unlink(path);
      m.advance('1s');
      expect(m.invariantViolations()).toEqual([]);
      expect([...m.mm.page_cache.all()]).toEqual([]);
      expect(m.readFile('/proc/meminfo')).toMatch(/^Cached:\s+0 kB$/m);
      expect(m.vm.vmas.count).toBe(0);
    },
  );
});
