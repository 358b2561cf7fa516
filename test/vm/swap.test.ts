/**
 * The optional swap device: reclaim writes anonymous pages out and leaves swap entries in their
 * PTEs; faults read them back (major faults) through the swap cache; fork shares swap slots;
 * munmap, MADV_FREE and exit free them; /proc/swaps, meminfo, status and pagemap show them.
 */
import { describe, expect, it } from 'vitest';
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

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const MiB = 2 ** 20;
const early = { unmovable: 0, reclaimable: 0, transient_fraction: 0 };

const vmstat = (m: Machine, name: string): number =>
  Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(m.readFile('/proc/vmstat'))![1]);
const meminfo = (m: Machine, name: string): number =>
  Number(new RegExp(`^${name}:\\s+(\\d+) kB$`, 'm').exec(m.readFile('/proc/meminfo'))![1]);

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
