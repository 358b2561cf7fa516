/**
 * readSnapshot on the committed fixture (a real 6.18 capture; kpageflags of one 128 MiB section),
 * so these run on any machine: every file parses into its typed form, and the same snapshot
 * reads the same from a directory, a tar, a tar.gz, without its manifest and with raw binaries.
 */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { KPF, kpfTest } from '../../src/snapshot/kpageflags.ts';
import { buddyPages, freePagesTolerance, kpageAt, readSnapshot } from '../../src/snapshot/read.ts';
import { cleanupScratch, FIXTURE, fixtureCopy, scratch, tarOf } from './helpers.ts';

afterAll(cleanupScratch, 60_000);

describe('readSnapshot of the fixture', () => {
  it('parses every file into its typed form', async () => {
    const s = await readSnapshot(FIXTURE);
    expect(s.release).toMatch(/^6\.18\./);
    expect(s.manifest?.format).toBe('mapcontig-snapshot');
    const normal = s.zoneinfo.find((z) => z.zone === 'Normal');
    expect(normal).toMatchObject({ node: 0, start_pfn: 1048576 });
    expect(normal?.min).toBeLessThan(normal?.low as number);
    expect(normal?.low).toBeLessThan(normal?.high as number);
    expect(normal?.protection).toHaveLength(5);
    expect(normal?.pagesets.length).toBeGreaterThan(0);
    expect(normal?.stats.nr_free_pages).toBeGreaterThan(0);
    expect(s.zoneinfo.find((z) => z.zone === 'DMA')?.node_stats?.nr_inactive_file).toBeGreaterThanOrEqual(0);
    expect(s.zoneinfo.find((z) => z.zone === 'Movable')?.start_pfn).toBeUndefined();
    expect(s.buddyinfo.map((b) => b.zone)).toEqual(['DMA', 'DMA32', 'Normal']);
    expect(s.buddyinfo[0].nr_free).toHaveLength(11);
    expect(s.pagetypeinfo?.pages_per_block).toBe(512);
    expect(s.pagetypeinfo?.types).toContain('Movable');
    expect(s.vmstat?.nr_free_pages).toBeGreaterThan(0);
    expect(s.meminfo?.MemTotal).toBeGreaterThan(0);
    expect(s.slabinfo?.some((c) => c.name === 'kmalloc-64')).toBe(true);
    expect(s.sysctl.min_free_kbytes).toMatch(/^\d+$/);
    expect(s.sysctl.stat_refresh).toBeUndefined();
    expect(s.hugepages.map((h) => h.size_kb)).toEqual([2048, 1048576]);
    expect(s.hugepages[0].nodes[0].node).toBe(0);
    expect(s.thp?.enabled).toMatch(/^(always|madvise|never)$/);
    expect(s.thp?.sizes[2048]?.enabled).toBeDefined();
    expect(s.node_meminfo[0].meminfo.MemTotal).toBeGreaterThan(0);
    expect(s.cmdline).toContain('deferred_init=lazy');
    expect(s.config?.CONFIG_TRANSPARENT_HUGEPAGE).toBe('y');
    expect(s.missing).toEqual([]);
  });

  it('has buddyinfo totals within the per-cpu lists of zoneinfo free pages', async () => {
    const s = await readSnapshot(FIXTURE);
    for (const b of s.buddyinfo) {
      const z = s.zoneinfo.find((x) => x.node === b.node && x.zone === b.zone);
      expect(z).toBeDefined();
      expect(Math.abs(buddyPages(b) - (z?.pages_free ?? 0))).toBeLessThanOrEqual(freePagesTolerance(z!));
    }
    expect(s.warnings).toEqual([]);
  });

  it('loads kpageflags and kpagecount as 2 words per PFN of the manifest ranges', async () => {
    const s = await readSnapshot(FIXTURE);
    const k = s.kpage!;
    expect(k.ranges).toHaveLength(1);
    expect(k.total_pages).toBe(32768);
    expect(k.ranges[0].flags.length).toBe(2 * 32768);
    expect(k.ranges[0].count.length).toBe(2 * 32768);
    expect(k.layout.bits.KPF_PGTABLE).toBe(26);
    // Real memory: some page has flags, nothing in the section is a hole.
    let flagged = 0;
    for (let i = 0; i < 32768; i++) {
      if (k.ranges[0].flags[2 * i] !== 0) flagged++;
      expect(kpfTest(k.ranges[0].flags, i, KPF.KPF_NOPAGE)).toBe(false);
    }
    expect(flagged).toBeGreaterThan(0);
    expect(kpageAt(k, 1048576)).not.toBeNull();
    expect(kpageAt(k, 1048576 + 32768)).toBeNull();
  });

  it('reads the same from a tar, a tar.gz under a prefix, and without the manifest', async () => {
    const ref = await readSnapshot(FIXTURE);
    const dir = scratch();
    writeFileSync(join(dir, 's.tar'), tarOf(FIXTURE));
    writeFileSync(join(dir, 's.tgz'), tarOf(FIXTURE, './bundle/', true));
    for (const f of ['s.tar', 's.tgz']) {
      const s = await readSnapshot(join(dir, f));
      expect(s.zoneinfo).toEqual(ref.zoneinfo);
      expect(s.kpage?.total_pages).toBe(32768);
      expect(s.kpage?.ranges[0].flags).toEqual(ref.kpage?.ranges[0].flags);
    }
    // No manifest: kpageflags are read as starting at PFN 0, so drop them; the rest reads.
    const bare = fixtureCopy();
    rmSync(join(bare, 'snapshot.json'));
    rmSync(join(bare, 'proc/kpageflags.gz'));
    rmSync(join(bare, 'proc/kpagecount.gz'));
    const s = await readSnapshot(bare);
    expect(s.manifest).toBeNull();
    expect(s.release).toBe(ref.release);
    expect(s.kpage).toBeNull();
    expect(s.missing.map((m) => m.path)).toContain('proc/kpageflags');
  });

  it('reads uncompressed binaries, and a `dd` of /proc/kpageflags from PFN 0 without a manifest', async () => {
    const dir = fixtureCopy();
    for (const f of ['kpageflags', 'kpagecount']) {
      const raw = gunzipSync(readFileSync(join(FIXTURE, `proc/${f}.gz`)));
      rmSync(join(dir, `proc/${f}.gz`));
      writeFileSync(join(dir, `proc/${f}`), raw);
    }
    const m = JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8'));
    m.files = m.files.filter((f: { compression?: string }) => !f.compression);
    writeFileSync(join(dir, 'snapshot.json'), JSON.stringify(m));
    const s = await readSnapshot(dir);
    expect(s.kpage?.flags_file).toBe('proc/kpageflags');
    expect(s.kpage?.total_pages).toBe(32768);

    // A whole-file dump (PFN 0 up) with no manifest: one range from PFN 0.
    rmSync(join(dir, 'snapshot.json'));
    for (const f of ['kpageflags', 'kpagecount'])
      writeFileSync(join(dir, `proc/${f}`), Buffer.alloc(8 * 4096, 0));
    const t = await readSnapshot(dir);
    expect(t.kpage?.ranges).toMatchObject([{ start_pfn: 0, nr_pages: 4096 }]);
  });

  it('can skip loading the binaries', async () => {
    const s = await readSnapshot(FIXTURE, { kpage: false });
    expect(s.kpage).toBeNull();
  });
});
