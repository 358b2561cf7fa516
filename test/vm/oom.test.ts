/**
 * Memory pressure: direct reclaim and kswapd free reclaimable slab, and when nothing more can be
 * reclaimed the OOM killer kills the task with the highest badness, whose memory then serves the
 * allocation.
 */
import { describe, expect, it } from 'vitest';
import { Machine } from '../../src/sim/machine.ts';
import { FaultError } from '../../src/vm/process.ts';
import { MAP_ANONYMOUS, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
/** More than all RAM in one mapping: heuristic overcommit refuses it without MAP_NORESERVE. */
const HUGE = ANON | MAP_NORESERVE;
const MiB = 2 ** 20;
const counter = (m: Machine, name: string): number =>
  Number(new RegExp(`^${name} (\\d+)$`, 'm').exec(m.readFile('/proc/vmstat'))![1]);

describe('the OOM killer', () => {
  it('kills the biggest task so a smaller one can fault', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2 });
    const big = m.spawn({ name: 'big' });
    const a = big.mmap(0, 300 * MiB, RW, ANON);
    big.touch(a, 300 * MiB, { write: true });
    const small = m.spawn({ name: 'small', cpu: 1 });
    const b = small.mmap(0, 200 * MiB, RW, ANON);
    small.touch(b, 200 * MiB, { write: true });
    expect(big.exited).toBe(true);
    expect(small.exited).toBe(false);
    expect(counter(m, 'oom_kill')).toBe(1);
    expect(
      m.mm.klog.some((l) =>
        /^Out of memory: Killed process 1 \(big\) total-vm:307200kB, anon-rss:\d+kB/.test(l),
      ),
    ).toBe(true);
    expect(
      m.mm.klog.some((l) =>
        /^small invoked oom-killer: gfp_mask=0x[0-9a-f]+\(GFP_HIGHUSER_MOVABLE\|__GFP_ZERO\), order=0/.test(
          l,
        ),
      ),
    ).toBe(true);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('kills the faulting task itself when it is the biggest; its access never completes', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2 });
    const hog = m.spawn({ name: 'hog' });
    const a = hog.mmap(0, 1024 * MiB, RW, HUGE);
    let err: unknown;
    try {
      hog.touch(a, 1024 * MiB, { write: true });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(FaultError);
    expect((err as FaultError).signal).toBe('SIGKILL');
    expect(hog.exited).toBe(true);
    expect(m.vm.pt.count).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('spares tasks with oom_score_adj -1000', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2 });
    const precious = m.spawn({ name: 'precious', oom_score_adj: -1000 });
    const a = precious.mmap(0, 300 * MiB, RW, ANON);
    precious.touch(a, 300 * MiB, { write: true });
    const other = m.spawn({ name: 'other' });
    const b = other.mmap(0, 300 * MiB, RW, ANON);
    expect(() => other.touch(b, 300 * MiB, { write: true })).toThrow(FaultError);
    expect(precious.exited).toBe(false);
    expect(other.exited).toBe(true);
  });
});

describe('reclaim', () => {
  it('direct reclaim frees reclaimable slab before anyone is killed', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, early: { reclaimable: '40M' } });
    const before = m.mm.slab.reclaimed_pages;
    const p = m.spawn();
    const a = p.mmap(0, 600 * MiB, RW, HUGE);
    expect(() => p.touch(a, 600 * MiB, { write: true })).toThrow(FaultError);
    expect(m.mm.slab.reclaimed_pages - before).toBeGreaterThan(0);
    expect(counter(m, 'allocstall_normal') + counter(m, 'allocstall_movable')).toBeGreaterThan(0);
    expect(counter(m, 'slabs_scanned')).toBeGreaterThan(0);
  });

  it('kswapd runs on the clock once woken below the low watermark, and reclaims slab', () => {
    // pgdat_balanced() is satisfied by any one eligible zone; on machines under ~4 GiB the DMA
    // zone alone is (its lowmem reserve is small), so this needs a bigger machine.
    const m = Machine.boot({ memory: '6G', cpus: 2, early: { reclaimable: '64M' } });
    const p = m.spawn();
    const a = p.mmap(0, 8192 * MiB, RW, HUGE);
    let addr = a;
    // Woken by the allocations that went below the low watermark, kswapd runs as soon as the
    // faults return: the clock has moved by their time.
    while (counter(m, 'pageoutrun') === 0) {
      expect(counter(m, 'allocstall_movable')).toBe(0);
      p.touch(addr, 2 * MiB, { write: true });
      addr += 2 * MiB;
    }
    expect(counter(m, 'slabs_scanned')).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});
