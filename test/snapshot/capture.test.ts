/**
 * captureSnapshot on the machine running the tests (Linux only), read back with readSnapshot:
 * the full set as root (kpageflags of the present PFN ranges), the reduced set as an
 * unprivileged user, and --no-kpageflags.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { captureSnapshot } from '../../src/snapshot/capture.ts';
import { KPF, kpfTest } from '../../src/snapshot/kpageflags.ts';
import { parseIomem, systemRamPfns } from '../../src/snapshot/parse.ts';
import { buddyPages, freePagesTolerance, readSnapshot } from '../../src/snapshot/read.ts';
import { cleanupScratch, scratch, walk } from './helpers.ts';

afterAll(cleanupScratch, 60_000);

const linux = process.platform === 'linux' && existsSync('/proc/zoneinfo') && existsSync('/proc/buddyinfo');
const root = process.geteuid?.() === 0;
const repo = fileURLToPath(new URL('../..', import.meta.url));

describe.skipIf(!linux)('captureSnapshot on this machine', () => {
  it.skipIf(!root)('as root: every file, and kpageflags/kpagecount of the present PFN ranges', async () => {
    const dir = join(scratch(), 'snap');
    const r = await captureSnapshot(dir);
    const m = r.manifest;
    expect(m.root).toBe(true);
    // Everything is readable as root; /proc/config.gz only exists with CONFIG_IKCONFIG_PROC.
    expect(m.missing.filter((x) => x.path !== 'proc/config.gz')).toEqual([]);
    const paths = walk(dir);
    for (const p of [
      'proc/buddyinfo',
      'proc/zoneinfo',
      'proc/pagetypeinfo',
      'proc/vmstat',
      'proc/meminfo',
      'proc/slabinfo',
      'proc/sys/kernel/osrelease',
      'proc/sys/vm/min_free_kbytes',
      'proc/kpageflags.gz',
      'proc/kpagecount.gz',
      'snapshot.json',
    ])
      expect(paths).toContain(p);
    expect(paths.some((p) => /^sys\/kernel\/mm\/transparent_hugepage\/enabled$/.test(p))).toBe(true);
    expect(paths.some((p) => /^sys\/devices\/system\/node\/node\d+\/meminfo$/.test(p))).toBe(true);
    expect(paths).not.toContain('proc/sys/vm/stat_refresh');
    expect(paths).not.toContain('proc/sys/vm/compact_memory');
    // The manifest lists exactly the files written.
    expect(m.files.map((f) => f.path).sort()).toEqual(paths.filter((p) => p !== 'snapshot.json'));
    const onDisk = paths.reduce((s, p) => s + statSync(join(dir, p)).size, 0);
    expect(r.total_bytes).toBe(onDisk);

    // Ranges: sorted, inside System RAM, and the files hold 8 bytes per PFN of them.
    const pfns = m.pfn_ranges.reduce((s, x) => s + x.nr_pages, 0);
    expect(pfns).toBeGreaterThan(0);
    const ram = systemRamPfns(parseIomem(readFileSync('/proc/iomem', 'latin1')));
    for (const x of m.pfn_ranges)
      expect(ram.some((a) => a.start <= x.start_pfn && x.start_pfn + x.nr_pages <= a.end)).toBe(true);
    for (const f of m.files.filter((x) => x.compression)) expect(f.bytes).toBe(pfns * 8);

    const s = await readSnapshot(dir);
    expect(s.kpage?.total_pages).toBe(pfns);
    expect(s.kpage?.ranges.map((x) => x.flags.length / 2)).toEqual(m.pfn_ranges.map((x) => x.nr_pages));
    expect(s.release).toBe(readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim());

    // Round trip: buddyinfo totals are zoneinfo's free pages within what pcp lists move; pages
    // flagged KPF_BUDDY are buddyinfo's free pages within the same drift (the dump takes time).
    let tolerance = 0;
    let free = 0;
    for (const b of s.buddyinfo) {
      const z = s.zoneinfo.find((x) => x.node === b.node && x.zone === b.zone)!;
      expect(Math.abs(buddyPages(b) - z.pages_free)).toBeLessThanOrEqual(freePagesTolerance(z));
      tolerance += freePagesTolerance(z);
      free += buddyPages(b);
    }
    let flaggedBuddy = 0;
    let nopage = 0;
    for (const x of s.kpage!.ranges)
      for (let i = 0; i < x.nr_pages; i++) {
        if (kpfTest(x.flags, i, KPF.KPF_BUDDY)) flaggedBuddy++;
        if (kpfTest(x.flags, i, KPF.KPF_NOPAGE)) nopage++;
      }
    expect(Math.abs(flaggedBuddy - free)).toBeLessThanOrEqual(tolerance);
    // Only present memory was dumped: no holes.
    expect(nopage).toBe(0);

    // Bounded: at most 16 bytes per PFN (incompressible worst case) plus the text files.
    expect(r.total_bytes).toBeLessThan(pfns * 16 + (4 << 20));
    console.log(
      `capture: ${m.capture_ms} ms (kpage ${m.kpage_ms} ms) for ${pfns} PFNs, ${r.total_bytes} bytes, ${m.files.length} files`,
    );
  });

  it('with kpageflags off: the text files only, and the manifest says what that costs', async () => {
    const dir = join(scratch(), 'snap');
    const r = await captureSnapshot(dir, { kpageflags: false });
    expect(r.manifest.pfn_ranges).toEqual([]);
    expect(r.manifest.missing.map((x) => x.path)).toEqual(
      expect.arrayContaining(['proc/kpageflags', 'proc/kpagecount']),
    );
    expect(r.manifest.missing.find((x) => x.path === 'proc/kpageflags')?.cost).toMatch(/estimate/);
    const s = await readSnapshot(dir);
    expect(s.kpage).toBeNull();
    expect(s.zoneinfo.length).toBeGreaterThan(0);
    expect(r.total_bytes).toBeLessThan(4 << 20);
  });

  it('refuses a directory that is not empty', async () => {
    const dir = scratch();
    await captureSnapshot(join(dir, 'a'), { kpageflags: false });
    await expect(captureSnapshot(join(dir, 'a'), { kpageflags: false })).rejects.toThrow(/not empty/);
  });

  it('unprivileged: the reduced set, each missing file with its reason and cost', async () => {
    const dir = join(scratch(), 'snap');
    let manifestText: string;
    if (root) {
      // A real unprivileged capture: the same code as nobody (uid 65534).
      chmodSync(join(dir, '..'), 0o777);
      const p = spawnSync(process.execPath, ['--import', 'tsx', 'test/snapshot/capture-child.ts', dir], {
        cwd: repo,
        encoding: 'utf8',
        uid: 65534,
        gid: 65534,
        env: { ...process.env, HOME: '/tmp' },
      });
      expect(p.status, p.stderr).toBe(0);
      manifestText = p.stdout;
    } else {
      manifestText = JSON.stringify((await captureSnapshot(dir)).manifest);
    }
    const m = JSON.parse(manifestText);
    expect(m.root).toBe(false);
    const missing = new Map(m.missing.map((x: { path: string; reason: string }) => [x.path, x.reason]));
    for (const p of ['proc/pagetypeinfo', 'proc/slabinfo', 'proc/kpageflags', 'proc/kpagecount'])
      expect(missing.get(p), p).toMatch(/EACCES|EPERM/);
    expect(missing.get('proc/iomem')).toMatch(/zeroed/);
    for (const x of m.missing) expect(x.cost.length).toBeGreaterThan(10);
    const s = await readSnapshot(dir);
    expect(s.pagetypeinfo).toBeNull();
    expect(s.kpage).toBeNull();
    expect(s.buddyinfo.length).toBeGreaterThan(0);
  });
});
