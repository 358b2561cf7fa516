/**
 * The text parsers on shapes the 6.18 fixture does not show: 4.14's zoneinfo (no promo, no cma,
 * no high_min/high_max), pagetypeinfo's ">100000" cap, node meminfo, zeroed iomem.
 */
import { describe, expect, it } from 'vitest';
import { SnapshotError } from '../../src/snapshot/manifest.ts';
import {
  parseBuddyinfo,
  parseIomem,
  parseMeminfo,
  parsePagetypeinfo,
  parseZoneinfo,
  selectedChoice,
  systemRamPfns,
} from '../../src/snapshot/parse.ts';

const ZONEINFO_414 = `Node 0, zone      DMA
  per-node stats
      nr_inactive_anon 100
      nr_active_anon 200
  pages free     3977
        min      33
        low      41
        high     49
        spanned  4095
        present  3998
        managed  3977
        protection: (0, 2966, 15951, 15951, 15951)
      nr_free_pages 3977
      nr_zone_inactive_anon 0
  pagesets
    cpu: 0
              count: 0
              high:  0
              batch: 1
  vm stats threshold: 6
  node_unreclaimable:  0
  start_pfn:           1
  node_inactive_ratio: 0
Node 0, zone    DMA32
  pages free     700000
        min      6081
        low      7601
        high     9121
        spanned  1044480
        present  782288
        managed  761743
        protection: (0, 0, 12985, 12985, 12985)
      nr_free_pages 700000
  pagesets
    cpu: 0
              count: 31
              high:  186
              batch: 31
  vm stats threshold: 36
  node_unreclaimable:  0
  start_pfn:           4096
Node 0, zone  Movable
  pages free     0
        min      0
        low      0
        high     0
        spanned  0
        present  0
        managed  0
        protection: (0, 0, 0, 0, 0)
`;

describe('snapshot text parsers', () => {
  it('parse a 4.14 zoneinfo', () => {
    const z = parseZoneinfo(ZONEINFO_414);
    expect(z.map((x) => x.zone)).toEqual(['DMA', 'DMA32', 'Movable']);
    expect(z[0]).toMatchObject({ min: 33, low: 41, high: 49, start_pfn: 1, managed: 3977 });
    expect(z[0].promo).toBeUndefined();
    expect(z[0].node_stats).toEqual({ nr_inactive_anon: 100, nr_active_anon: 200 });
    expect(z[0].stats.nr_free_pages).toBe(3977);
    expect(z[1].pagesets[0]).toEqual({ cpu: 0, count: 31, high: 186, batch: 31, vm_stats_threshold: 36 });
    expect(z[1].protection).toEqual([0, 0, 12985, 12985, 12985]);
    expect(z[2].start_pfn).toBeUndefined();
  });

  it('refuse a zone without its watermarks', () => {
    expect(() => parseZoneinfo('Node 0, zone DMA\n  pages free 1\n')).toThrow(SnapshotError);
  });

  it('parse pagetypeinfo with capped counts', () => {
    const t = `Page block order: 9
Pages per block:  512

Free pages count per migrate type at order       0      1
Node    0, zone   Normal, type    Unmovable >100000      3
Node    0, zone   Normal, type      Movable      5      6

Number of blocks type     Unmovable      Movable
Node 0, zone   Normal            1            7
`;
    const p = parsePagetypeinfo(t);
    expect(p.free[0]).toMatchObject({ type: 'Unmovable', nr_free: [100000, 3], capped: [true, false] });
    expect(p.blocks).toEqual([{ node: 0, zone: 'Normal', count: [1, 7] }]);
    expect(() => parsePagetypeinfo(t.replace('512', '500'))).toThrow(/not 2\^9/);
  });

  it('parse node meminfo, buddyinfo with other order counts, choices', () => {
    expect(parseMeminfo('Node 1 MemTotal:  1000 kB\nNode 1 HugePages_Total:     0\n')).toEqual({
      MemTotal: 1000,
      HugePages_Total: 0,
    });
    expect(parseBuddyinfo('Node 0, zone   Normal      1      2      3 \n')[0].nr_free).toEqual([1, 2, 3]);
    expect(() => parseBuddyinfo('Node 0, zone DMA 1 2\nNode 0, zone Normal 1\n')).toThrow(/1 orders where 2/);
    expect(selectedChoice('always defer defer+madvise [madvise] never\n')).toBe('madvise');
    expect(selectedChoice('1\n')).toBe('1');
  });

  it('take System RAM from iomem, and nothing from a zeroed (unprivileged) one', () => {
    const root =
      '00001000-0009fbff : System RAM\n00100000-bfffffff : System RAM\n  01000000-0220bb07 : Kernel code\n';
    expect(systemRamPfns(parseIomem(root))).toEqual([
      { start: 1, end: 159 },
      { start: 256, end: 786432 },
    ]);
    expect(systemRamPfns(parseIomem('00000000-00000000 : System RAM\n'))).toEqual([]);
  });
});
