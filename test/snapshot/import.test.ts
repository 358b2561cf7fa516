/**
 * Importing snapshots: the QEMU guests' (Linux 6.1, kpageflags from PFN 0, no manifest) and this
 * machine's fixture (6.18, one 128 MiB section of kpageflags, lazily grown Normal).
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  type FrameImage,
  installFrameImage,
  PC_ANON,
  PC_FILE,
  PC_FREE,
  PC_KERNEL,
  PC_NAMES,
  PC_THP,
} from '../../src/sim/frame_image.ts';
import { Machine } from '../../src/sim/machine.ts';
import { classifyKpage } from '../../src/snapshot/classify.ts';
import { importSnapshot } from '../../src/snapshot/import.ts';
import { assignPageblocks } from '../../src/snapshot/pageblocks.ts';
import { readSnapshot, type Snapshot } from '../../src/snapshot/read.ts';

const SHAPES = ['anon-holes', 'page-cache', 'unmovable', 'mixed'] as const;
const guest = (shape: string): Promise<Snapshot> => readSnapshot(`fidelity/qemu/samples/${shape}/snapshot`);

/** "Node 0, zone DMA32 ..." lines → zone → counts. */
function blockCounts(pagetypeinfo: string): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  const i = pagetypeinfo.indexOf('Number of blocks type');
  for (const line of pagetypeinfo.slice(i).split('\n').slice(1)) {
    const m = /^Node \d+, zone\s+(\S+)\s+(.*)$/.exec(line);
    // Unmovable, Movable, Reclaimable, HighAtomic: the columns every 6.x kernel has.
    if (m) out[m[1]] = m[2].trim().split(/\s+/).map(Number).slice(0, 4);
  }
  return out;
}

describe('importSnapshot() from kpageflags', () => {
  it.each(SHAPES)('%s: every page placed as the guest had it, the model consistent', async (shape) => {
    const s = await guest(shape);
    const { machine, report } = importSnapshot(s);
    expect(machine.invariantViolations()).toEqual([]);
    expect(report.method).toBe('kpageflags');
    // Movable and free pages all land where kpageflags put them, but for the few the model's
    // own kernel objects (the synthetic owners' process and files) had taken.
    const conflicts = report.image.boot_conflicts;
    for (const k of ['free', 'anon', 'thp', 'file', 'file_dirty', 'shmem', 'hugetlb'] as const)
      expect(report.image.classes[k].installed + (conflicts[k] ?? 0), k).toBe(report.image.classes[k].image);
    expect(Object.values(conflicts).reduce((a, b) => a + (b ?? 0), 0)).toBeLessThan(64);
    expect(report.image.pgtables_from_free).toBe(0);
    for (const z of report.zones) {
      expect(z.managed.model, z.zone).toBe(z.managed.snapshot);
      // The model's free pages: buddyinfo's plus the per-cpu pages the rule freed.
      const buddy = z.buddy.snapshot.reduce((n, c, o) => n + c * 2 ** o, 0);
      expect(z.free.model).toBeGreaterThanOrEqual(buddy);
      expect(z.free.model).toBeLessThanOrEqual(z.free.snapshot);
      // Whole free 4 MiB blocks are as they were, or more: per-cpu pages freed can complete some.
      expect(z.buddy.model[10], z.zone).toBeGreaterThanOrEqual(z.buddy.snapshot[10]);
    }
    // Pageblock types: pagetypeinfo's counts exactly.
    const want = blockCounts(
      readFileSync(`fidelity/qemu/samples/${shape}/snapshot/proc/pagetypeinfo`, 'utf8'),
    );
    expect(blockCounts(machine.readFile('/proc/pagetypeinfo'))).toEqual(want);
  });

  it('rebuilds the same machine from the same snapshot, byte for byte', async () => {
    const s = await guest('mixed');
    const a = importSnapshot(s).machine;
    const b = importSnapshot(s).machine;
    for (const f of ['/proc/buddyinfo', '/proc/pagetypeinfo', '/proc/zoneinfo', '/proc/meminfo'])
      expect(a.readFile(f), f).toBe(b.readFile(f));
    expect(
      Buffer.from(a.readFileBytes('/proc/kpageflags')).equals(
        Buffer.from(b.readFileBytes('/proc/kpageflags')),
      ),
    ).toBe(true);
  });

  it("puts anonymous pages in a process, page cache in a file, and the guest's sysctls in place", async () => {
    const s = await guest('mixed');
    const { machine, report } = importSnapshot(s);
    const meminfo = machine.readFile('/proc/meminfo');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(meminfo)![1]);
    expect(kb('AnonPages')).toBe(report.image.classes.anon.installed * 4);
    expect(kb('Cached')).toBeGreaterThanOrEqual(report.image.classes.file.installed * 4);
    expect(machine.readFile('/proc/sys/vm/min_free_kbytes').trim()).toBe(s.sysctl.min_free_kbytes);
    expect(machine.readFile('/sys/kernel/mm/transparent_hugepage/enabled')).toContain('[always]');
    // Simulated time has not started; the import's own work left no counts behind.
    expect(machine.now).toBe(0);
    expect(machine.readFile('/proc/vmstat')).toMatch(/^pgfault 0$/m);
  });

  it('imports a lazily grown 6.18 machine up to what kpageflags covers, and says what it left to the model', async () => {
    const s = await readSnapshot('test/fixtures/snapshot');
    const { machine, report } = importSnapshot(s);
    expect(machine.invariantViolations()).toEqual([]);
    expect(machine.config.deferred_init).toBe('lazy');
    const normal = report.zones.find((z) => z.zone === 'Normal')!;
    expect(normal.managed.model).toBe(normal.managed.snapshot);
    expect(report.notes.join('\n')).toMatch(/kpageflags covers \d+ of the \d+ initialised pages/);
  });
});

