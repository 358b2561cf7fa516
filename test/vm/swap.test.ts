/**
 * The optional swap device: reclaim writes anonymous pages out and leaves swap entries in their
 * PTEs; faults read them back (major faults) through the swap cache; fork shares swap slots;
 * munmap, MADV_FREE and exit free them; /proc/swaps, meminfo, status and pagemap show them.
 */
import { describe, expect, it } from 'vitest';
import { reclaim_pages } from '../../src/mm/vmscan.ts';
import { Machine } from '../../src/sim/machine.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MADV_FREE,
  MADV_PAGEOUT,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  O_CREAT,
  O_RDWR,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { meminfo, NO_EARLY, vmstat } from './helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const MiB = 2 ** 20;
const early = NO_EARLY;

/** A /proc/<pid>/status value in kB. */
const status = (m: Machine, p: Process, field: string): number =>
  Number(new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(m.readFile(`/proc/${p.pid}/status`))![1]);

/** The pagemap entry of `addr` in `p`. */
function pagemap(m: Machine, p: Process, addr: number): bigint {
  const pm = m.readFileBytes(`/proc/${p.pid}/pagemap`, { offset: (addr / 4096) * 8, length: 8 });
  return new DataView(pm.buffer, pm.byteOffset).getBigUint64(0, true);
}

function anon(p: Process, mib: number): number {
  const a = p.mmap(0, mib * MiB, RW, ANON);
  p.touch(a, mib * MiB, { write: true });
  return a;
}

