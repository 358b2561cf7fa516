/**
 * Boot: a 24 GiB machine laid out like our real Firecracker VMs must come up with the real
 * kernel's zone spans, present and managed pages, watermarks, reserves and pcp sizes.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  MIGRATE_MOVABLE,
  MIGRATE_UNMOVABLE,
  WMARK_HIGH,
  WMARK_LOW,
  WMARK_MIN,
  ZONE_DMA,
  ZONE_DMA32,
  ZONE_NORMAL,
} from '../../src/mm/mmzone.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { Machine } from '../../src/sim/machine.ts';
import { violations } from '../helpers.ts';

const real = (name: string): string =>
  readFileSync(new URL(`../fixtures/real-6.18-fc/${name}`, import.meta.url), 'utf8');

/** The "Node 0, zone X" record of a real /proc/zoneinfo, as a map of its first-level fields. */
function realZone(name: string): Map<string, string> {
  const text = real('zoneinfo');
  const start = text.indexOf(`zone ${name.padStart(8)}\n`);
  const end = text.indexOf('\nNode', start + 1);
  const fields = new Map<string, string>();
  for (const line of text.slice(start, end < 0 ? undefined : end).split('\n')) {
    const m = /^\s+(pages free|boost|min|low|high|promo|spanned|present|managed|protection:)\s+(.*)$/.exec(
      line,
    );
    if (m && !fields.has(m[1])) fields.set(m[1], m[2]);
  }
  return fields;
}

describe('a 24 GiB x86-64 machine', () => {
  const m = Machine.boot({ memory: '24G', cpus: 2, kernel: { CMA: false } });
  const zone = (idx: number) => m.mm.zone(0, idx);

  it('has the real kernel zone spans and present pages', () => {
    for (const [idx, name] of [
      [ZONE_DMA, 'DMA'],
      [ZONE_DMA32, 'DMA32'],
      [ZONE_NORMAL, 'Normal'],
    ] as const) {
      const r = realZone(name);
      expect(zone(idx).spanned_pages, name).toBe(Number(r.get('spanned')));
      expect(zone(idx).present_pages, name).toBe(Number(r.get('present')));
    }
  });

  it('reserves what the real kernel reserves in DMA and DMA32', () => {
    expect(zone(ZONE_DMA).managed_pages).toBe(Number(realZone('DMA').get('managed')));
    expect(zone(ZONE_DMA32).managed_pages).toBe(Number(realZone('DMA32').get('managed')));
  });

  it('raises min_free_kbytes to khugepaged’s recommendation, as the real machine shows', () => {
    expect(m.mm.sysctl.min_free_kbytes).toBe(Number(real('sysctl_vm_min_free_kbytes')));
  });

  it('computes lowmem reserves from managed pages and the ratios', () => {
    // DMA protects 772915/256 = 3019 pages from DMA32-capable requests, exactly as the real zone.
    expect(zone(ZONE_DMA).lowmem_reserve[ZONE_DMA32]).toBe(3019);
    expect(zone(ZONE_DMA).lowmem_reserve[ZONE_NORMAL]).toBe(
      Math.floor((772915 + zone(ZONE_NORMAL).managed_pages) / 256),
    );
    expect(zone(ZONE_DMA32).lowmem_reserve[ZONE_NORMAL]).toBe(
      Math.floor(zone(ZONE_NORMAL).managed_pages / 256),
    );
  });

  it('sets watermarks by __setup_per_zone_wmarks', () => {
    const pages_min = 67584 / 4;
    let lowmem = 0;
    for (const idx of [ZONE_DMA, ZONE_DMA32, ZONE_NORMAL]) lowmem += zone(idx).managed_pages;
    for (const idx of [ZONE_DMA, ZONE_DMA32, ZONE_NORMAL]) {
      const z = zone(idx);
      const min = Math.floor((pages_min * z.managed_pages) / lowmem);
      const gap = Math.max(min >> 2, Math.floor((z.managed_pages * 10) / 10000));
      expect([z._watermark[WMARK_MIN], z._watermark[WMARK_LOW], z._watermark[WMARK_HIGH]]).toEqual([
        min,
        min + gap,
        min + 2 * gap,
      ]);
    }
  });

  it('sizes the pcp lists as the real kernel does', () => {
    expect(zone(ZONE_DMA).pcp.batch[0]).toBe(1);
    expect(zone(ZONE_DMA32).pcp.batch[0]).toBe(63);
    // high_max = managed / 8 / CPUs: 240 and 48307 on the real machine.
    expect(zone(ZONE_DMA).pcp.high_max[0]).toBe(240);
    expect(zone(ZONE_DMA32).pcp.high_max[0]).toBe(48307);
    expect(zone(ZONE_DMA32).pcp.high_min[1]).toBe(Math.floor(zone(ZONE_DMA32).low_wmark_pages() / 2));
    // pcp->high stays 0 until a CPU first uses the list.
    expect(zone(ZONE_DMA).pcp.high[0]).toBe(0);
  });

  it('leaves DMA entirely free with the real buddyinfo line', () => {
    const line = (s: string) => s.split('\n').find((l) => l.includes('zone      DMA '));
    expect(line(m.readFile('/proc/buddyinfo'))).toBe(line(real('buddyinfo')));
  });

  it('types the DMA zone’s first pageblock UNMOVABLE because it starts in a hole', () => {
    expect(get_pfnblock_migratetype(m.mm, 1)).toBe(MIGRATE_UNMOVABLE);
    expect(get_pfnblock_migratetype(m.mm, 512)).toBe(MIGRATE_MOVABLE);
  });

  it('is consistent', () => {
    expect(violations(m)).toEqual([]);
  });
});