describe('classifyKpage() and assignPageblocks()', () => {
  it("counts every page once and finds the guests' shapes in them", async () => {
    const anon = classifyKpage(await guest('anon-holes'), (await guest('anon-holes')).kpage!);
    const cache = classifyKpage(await guest('page-cache'), (await guest('page-cache')).kpage!);
    const count = (c: Uint8Array, k: number) => c.reduce((n, x) => n + (x === k ? 1 : 0), 0);
    // anon-holes keeps ~410 MiB of anonymous memory, page-cache ~410 MiB of file pages.
    expect(count(anon.classes, PC_ANON) * 4096).toBeGreaterThan(380 << 20);
    expect(count(cache.classes, PC_FILE) * 4096).toBeGreaterThan(380 << 20);
    expect(count(anon.classes, PC_THP)).toBe(0); // MADV_NOHUGEPAGE
    // Unflagged pages become free up to what the per-cpu lists held, the rest kernel.
    expect(anon.bare_free).toBeLessThanOrEqual(anon.bare);
  });

  it('types the pageblocks with the most kernel pages unmovable, as many as pagetypeinfo counts', async () => {
    const s = await guest('unmovable');
    const c = classifyKpage(s, s.kpage!);
    const { pageblock_mt } = assignPageblocks(s, c.classes);
    const kernelIn = (pb: number) => {
      let n = 0;
      for (let p = pb * 512; p < pb * 512 + 512; p++) if (c.classes[p] === PC_KERNEL) n++;
      return n;
    };
    const unmovable = [...pageblock_mt.keys()].filter((pb) => pageblock_mt[pb] === 0 && pb >= 8);
    const movable = [...pageblock_mt.keys()].filter((pb) => pageblock_mt[pb] === 1 && pb >= 8);
    const minUnmovable = Math.min(...unmovable.map(kernelIn));
    const maxMovable = Math.max(...movable.map(kernelIn));
    expect(minUnmovable).toBeGreaterThanOrEqual(maxMovable);
  });
});

describe('installFrameImage()', () => {
  it('places free, anonymous, file and kernel pages where the image says on a booted machine', () => {
    const m = Machine.boot({
      memory: '256M',
      cpus: 2,
      early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
    });
    const n = m.mm.frames.nr_frames;
    const classes = new Uint8Array(n);
    // Above 64 MiB: blocks of 512 pages cycling free / anon / file / kernel, one pattern per block.
    const kinds = [PC_FREE, PC_ANON, PC_FILE, PC_KERNEL];
    for (let pfn = 16384; pfn < 65536 - 1024; pfn++) classes[pfn] = kinds[(pfn >> 9) % 4];
    const image: FrameImage = { classes, pageblock_mt: new Uint8Array(n >> 9).fill(255), hugetlb: [] };
    const r = installFrameImage(m, image);
    expect(m.invariantViolations()).toEqual([]);
    for (const k of [PC_FREE, PC_ANON, PC_FILE]) {
      const name = PC_NAMES[k];
      expect(r.classes[name].installed + (r.boot_conflicts[name] ?? 0), name).toBe(r.classes[name].image);
    }
    // The owners' kernel objects (process, VMA, files) took a few free pages, nothing more.
    expect(r.boot_conflicts.free ?? 0).toBeLessThan(256);
    const f = m.mm.frames;
    // A "kernel" block is allocated and on no LRU list; an anonymous one is mapped.
    expect(f.mapcount[16384 + 512]).toBe(1);
    expect(f.mapping[16384 + 3 * 512]).toBe(0);
    expect(m.now).toBe(0);
  });
});

describe('importSnapshot() of this host (Linux 6.18, 24 GiB, deferred_init=lazy)', () => {
  it('grows Normal exactly as far as the kernel had, with its free blocks on the buddy lists and its per-cpu pages on the per-cpu lists', async () => {
    const s = await readSnapshot('fidelity/host/runs/anon-holes-2/snapshot.tar.gz');
    const { machine, report } = importSnapshot(s);
    expect(machine.invariantViolations()).toEqual([]);
    const normal = report.zones.find((z) => z.zone === 'Normal')!;
    expect(normal.managed.model).toBe(normal.managed.snapshot);
    // Free ≥ 2 MiB blocks: what kpageflags shows whole and free (free-blocks.ts counts 4868).
    expect(normal.buddy.model[9] + 2 * normal.buddy.model[10]).toBe(4868);
    const pcp = machine.mm.zones[2].pcp.count.reduce((a, b) => a + b, 0);
    const snapPcp = s.zoneinfo.find((z) => z.zone === 'Normal')!.pagesets.reduce((n, p) => n + p.count, 0);
    expect(pcp).toBeLessThanOrEqual(snapPcp);
    expect(pcp).toBeGreaterThan(snapPcp * 0.9);
  });
});

describe('importSnapshot() refuses what it cannot build, naming the file', () => {
  it('a memory map past 1 TiB, or none at all', async () => {
    const s = await guest('unmovable');
    const huge = { ...s, iomem: [{ start: 0x100000, end: 2 ** 41, name: 'System RAM', depth: 0 }] };
    expect(() => importSnapshot(huge)).toThrow(
      /proc\/iomem: RAM reaches PFN \d+: beyond the 268435456 \(1 TiB\)/,
    );
    const none = { ...s, iomem: null, zoneinfo: s.zoneinfo.map((z) => ({ ...z, start_pfn: undefined })) };
    expect(() => importSnapshot(none)).toThrow(/proc\/zoneinfo: no zone gives its start_pfn/);
  });
});
