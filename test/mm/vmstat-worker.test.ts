/**
 * The vmstat worker drains idle per-cpu lists back to the buddy lists over simulated seconds:
 * decay everywhere, and a batch at a time from lists a CPU holds for another node's zones, three
 * seconds after the CPU last changed that zone's counters (pcp->expire, armed by
 * refresh_cpu_vm_stats() when it folds a differential).
 */
import { describe, expect, it } from 'vitest';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { ZONE_DMA32, ZONE_NORMAL } from '../../src/mm/mmzone.ts';
import { PCP_BATCH_SCALE_MAX } from '../../src/mm/page_alloc/pcp.ts';
import { Clock } from '../../src/sim/clock.ts';
import { Machine } from '../../src/sim/machine.ts';
import { cleanMachine, violations } from '../helpers.ts';

describe('the clock', () => {
  it('runs events in time order, ties in scheduling order', () => {
    const c = new Clock();
    const seen: string[] = [];
    c.after(30, () => seen.push('c'));
    c.after(10, () => seen.push('a'));
    c.after(10, () => seen.push('b'));
    c.every(25, (now) => {
      seen.push(`tick${now}`);
      return now < 50;
    });
    c.advance(100);
    expect(seen).toEqual(['a', 'b', 'tick25', 'c', 'tick50']);
    expect(c.now).toBe(100);
    expect(c.pending).toBe(0);
  });
});

describe('decay_pcp_high()', () => {
  it('returns parked pages to the buddy lists a bounded amount per second', () => {
    const m = cleanMachine({ memory: '2G' });
    const zone = m.mm.zone(0, ZONE_DMA32);
    const held: number[] = [];
    for (let i = 0; i < 20000; i++) held.push(m.kernel.alloc_pages(GFP_KERNEL, 0));
    for (const p of held) m.kernel.free_pages(p, 0);
    const parked = zone.pcp.count[0];
    expect(parked).toBeGreaterThan(zone.pcp.high_min[0]);
    // high first decays by an eighth a second; once it falls below the count, pages drain, at
    // most batch << PCP_BATCH_SCALE_MAX a second.
    let last = parked;
    let seconds = 0;
    while (zone.pcp.count[0] > zone.pcp.high_min[0] && seconds < 120) {
      m.advance('1s');
      seconds++;
      expect(last - zone.pcp.count[0]).toBeLessThanOrEqual(zone.pcp.batch[0] << PCP_BATCH_SCALE_MAX);
      last = zone.pcp.count[0];
    }
    expect(seconds).toBeGreaterThan(5);
    m.advance('60s');
    expect(zone.pcp.count[0]).toBeLessThanOrEqual(zone.pcp.high_min[0]);
    expect(zone.pcp.high[0]).toBe(zone.pcp.high_min[0]);
    expect(violations(m)).toEqual([]);
  });

  it('drains a CPU’s lists for another node’s zone after three idle seconds', () => {
    const m = Machine.boot({
      memory: '16G',
      nodes: 2,
      cpus: 2,
      early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
    });
    const remote = m.mm.zone(1, ZONE_NORMAL);
    const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0, { cpu: 0, nid: 1 });
    expect(remote.zone_spans_pfn(pfn)).toBe(true);
    expect(remote.pcp.count[0]).toBeGreaterThan(0);
    m.advance('2s');
    expect(remote.pcp.count[0]).toBeGreaterThan(0);
    m.advance('10s');
    expect(remote.pcp.count[0]).toBe(0);
  });
});

describe('refresh_cpu_vm_stats() and pcp->expire', () => {
  /** Two nodes of 8 GiB, CPU 0 on node 0 and CPU 1 on node 1. */
  function twoNodes(): Machine {
    return Machine.boot({
      memory: '16G',
      nodes: 2,
      cpus: 2,
      early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
    });
  }

  it('keeps draining a remote list a batch every three seconds, as each drain re-arms expire', () => {
    const m = twoNodes();
    const remote = m.mm.zone(1, ZONE_NORMAL);
    const pfns: number[] = [];
    for (let i = 0; i < 300; i++) pfns.push(m.kernel.alloc_pages(GFP_KERNEL, 0, { cpu: 0, nid: 1 }));
    for (const p of pfns) m.kernel.free_pages(p, 0, { cpu: 0 });
    const count = remote.pcp.count[0];
    const batch = remote.pcp.batch[0];
    // Below high_min, so decay alone would never drain it.
    expect(count).toBeGreaterThan(3 * batch);
    expect(count).toBeLessThan(remote.pcp.high_min[0]);
    const seen: number[] = [];
    const expires: number[] = [];
    for (let s = 1; s <= 9; s++) {
      m.advance('1s');
      seen.push(count - remote.pcp.count[0]);
      expires.push(remote.pcp.expire[0]);
    }
    expect(seen).toEqual([0, 0, 1, 1, 1, 2, 2, 2, 3].map((n) => n * batch));
    expect(expires).toEqual([2, 1, 0, 2, 1, 0, 2, 1, 0]);
    expect(violations(m)).toEqual([]);
  });

  it('leaves a remote list alone while the CPU does not change the zone’s counters', () => {
    const m = twoNodes();
    const remote = m.mm.zone(1, ZONE_NORMAL);
    // Node 1's pages, allocated on node 1's CPU and freed onto CPU 0's list: parking pages on a
    // pcp list (or taking them off it) changes no counter.
    const pfns: number[] = [];
    for (let i = 0; i < 100; i++) pfns.push(m.kernel.alloc_pages(GFP_KERNEL, 0, { cpu: 1, nid: 1 }));
    for (const p of pfns) m.kernel.free_pages(p, 0, { cpu: 0 });
    expect(m.kernel.alloc_pages(GFP_KERNEL, 0, { cpu: 0, nid: 1 })).toBe(pfns[99]);
    expect(remote.pcp.count[0]).toBe(99);
    m.advance('10s');
    expect(remote.pcp.count[0]).toBe(99);
    expect(remote.pcp.expire[0]).toBe(0);
    // A buddy allocation from node 1 on CPU 0 does change them: a batch drains three seconds on.
    m.kernel.alloc_pages(GFP_KERNEL, 5, { cpu: 0, nid: 1 });
    m.advance('1s');
    expect(remote.pcp.expire[0]).toBe(2);
    m.advance('2s');
    expect(remote.pcp.count[0]).toBe(99 - remote.pcp.batch[0]);
  });
});
