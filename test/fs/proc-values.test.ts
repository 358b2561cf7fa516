/**
 * The numbers in our /proc files are the kernel's computations over the model's state: sums of
 * the zone and node counters, the vmstat per-cpu thresholds, the writeback thresholds, the memmap
 * size, MemAvailable, CommitLimit, the direct map, THP units, config-dependent lines, the
 * pagetypeinfo list cap and Isolate counts, node_unreclaimable.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { meminfo, meminfo_field } from '../../src/fs/proc/meminfo.ts';
import { pagetypeinfo } from '../../src/fs/proc/pagetypeinfo.ts';
import { vmstat } from '../../src/fs/proc/vmstat.ts';
import {
  calculate_normal_threshold,
  calculate_pressure_threshold,
  zone_stat_threshold,
  zoneinfo,
} from '../../src/fs/proc/zoneinfo.ts';
import type { MM } from '../../src/mm/mm.ts';
import {
  MIGRATE_MOVABLE,
  pageblock_nr_pages,
  ZONE_DMA,
  ZONE_DMA32,
  ZONE_NORMAL,
  Zone,
} from '../../src/mm/mmzone.ts';
import { domain_dirty_limits } from '../../src/mm/page-writeback.ts';
import { set_pageblock_isolate } from '../../src/mm/pageblock.ts';
import { node_stat_index, vm_event_index } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import { zoneField } from './zoneinfo-parse.ts';

const value = (text: string, name: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  if (!line) throw new Error(`no ${name}`);
  return Number(line.split(' ')[1]);
};

let m: Machine;
beforeAll(() => {
  m = Machine.boot({ memory: '24G', cpus: 2, kernel: { CMA: false } });
});

describe('vm stats threshold', () => {
  it('calculate_normal_threshold() gives the real machine’s 4, 24 and 16 for its zone sizes', () => {
    const mm = { nr_cpus: 2 } as MM;
    const zone = (managed: number) => Object.assign(new Zone(0, ZONE_NORMAL), { managed_pages: managed });
    expect(calculate_normal_threshold(mm, zone(3840))).toBe(4);
    expect(calculate_normal_threshold(mm, zone(772915))).toBe(24);
    expect(calculate_normal_threshold(mm, zone(131072))).toBe(16);
    // 64 CPUs and 1 TiB: 2 * 7 * (1 + 14) = 210, capped at 125.
    expect(calculate_normal_threshold({ nr_cpus: 64 } as MM, zone(1 << 28))).toBe(125);
  });

  it('switches to the pressure threshold while kswapd runs, in zones where drift could hide min', () => {
    const mm = m.mm;
    const dma = mm.zone(0, ZONE_DMA);
    const dma32 = mm.zone(0, ZONE_DMA32);
    mm.nodes[0].kswapd_running = true;
    try {
      // DMA: low - min = 3 < 2 CPUs * 4, so (low - min) / CPUs, at least 1.
      expect(zone_stat_threshold(mm, dma)).toBe(calculate_pressure_threshold(mm, dma));
      expect(zone_stat_threshold(mm, dma)).toBe(
        Math.max(1, Math.floor((dma.low_wmark_pages() - dma.min_wmark_pages()) / 2)),
      );
      // DMA32: a gap of hundreds of pages tolerates the drift; the normal threshold stays.
      expect(zone_stat_threshold(mm, dma32)).toBe(calculate_normal_threshold(mm, dma32));
    } finally {
      mm.nodes[0].kswapd_running = false;
    }
  });
});

describe('/proc/vmstat', () => {
  it('sums zone counters and NUMA events over the zones', () => {
    const z = m.readFile('/proc/zoneinfo');
    const v = m.readFile('/proc/vmstat');
    for (const item of ['nr_free_pages', 'nr_free_pages_blocks', 'numa_hit', 'numa_local']) {
      const sum = ['DMA', 'DMA32', 'Normal'].reduce((s, zone) => s + zoneField(z, zone, item), 0);
      expect(value(v, item)).toBe(sum);
    }
    expect(value(v, 'nr_slab_unreclaimable')).toBe(
      m.mm.nodes[0].vm_stat[node_stat_index('nr_slab_unreclaimable')],
    );
    expect(value(v, 'pgfree')).toBe(m.mm.vm_events[vm_event_index('pgfree')]);
  });

  it('computes the dirty thresholds from free pages less the reserves plus the file LRU', () => {
    expect(domain_dirty_limits(6118478)).toEqual({ dirty: 1223396, background: 610951 });
    const v = m.readFile('/proc/vmstat');
    const free = value(v, 'nr_free_pages');
    const avail =
      free -
      Math.min(free, m.mm.totalreserve_pages) +
      value(v, 'nr_inactive_file') +
      value(v, 'nr_active_file') +
      1;
    expect(value(v, 'nr_dirty_threshold')).toBe(Math.floor((819 * avail) / 4096));
    expect(value(v, 'nr_dirty_background_threshold')).toBe(Math.floor((409 * avail) / 4096));
  });

  it('counts 512 memmap pages per present 128 MiB section at boot', () => {
    const v = m.readFile('/proc/vmstat');
    expect(value(v, 'nr_memmap_boot_pages')).toBe(98304);
    expect(value(v, 'nr_memmap_pages')).toBe(0);
  });

  it('halves pgpgin/pgpgout (sectors to KiB) and ends with nr_unstable 0', () => {
    const mm = Machine.boot({ memory: '512M', cpus: 2 }).mm;
    mm.vm_events[vm_event_index('pgpgin')] = 7;
    mm.vm_events[vm_event_index('pgpgout')] = 10;
    const v = vmstat(mm);
    expect(value(v, 'pgpgin')).toBe(3);
    expect(value(v, 'pgpgout')).toBe(5);
    expect(v.endsWith('\nnr_unstable 0\n')).toBe(true);
  });

  it('prints THP counters, kept in pages, in THPs', () => {
    const mm = Machine.boot({ memory: '512M', cpus: 2 }).mm;
    mm.nodes[0].vm_stat[node_stat_index('nr_anon_transparent_hugepages')] = 3 * 512;
    expect(value(vmstat(mm), 'nr_anon_transparent_hugepages')).toBe(3);
    expect(zoneinfo(mm)).toMatch(/\n {6}nr_anon_transparent_hugepages 3\n/);
    expect(meminfo_field(meminfo(mm), 'AnonHugePages')).toBe(3 * 2048);
  });
});

describe('config-dependent lines', () => {
  const names = (t: string) => t.split('\n').map((l) => l.split(/[ :]/)[0]);
  it('CONFIG_CMA adds cma_alloc_* after htlb_buddy_alloc_fail and CmaTotal/CmaFree before Balloon', () => {
    const cma = Machine.boot({ memory: '512M', cpus: 2, kernel: { CMA: true } });
    const v = names(cma.readFile('/proc/vmstat'));
    const at = v.indexOf('htlb_buddy_alloc_fail');
    expect(v.slice(at, at + 4)).toEqual([
      'htlb_buddy_alloc_fail',
      'cma_alloc_success',
      'cma_alloc_fail',
      'unevictable_pgs_culled',
    ]);
    const mi = names(cma.readFile('/proc/meminfo'));
    expect(mi.slice(mi.indexOf('FilePmdMapped'), mi.indexOf('Balloon') + 1)).toEqual([
      'FilePmdMapped',
      'CmaTotal',
      'CmaFree',
      'Balloon',
    ]);
    expect(names(m.readFile('/proc/vmstat'))).not.toContain('cma_alloc_success');
    expect(names(m.readFile('/proc/meminfo'))).not.toContain('CmaTotal');
    expect(names(m.readFile('/proc/vmstat'))).toContain('nr_free_cma');
  });

  it('without CONFIG_NUMA there are no NUMA counters', () => {
    const flat = Machine.boot({ memory: '512M', cpus: 2, kernel: { NUMA: false } });
    const v = flat.readFile('/proc/vmstat') + flat.readFile('/proc/zoneinfo');
    for (const n of [
      'numa_hit',
      'numa_other',
      'zone_reclaim_success',
      'numa_pte_updates',
      'pgpromote_success',
    ]) {
      expect(v).not.toMatch(new RegExp(`\\b${n}\\b`));
    }
  });

  it('without CONFIG_TRANSPARENT_HUGEPAGE there are no THP events or meminfo lines', () => {
    const flat = Machine.boot({ memory: '512M', cpus: 2, kernel: { TRANSPARENT_HUGEPAGE: false } });
    const v = names(flat.readFile('/proc/vmstat'));
    expect(v.filter((n) => n.startsWith('thp_'))).toEqual([
      'thp_migration_success',
      'thp_migration_fail',
      'thp_migration_split',
    ]);
    expect(names(flat.readFile('/proc/meminfo'))).not.toContain('AnonHugePages');
  });
});

describe('/proc/meminfo', () => {
  it('derives its fields from the counters as meminfo_proc_show() does', () => {
    const mi = m.readFile('/proc/meminfo');
    const mm = m.mm;
    const free = mm.zones.reduce((s, z) => s + z.vm_stat[0], 0);
    const node = (n: Parameters<typeof node_stat_index>[0]) => mm.nodes[0].vm_stat[node_stat_index(n)];
    expect(meminfo_field(mi, 'MemTotal')).toBe(mm.totalram_pages * 4);
    expect(meminfo_field(mi, 'MemFree')).toBe(free * 4);
    expect(meminfo_field(mi, 'SReclaimable')).toBe(node('nr_slab_reclaimable') * 4);
    expect(meminfo_field(mi, 'SUnreclaim')).toBe(node('nr_slab_unreclaimable') * 4);
    expect(meminfo_field(mi, 'Slab')).toBe(
      meminfo_field(mi, 'SReclaimable') + meminfo_field(mi, 'SUnreclaim'),
    );
    expect(meminfo_field(mi, 'CommitLimit')).toBe(Math.floor((mm.totalram_pages * 50) / 100) * 4);
    // si_mem_available(): no page cache; reclaimable slab less min(half of it, sum of low marks).
    const wmark_low = mm.zones.reduce((s, z) => s + z.low_wmark_pages(), 0);
    const r = node('nr_slab_reclaimable');
    const avail = free - mm.totalreserve_pages + r - Math.min(Math.floor(r / 2), wmark_low);
    expect(meminfo_field(mi, 'MemAvailable')).toBe(avail * 4);
  });

  it('maps the 24 GiB machine as init_mem_mapping() does, and after the real splits matches it', () => {
    const mi = m.readFile('/proc/meminfo');
    expect([
      meminfo_field(mi, 'DirectMap4k'),
      meminfo_field(mi, 'DirectMap2M'),
      meminfo_field(mi, 'DirectMap1G'),
    ]).toEqual([2048, 511 * 2048, 25 * 1048576]);
    // The real kernel later splits one 1 GiB and thirteen 2 MiB pages.
    const mm = Machine.boot({ memory: '24G', cpus: 2, kernel: { CMA: false } }).mm;
    mm.vm_events[vm_event_index('direct_map_level3_splits')] = 1;
    mm.vm_events[vm_event_index('direct_map_level2_splits')] = 13;
    const real = readFileSync(join(import.meta.dirname, '..', 'fixtures', 'real-6.18-fc', 'meminfo'), 'utf8');
    const dm = (t: string) => t.split('\n').filter((l) => l.startsWith('DirectMap'));
    expect(dm(meminfo(mm))).toEqual(dm(real));
  });

  it('maps at least all RAM on other layouts', () => {
    for (const memory of ['512M', '4G', '100G']) {
      const mm = Machine.boot({ memory, cpus: 2, early: { unmovable: '1M', reclaimable: '1M' } }).mm;
      const mi = meminfo(mm);
      const mapped =
        meminfo_field(mi, 'DirectMap4k') +
        meminfo_field(mi, 'DirectMap2M') +
        meminfo_field(mi, 'DirectMap1G');
      const ram = mm.zones.reduce((s, z) => s + z.present_pages, 0) * 4;
      expect(mapped).toBeGreaterThanOrEqual(ram);
    }
  });
});

describe('/proc/pagetypeinfo', () => {
  it('caps a free-list count at >100000', () => {
    const mm = Machine.boot({ memory: '512M', cpus: 2 }).mm;
    const zone = mm.zone(0, ZONE_DMA32);
    const list = zone.free_list(0, MIGRATE_MOVABLE);
    const saved = mm.frames.list_count[list];
    mm.frames.list_count[list] = 123456;
    expect(pagetypeinfo(mm)).toMatch(/zone +DMA32, type +Movable >100000 /);
    mm.frames.list_count[list] = saved;
  });

  it('counts an isolated pageblock as Isolate', () => {
    const mm = Machine.boot({ memory: '512M', cpus: 2 }).mm;
    const zone = mm.zone(0, ZONE_DMA32);
    const blocks = (t: string) =>
      t
        .split('\n')
        .find((l) => l.startsWith('Node 0, zone    DMA32 '))!
        .trim()
        .split(/ +/)
        .slice(4)
        .map(Number);
    const before = blocks(pagetypeinfo(mm));
    set_pageblock_isolate(mm, zone.zone_start_pfn + 10 * pageblock_nr_pages, true);
    const after = blocks(pagetypeinfo(mm));
    expect(after[1]).toBe(before[1] - 1);
    expect(after[after.length - 1]).toBe(before[before.length - 1] + 1);
  });
});

describe('/proc/zoneinfo', () => {
  it('reports node_unreclaimable once kswapd has failed MAX_RECLAIM_RETRIES times', () => {
    const mm = Machine.boot({ memory: '512M', cpus: 2 }).mm;
    expect(zoneinfo(mm)).toMatch(/node_unreclaimable: {2}0\n/);
    Object.assign(mm.nodes[0], { kswapd_failures: 16 });
    expect(zoneinfo(mm)).toMatch(/node_unreclaimable: {2}1\n/);
  });
});
