/**
 * The vmstat worker drains idle per-cpu lists back to the buddy lists over simulated seconds.
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
