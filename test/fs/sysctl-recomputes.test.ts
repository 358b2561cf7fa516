/**
 * An accepted sysctl write does what the kernel's handler does, visible in /proc/zoneinfo and
 * /proc/meminfo: min_free_kbytes and watermark_scale_factor recompute the watermarks (and with
 * them totalreserve_pages and the pcp high limits), lowmem_reserve_ratio the protection arrays,
 * percpu_pagelist_high_fraction the pcp high limits; watermark_boost_factor and defrag_mode are
 * only stored. Expected values follow the formulas of docs/kernel-6.18-notes.md §1.3, §5.3, §5.4.
 */
import { beforeEach, describe, expect, it } from 'vitest';
import { meminfo_field } from '../../src/fs/proc/meminfo.ts';
import { Machine } from '../../src/sim/machine.ts';
import { protection, zoneField } from './zoneinfo-parse.ts';

const ZONES = ['DMA', 'DMA32', 'Normal'];
const CPUS = 2;
let m: Machine;
const zi = () => m.readFile('/proc/zoneinfo');
const write = (name: string, v: string) => m.writeFile(`/proc/sys/vm/${name}`, v);

beforeEach(() => {
  m = Machine.boot({ memory: '8G', cpus: CPUS });
});

/** __setup_per_zone_wmarks() for the lowmem zones, from the managed pages zoneinfo shows. */
function expectedWatermarks(text: string, min_free_kbytes: number, wsf: number) {
  const managed = Object.fromEntries(ZONES.map((z) => [z, zoneField(text, z, 'managed')]));
  const lowmem = ZONES.reduce((s, z) => s + managed[z], 0);
  const pages_min = min_free_kbytes >> 2;
  return Object.fromEntries(
    ZONES.map((z) => {
      const tmp = Math.floor((pages_min * managed[z]) / lowmem);
      const gap = Math.max(tmp >> 2, Math.floor((managed[z] * wsf) / 10000));
      return [z, { min: tmp, low: tmp + gap, high: tmp + 2 * gap, promo: tmp + 3 * gap }];
    }),
  );
}

function watermarks(text: string, zone: string) {
  return {
    min: zoneField(text, zone, 'min'),
    low: zoneField(text, zone, 'low'),
    high: zoneField(text, zone, 'high'),
    promo: zoneField(text, zone, 'promo'),
  };
}

describe('watermark_scale_factor', () => {
  it('100 widens the gaps: low, high and promo rise, min stays', () => {
    const before = zi();
    write('watermark_scale_factor', '100');
    const after = zi();
    const want = expectedWatermarks(after, m.mm.sysctl.min_free_kbytes, 100);
    for (const z of ZONES) {
      expect(watermarks(after, z)).toEqual(want[z]);
      expect(zoneField(after, z, 'min')).toBe(zoneField(before, z, 'min'));
      expect(zoneField(after, z, 'low')).toBeGreaterThan(zoneField(before, z, 'low'));
      expect(zoneField(after, z, 'high')).toBeGreaterThan(zoneField(before, z, 'high'));
    }
  });

  it('moves pcp high_min with the low watermark (low / CPUs, at least 4 batches)', () => {
    write('watermark_scale_factor', '100');
    const t = zi();
    for (const z of ZONES) {
      const batch = zoneField(t, z, 'batch');
      expect(zoneField(t, z, 'high_min')).toBe(
        Math.max(Math.floor(zoneField(t, z, 'low') / CPUS), batch * 4),
      );
    }
  });

  it('lowers MemAvailable as totalreserve_pages grows with the high watermarks', () => {
    const before = meminfo_field(m.readFile('/proc/meminfo'), 'MemAvailable');
    write('watermark_scale_factor', '1000');
    expect(meminfo_field(m.readFile('/proc/meminfo'), 'MemAvailable')).toBeLessThan(before);
  });
});

describe('min_free_kbytes', () => {
  it('3001 recomputes every watermark and becomes the user value', () => {
    write('min_free_kbytes', '3001');
    const t = zi();
    const want = expectedWatermarks(t, 3001, 10);
    for (const z of ZONES) expect(watermarks(t, z)).toEqual(want[z]);
    expect(m.mm.sysctl.user_min_free_kbytes).toBe(3001);
  });

  it('leaves lowmem_reserve alone (it does not depend on the watermarks)', () => {
    const before = zi();
    write('min_free_kbytes', '131072');
    const after = zi();
    for (const z of ZONES) expect(protection(after, z)).toEqual(protection(before, z));
    expect(zoneField(after, 'DMA32', 'min')).toBeGreaterThan(zoneField(before, 'DMA32', 'min'));
  });

  it('keeps the empty Movable zone at the SWAP_CLUSTER_MAX floor of 32', () => {
    write('min_free_kbytes', '3001');
    expect(watermarks(zi(), 'Movable')).toEqual({ min: 32, low: 32, high: 32, promo: 32 });
  });
});

describe('lowmem_reserve_ratio', () => {
  it("'12 13' recomputes protection with each lower zone's ratio", () => {
    write('lowmem_reserve_ratio', '12 13');
    const t = zi();
    const dma32 = zoneField(t, 'DMA32', 'managed');
    const normal = zoneField(t, 'Normal', 'managed');
    const both = Math.floor((dma32 + normal) / 12);
    expect(protection(t, 'DMA')).toEqual([0, Math.floor(dma32 / 12), both, both, both]);
    const n = Math.floor(normal / 13);
    expect(protection(t, 'DMA32')).toEqual([0, 0, n, n, n]);
    expect(protection(t, 'Normal')).toEqual([0, 0, 0, 0, 0]);
  });

  it('0 clears a zone’s reserves', () => {
    write('lowmem_reserve_ratio', '0 0');
    for (const z of ZONES) expect(protection(zi(), z)).toEqual([0, 0, 0, 0, 0]);
  });
});

describe('percpu_pagelist_high_fraction', () => {
  it('8 fixes high_min = high_max = managed / 8 / CPUs; 0 restores auto-tuning', () => {
    const auto = zi();
    write('percpu_pagelist_high_fraction', '8');
    const t = zi();
    for (const z of ZONES) {
      const batch = zoneField(t, z, 'batch');
      const high = Math.max(Math.floor(Math.floor(zoneField(t, z, 'managed') / 8) / CPUS), batch * 4);
      expect(zoneField(t, z, 'high_min')).toBe(high);
      expect(zoneField(t, z, 'high_max')).toBe(high);
    }
    write('percpu_pagelist_high_fraction', '0');
    expect(zi()).toBe(auto);
  });
});

describe('store-only sysctls', () => {
  it('watermark_boost_factor and defrag_mode change no zone state', () => {
    const before = zi();
    write('watermark_boost_factor', '0');
    write('defrag_mode', '1');
    expect(zi()).toBe(before);
    expect(m.mm.sysctl.watermark_boost_factor).toBe(0);
    expect(m.mm.sysctl.defrag_mode).toBe(1);
  });
});