describe('early kernel allocations', () => {
  it('claim pageblocks as UNMOVABLE and RECLAIMABLE in Normal', () => {
    const m = Machine.boot({ memory: '8G', cpus: 4 });
    const normal = m.mm.zone(0, ZONE_NORMAL);
    let unmovable = 0;
    let reclaimable = 0;
    for (let pfn = normal.zone_start_pfn; pfn < normal.zone_end_pfn; pfn += 512) {
      const mt = get_pfnblock_migratetype(m.mm, pfn);
      if (mt === 0) unmovable++;
      if (mt === 2) reclaimable++;
    }
    expect(unmovable).toBeGreaterThan(0);
    expect(reclaimable).toBeGreaterThan(0);
    expect(violations(m)).toEqual([]);
  });
});

describe('machine configuration', () => {
  it('splits memory over NUMA nodes with the CPUs spread evenly', () => {
    const m = Machine.boot({ memory: '16G', nodes: 2, cpus: 4 });
    expect(m.mm.nodes.map((n) => n.cpus)).toEqual([
      [0, 1],
      [2, 3],
    ]);
    const present = m.mm.nodes.map((n) => n.node_present_pages);
    expect(Math.abs(present[0] - present[1])).toBeLessThan(2048);
    expect(m.mm.nodes[0].zonelist_fallback.map((id) => m.mm.zones[id].nid)).toEqual([0, 0, 0, 1]);
    expect(violations(m)).toEqual([]);
  });

  it('puts movablecore= memory in ZONE_MOVABLE at the top of each node', () => {
    const m = Machine.boot({ memory: '8G', movablecore: '2G' });
    const movable = m.mm.zone(0, 3);
    expect(movable.present_pages).toBe(2 * 2 ** 18);
    expect(movable.zone_end_pfn).toBe(m.mm.zone(0, ZONE_NORMAL).zone_end_pfn + movable.spanned_pages);
    expect(violations(m)).toEqual([]);
  });

  it('names every bad field', () => {
    expect(() => Machine.boot({ memory: 'lots', cpus: 0 } as never)).toThrow(
      /memory: 'lots' is not a size[\s\S]*cpus/,
    );
    expect(() => Machine.boot({ memory: '4G', kernelcore: '1G', movablecore: '1G' })).toThrow(
      /give one or the other/,
    );
    expect(() => Machine.boot({ memory: '4G', colour: 'red' } as never)).toThrow(/colour/);
  });

  it('is deterministic: the same seed gives the same bytes', () => {
    const a = Machine.boot({ memory: '6G', seed: 7 });
    const b = Machine.boot({ memory: '6G', seed: 7 });
    expect(a.readFile('/proc/buddyinfo')).toBe(b.readFile('/proc/buddyinfo'));
    expect(Buffer.from(a.mm.frames.buffer).equals(Buffer.from(b.mm.frames.buffer))).toBe(true);
  });
});