describe('swap', () => {
  it('is absent by default: /proc/swaps has only its header and no anon page is ever scanned', () => {
    const m = Machine.boot({ memory: '512M', early });
    expect(m.readFile('/proc/swaps')).toBe('Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n');
    expect(meminfo(m, 'SwapTotal')).toBe(0);
  });

  it('lets anonymous memory exceed RAM: pages go out to swap and come back on faults', () => {
    const m = Machine.boot({ memory: '512M', swap: '1G', early });
    expect(m.readFile('/proc/swaps')).toBe(
      'Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n' +
        '/swapfile                               file\t\t1048572\t\t0\t\t-2\n',
    );
    const p = m.spawn();
    const a = anon(p, 700);
    expect(p.exited).toBe(false);
    expect(vmstat(m, 'oom_kill')).toBe(0);
    const out = vmstat(m, 'pswpout');
    expect(out).toBeGreaterThan(200 * 256);
    expect(meminfo(m, 'SwapFree')).toBeLessThan(meminfo(m, 'SwapTotal'));
    const vmswap = Number(/^VmSwap:\s+(\d+) kB$/m.exec(m.readFile(`/proc/${p.pid}/status`))![1]);
    expect(vmswap).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
    // Reading the first pages back: major faults, pswpin.
    const majors = vmstat(m, 'pgmajfault');
    p.touch(a, 16 * MiB);
    expect(vmstat(m, 'pswpin')).toBeGreaterThan(0);
    expect(vmstat(m, 'pgmajfault')).toBeGreaterThan(majors);
    expect(m.invariantViolations()).toEqual([]);
    p.exit();
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    expect(m.invariantViolations()).toEqual([]);
  });

  it('shares swap slots with a fork child; each side frees its own references', () => {
    const m = Machine.boot({ memory: '512M', swap: '1G', early });
    const p = m.spawn();
    const a = p.mmap(0, 32 * MiB, RW, ANON);
    p.touch(a, 32 * MiB, { write: true });
    p.madvise(a, 32 * MiB, MADV_PAGEOUT);
    expect(vmstat(m, 'pswpout')).toBe(8192);
    const child = p.fork();
    expect(m.invariantViolations()).toEqual([]);
    child.touch(a, 32 * MiB); // reads: both map the swap-cache pages
    expect(vmstat(m, 'pswpin')).toBe(8192);
    p.touch(a, 32 * MiB); // found in the swap cache: no more reads
    expect(vmstat(m, 'pswpin')).toBe(8192);
    expect(m.invariantViolations()).toEqual([]);
    child.exit();
    p.exit();
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    expect(meminfo(m, 'SwapCached')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a swapped-out page can be shared by any number of fork children, beyond 62', () => {
    const m = Machine.boot({ memory: '512M', swap: '256M', early });
    const p = m.spawn();
    const a = p.mmap(0, MiB, RW, ANON);
    p.touch(a, MiB, { write: true });
    p.madvise(a, MiB, MADV_PAGEOUT);
    expect(meminfo(m, 'SwapTotal') - meminfo(m, 'SwapFree')).toBe(1024);
    const children: Process[] = [];
    for (let i = 0; i < 100; i++) children.push(p.fork());
    // One copy on the device, referenced from 101 address spaces.
    expect(meminfo(m, 'SwapTotal') - meminfo(m, 'SwapFree')).toBe(1024);
    expect(children.every((c) => status(m, c, 'VmSwap') === 1024)).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
    // Each reads its pages back; the last one out frees the slots.
    children[99].touch(a, MiB);
    expect(vmstat(m, 'pswpin')).toBe(256);
    for (const c of children) c.exit();
    expect(meminfo(m, 'SwapTotal') - meminfo(m, 'SwapFree')).toBe(1024);
    p.exit();
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    expect(meminfo(m, 'SwapCached')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('reclaim swaps out a page mapped by more than 62 processes', () => {
    const m = Machine.boot({ memory: '512M', swap: '256M', early });
    const p = m.spawn();
    const a = p.mmap(0, 4096, RW, ANON);
    p.touch(a, 4096, { write: true });
    const children: Process[] = [];
    for (let i = 0; i < 70; i++) children.push(p.fork());
    const pfn = Number(pagemap(m, p, a) & (2n ** 55n - 1n));
    expect(m.readFileBytes('/proc/kpagecount', { offset: pfn * 8, length: 8 })[0]).toBe(71);
    expect(reclaim_pages(m.mm, [pfn], 0)).toBe(1);
    expect(vmstat(m, 'pswpout')).toBe(1);
    expect(pagemap(m, p, a) >> 62n).toBe(1n); // swapped, everywhere
    expect(children.every((c) => status(m, c, 'VmSwap') === 4)).toBe(true);
    expect(meminfo(m, 'SwapTotal') - meminfo(m, 'SwapFree')).toBe(4);
    expect(m.invariantViolations()).toEqual([]);
    for (const c of children) c.exit();
    p.exit();
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    expect(m.invariantViolations()).toEqual([]);
  });

  it('writing to a page read back from swap drops its swap copy', () => {
    const m = Machine.boot({ memory: '512M', swap: '256M', early });
    const p = m.spawn();
    const a = p.mmap(0, 16 * MiB, RW, ANON);
    p.touch(a, 16 * MiB, { write: true });
    p.madvise(a, 16 * MiB, MADV_PAGEOUT);
    const child = p.fork();
    child.touch(a, 16 * MiB); // read back: in the swap cache, the copy on the device kept
    p.exit();
    expect(meminfo(m, 'SwapCached')).toBe(16 * 1024);
    expect(meminfo(m, 'SwapTotal') - meminfo(m, 'SwapFree')).toBe(16 * 1024);
    // The child, now the only user, writes: the copy on the device is stale, and freed.
    child.touch(a, 16 * MiB, { write: true });
    expect(meminfo(m, 'SwapCached')).toBe(0);
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    expect(meminfo(m, 'AnonPages')).toBe(16 * 1024);
    // Reclaimed again, the pages are written out again.
    child.madvise(a, 16 * MiB, MADV_PAGEOUT);
    expect(vmstat(m, 'pswpout')).toBe(2 * 4096);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('MADV_FREE of pages read back from swap drops their swap copies; reclaim then discards them', () => {
    const m = Machine.boot({ memory: '512M', swap: '256M', early });
    const p = m.spawn();
    const a = p.mmap(0, 16 * MiB, RW, ANON);
    p.touch(a, 16 * MiB, { write: true });
    p.madvise(a, 16 * MiB, MADV_PAGEOUT);
    p.touch(a, 16 * MiB); // read back: clean, in the swap cache
    expect(meminfo(m, 'SwapCached')).toBe(16 * 1024);
    p.madvise(a, 16 * MiB, MADV_FREE);
    expect(vmstat(m, 'pglazyfree')).toBe(4096);
    expect(meminfo(m, 'SwapCached')).toBe(0);
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    // Lazily freed, clean pages: reclaim drops them without writing them to swap.
    const pswpout = vmstat(m, 'pswpout');
    p.madvise(a, 16 * MiB, MADV_PAGEOUT);
    expect(vmstat(m, 'pglazyfreed')).toBe(4096);
    expect(vmstat(m, 'pswpout')).toBe(pswpout);
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    expect(meminfo(m, 'AnonPages')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('shows swapped pages in pagemap (bit 62, swap offset) and frees them on MADV_FREE', () => {
    const m = Machine.boot({ memory: '512M', swap: '256M', early });
    const p = m.spawn();
    const a = p.mmap(0, MiB, RW, ANON);
    p.touch(a, MiB, { write: true });
    p.madvise(a, MiB, MADV_PAGEOUT);
    const pm = m.readFileBytes(`/proc/${p.pid}/pagemap`, { offset: (a / 4096) * 8, length: 8 });
    const entry = new DataView(pm.buffer, pm.byteOffset).getBigUint64(0, true);
    expect(entry >> 62n).toBe(1n); // swapped, not present
    expect(Number(entry & (2n ** 55n - 1n)) % 32).toBe(0); // swap type 0
    expect(Number(entry & (2n ** 55n - 1n)) / 32).toBeGreaterThan(0); // its slot
    p.madvise(a, MiB, MADV_FREE);
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    expect(m.invariantViolations()).toEqual([]);
  });

  it('follows swappiness: 0 reclaims file cache before anon, 200 anon first', () => {
    const run = (swappiness: number): { swapped: number; file: number } => {
      const m = Machine.boot({ memory: '512M', swap: '1G', early, sysctl: { swappiness } });
      const p = m.spawn();
      const fd = p.open('/data/cache', O_CREAT | O_RDWR);
      p.write(fd, 150 * MiB);
      p.fsync(fd);
      // Read twice: an active file cache, so reclaim balances anon against file (no cache trim).
      p.pread(fd, 150 * MiB, 0);
      p.pread(fd, 150 * MiB, 0);
      anon(p, 200);
      anon(p, 120);
      expect(m.invariantViolations()).toEqual([]);
      return { swapped: vmstat(m, 'pswpout'), file: vmstat(m, 'pgsteal_file') };
    };
    const low = run(0);
    const high = run(200);
    expect(high.swapped).toBeGreaterThan(low.swapped);
    expect(low.file).toBeGreaterThan(high.file);
  });

  it('kills a task once swap is full too', () => {
    const m = Machine.boot({ memory: '512M', swap: '64M', early });
    const p = m.spawn({ name: 'hog' });
    try {
      anon(p, 300);
      anon(p, 300);
    } catch {
      // the hog itself is the OOM victim
    }
    expect(vmstat(m, 'oom_kill')).toBe(1);
    expect(p.exited).toBe(true);
    expect(meminfo(m, 'SwapFree')).toBe(meminfo(m, 'SwapTotal'));
    expect(m.invariantViolations()).toEqual([]);
  });
});
