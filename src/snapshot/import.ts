/**
 * `fromSnapshot()`: a snapshot of a real machine → a Machine in the same physical state.
 *
 * The machine is booted with the snapshot's memory map (System RAM ranges, memblock
 * reservations), CPUs, THP mode, swap and lazy zone growth, its vm sysctls are written, and
 * then every page is put where the snapshot says (sim/frame_image.ts): exactly, from kpageflags;
 * as an estimate consistent with buddyinfo and pagetypeinfo without it (estimate.ts). The report
 * says how close the result is: each zone's managed and free pages and free blocks per order, the
 * model's next to the snapshot's, and everything left out. docs/import.md has the rules.
 */
import { MAX_NR_ZONES, PAGES_PER_SECTION, zone_names } from '../mm/mmzone.ts';
import type { MachineConfigInput } from '../sim/config.ts';
import { type FrameImage, type ImageReport, installFrameImage, PC_RESERVED } from '../sim/frame_image.ts';
import { Machine } from '../sim/machine.ts';
import { classifyKpage } from './classify.ts';
import { estimateImage } from './estimate.ts';
import { SnapshotError } from './manifest.ts';
import { assignPageblocks } from './pageblocks.ts';
import { parseBuddyinfo, systemRamPfns } from './parse.ts';
import { MAX_KPAGE_PFNS, readSnapshot, type Snapshot } from './read.ts';

const PAGE = 4096;
const ZONES: readonly string[] = zone_names;
/** x86's PCI hole, 3–4 GiB, in pfns. */
const PCI_HOLE = { start: 786432, end: 1048576 };
/** vm sysctls an import never writes: actions, and what the image itself rebuilds. */
const SKIP_SYSCTLS = new Set([
  'compact_memory',
  'drop_caches',
  'stat_refresh',
  'nr_hugepages',
  'nr_hugepages_mempolicy',
]);

export interface ImportOptions {
  /** The model's PRNG seed (default 1). */
  seed?: number;
  /** Ignore kpageflags even when present: the estimate from the /proc counts alone. */
  estimate?: boolean;
  /** Extra machine configuration (map_contig policy, devices, costs), merged over what the snapshot gives. */
  config?: Partial<MachineConfigInput>;
}

export interface ZoneComparison {
  node: number;
  zone: string;
  managed: { snapshot: number; model: number };
  /** Free pages: on the buddy lists and the per-cpu lists. */
  free: { snapshot: number; model: number };
  /** Free blocks per order. */
  buddy: { snapshot: number[]; model: number[] };
}

export interface ImportReport {
  source: string;
  release: string | null;
  /** 'kpageflags': every page placed as it was; 'estimate': placed consistently with the counts. */
  method: 'kpageflags' | 'estimate';
  image: ImageReport;
  zones: ZoneComparison[];
  /** Bare pages (no flag, no mapping) and how many were taken as per-cpu pages. */
  bare?: { pages: number; free: number };
  /** Sysctls written, and those the model refused or does not have. */
  sysctls: { written: string[]; skipped: string[] };
  notes: string[];
}

export interface Imported {
  machine: Machine;
  report: ImportReport;
}

/** Read a snapshot (directory or tar) and import it. Throws SnapshotError naming a bad file. */
export async function fromSnapshot(path: string, opts: ImportOptions = {}): Promise<Imported> {
  return importSnapshot(await readSnapshot(path, { kpage: !opts.estimate }), opts);
}

/** Import a snapshot already read. */
export function importSnapshot(s: Snapshot, opts: ImportOptions = {}): Imported {
  const notes = [...s.missing.map((m) => `missing ${m.path}: ${m.cost ?? m.reason}`)];
  const useKpage = s.kpage !== null && !opts.estimate;
  const ram = ramRanges(s, notes);
  const end = ram.at(-1)?.end ?? 0;
  if (!end)
    throw new SnapshotError(
      'proc/zoneinfo',
      'no zone gives its start_pfn, and proc/iomem has no System RAM: no memory map to import',
    );
  if (end > MAX_KPAGE_PFNS)
    throw new SnapshotError(
      s.iomem ? 'proc/iomem' : 'proc/zoneinfo',
      `RAM reaches PFN ${end}: beyond the ${MAX_KPAGE_PFNS} (1 TiB) a model machine is built for`,
    );
  let image: FrameImage;
  let bare: ImportReport['bare'];
  if (useKpage) {
    const c = classifyKpage(s, s.kpage!, ram);
    const pb = assignPageblocks(s, c.classes);
    notes.push(...pb.notes);
    image = {
      classes: c.classes,
      age: c.age,
      pageblock_mt: pb.pageblock_mt,
      hugetlb: c.hugetlb,
      pcp: pcpLists(s),
    };
    bare = { pages: c.bare, free: c.bare_free };
  } else {
    const e = estimateImage(s, ram, opts.seed ?? 1);
    notes.push(...e.notes);
    image = { ...e.image, pcp: pcpLists(s) };
  }
  // Reservations come from the image when it covers the initialised RAM: kpageflags usually, an
  // estimate unless a zone grows lazily (its present − managed pages are mostly not yet grown,
  // not reserved, so the model's own reservations stand).
  let whole = useKpage || !lazyGrowth(s);
  if (useKpage) {
    const covered = s.kpage!.total_pages;
    const expected = initialisedPages(s);
    if (covered < expected * 0.99) {
      whole = false;
      notes.push(
        `kpageflags covers ${covered} of the ${expected} initialised pages: the rest is imported as the model boots it (free)`,
      );
    }
  }
  const config = machineConfig(s, ram, whole ? image : null, notes, opts);
  const machine = Machine.boot(config);
  image.grow_to = growTargets(s, config);
  const sysctls = machine.instantly(() => writeSysctls(machine, s, notes));
  const imageReport = installFrameImage(machine, image);
  notes.push(...imageReport.notes);
  return {
    machine,
    report: {
      source: s.source,
      release: s.release,
      method: useKpage ? 'kpageflags' : 'estimate',
      image: imageReport,
      zones: compareZones(s, machine),
      bare,
      sysctls,
      notes,
    },
  };
}

/** Pages with initialised struct pages: every present page, but a lazily grown zone's only up to its managed pages, in whole sections. */
function initialisedPages(s: Snapshot): number {
  const lazy = lazyGrowth(s);
  let n = 0;
  for (const z of s.zoneinfo)
    n +=
      lazy && z.zone === 'Normal'
        ? Math.min(z.present, Math.ceil(z.managed / PAGES_PER_SECTION) * PAGES_PER_SECTION)
        : z.present;
  return n;
}

/** Each zone's per-cpu lists by CPU (pages held, `high`), by the model's zone id. */
function pcpLists(s: Snapshot): Map<number, { count: number; high: number }[]> {
  const out = new Map<number, { count: number; high: number }[]>();
  for (const z of s.zoneinfo) {
    const idx = ZONES.indexOf(z.zone);
    if (idx < 0 || !z.pagesets.length) continue;
    const lists: { count: number; high: number }[] = [];
    for (const p of z.pagesets) lists[p.cpu] = { count: p.count, high: p.high };
    out.set(
      z.node * MAX_NR_ZONES + idx,
      Array.from(lists, (l) => l ?? { count: 0, high: 0 }),
    );
  }
  return out;
}

/** Booted with deferred_init=lazy: the uninitialised top of Normal is not dumped, by design. */
function lazyGrowth(s: Snapshot): boolean {
  return /(^|\s)deferred_init=lazy(\s|$)/.test(s.cmdline ?? '');
}

/** The machine a snapshot describes: its memory map, CPUs, nodes, THP mode, swap, lazy growth. */
function machineConfig(
  s: Snapshot,
  ram: PfnRun[],
  image: FrameImage | null,
  notes: string[],
  opts: ImportOptions,
): MachineConfigInput {
  const memory = ram.reduce((n, r) => n + (r.end - r.start), 0) * PAGE;
  const nodes = new Set(s.zoneinfo.map((z) => z.node)).size || 1;
  if (nodes > 1)
    notes.push(
      `${nodes} NUMA nodes: the model splits memory evenly between them, which may not be where this machine splits it`,
    );
  let cpus = 1;
  for (const z of s.zoneinfo) for (const p of z.pagesets) cpus = Math.max(cpus, p.cpu + 1);
  const thp = s.thp?.enabled;
  const swapKb = s.meminfo?.SwapTotal ?? 0;
  const config: MachineConfigInput = {
    memory,
    ram: ram.map((r) => ({ start: r.start * PAGE, size: (r.end - r.start) * PAGE })),
    nodes,
    cpus: Math.max(cpus, nodes),
    thp: thp === 'always' || thp === 'madvise' || thp === 'never' ? thp : 'madvise',
    deferred_init: lazyGrowth(s) ? 'lazy' : 'off',
    swap: swapKb * 1024 >= 2 * PAGE ? swapKb * 1024 : 0,
    early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
    seed: opts.seed ?? 1,
    ...opts.config,
  };
  if (image) config.memblock_reserved = reservedRuns(image.classes, ram);
  if ((s.meminfo?.CmaTotal ?? 0) > 0)
    notes.push(
      `CmaTotal ${s.meminfo!.CmaTotal} kB: CMA areas are not rebuilt; their pageblocks are imported as Movable`,
    );
  if (s.zoneinfo.some((z) => z.zone === 'Movable' && z.present > 0))
    notes.push('zone Movable is not rebuilt: its memory is imported into the zone below it');
  return config;
}

/** A pfn range [start, end). */
export interface PfnRun {
  start: number;
  end: number;
}

/** System RAM: /proc/iomem's ranges when root read it, else the zones' spans. */
export function ramRanges(s: Snapshot, notes: string[]): PfnRun[] {
  const fromIomem = s.iomem ? systemRamPfns(s.iomem) : [];
  if (fromIomem.length) return fromIomem;
  const out: PfnRun[] = [];
  for (const z of [...s.zoneinfo].sort((a, b) => (a.start_pfn ?? 0) - (b.start_pfn ?? 0))) {
    if (z.start_pfn === undefined || !z.present) continue;
    const start = Math.max(z.start_pfn, 1);
    const end = z.start_pfn + z.spanned;
    const last = out.at(-1);
    if (last && last.end >= start) last.end = Math.max(last.end, end);
    else out.push({ start, end });
  }
  // The x86 holes: below 1 MiB (EBDA, VGA, ROM) when DMA has one, and the PCI hole at 3–4 GiB
  // when DMA32 spans it with at least that much missing.
  const dma = s.zoneinfo.find((z) => z.zone === 'DMA');
  if (dma && dma.spanned > dma.present) cut(out, 159, 256);
  const dma32 = s.zoneinfo.find((z) => z.zone === 'DMA32');
  if (
    dma32?.start_pfn !== undefined &&
    dma32.start_pfn + dma32.spanned > PCI_HOLE.end &&
    dma32.spanned - dma32.present >= PCI_HOLE.end - PCI_HOLE.start
  )
    cut(out, PCI_HOLE.start, PCI_HOLE.end);
  notes.push(
    "no System RAM ranges (proc/iomem missing or read without root): RAM is taken as the zones' spans",
  );
  return out.filter((r) => r.end > r.start);
}

/** Remove [start, end) from sorted ranges. */
function cut(ranges: PfnRun[], start: number, end: number): void {
  const out = ranges.flatMap((r) =>
    r.end <= start || r.start >= end
      ? [r]
      : [
          ...(r.start < start ? [{ start: r.start, end: start }] : []),
          ...(end < r.end ? [{ start: end, end: r.end }] : []),
        ],
  );
  ranges.splice(0, ranges.length, ...out);
}

/** Runs of reserved pages inside RAM, as byte ranges; the one at 16 MiB (or the largest) is the kernel image. */
function reservedRuns(classes: Uint8Array, ram: PfnRun[]): { start: number; size: number; name?: string }[] {
  const runs: PfnRun[] = [];
  for (const r of ram) {
    let pfn = r.start;
    while (pfn < r.end) {
      if (classes[pfn] !== PC_RESERVED) {
        pfn++;
        continue;
      }
      const start = pfn;
      while (pfn < r.end && classes[pfn] === PC_RESERVED) pfn++;
      runs.push({ start, end: pfn });
    }
  }
  let kernel = runs.findIndex((r) => r.start <= 4096 && r.end > 4096);
  if (kernel < 0 && runs.length)
    kernel = runs.reduce((best, r, i) => (r.end - r.start > runs[best].end - runs[best].start ? i : best), 0);
  return runs.map((r, i) => ({
    start: r.start * PAGE,
    size: (r.end - r.start) * PAGE,
    ...(i === kernel ? { name: 'kernel' } : {}),
  }));
}

/** How far each lazily grown zone must be initialised: as far as the snapshot's kpageflags go, or its managed pages. */
function growTargets(s: Snapshot, config: MachineConfigInput): Map<number, number> | undefined {
  if (config.deferred_init !== 'lazy') return undefined;
  const out = new Map<number, number>();
  for (const z of s.zoneinfo) {
    if (z.start_pfn === undefined || !z.present) continue;
    const idx = ZONES.indexOf(z.zone);
    if (idx < 0) continue;
    // As far as the kernel had grown it (its present pages, in whole sections), or as far as
    // kpageflags goes if that is further.
    let end = z.start_pfn + Math.ceil(z.managed / PAGES_PER_SECTION) * PAGES_PER_SECTION;
    if (s.kpage) {
      for (const r of s.kpage.ranges)
        if (r.start_pfn < z.start_pfn + z.spanned && r.start_pfn + r.nr_pages > z.start_pfn)
          end = Math.max(end, Math.min(r.start_pfn + r.nr_pages, z.start_pfn + z.spanned));
    }
    out.set(z.node * MAX_NR_ZONES + idx, end);
  }
  return out;
}

/** The snapshot's vm sysctls where the model has them and they differ; refusals become notes. */
function writeSysctls(machine: Machine, s: Snapshot, notes: string[]): ImportReport['sysctls'] {
  const written: string[] = [];
  const skipped: string[] = [];
  const have = new Set(machine.listFiles('/proc/sys/vm'));
  for (const [name, value] of Object.entries(s.sysctl)) {
    const path = `/proc/sys/vm/${name}`;
    if (SKIP_SYSCTLS.has(name)) continue;
    if (!have.has(path)) {
      skipped.push(name);
      continue;
    }
    try {
      if (machine.readFile(path).trim() === value.trim()) continue;
      machine.writeFile(path, value);
      written.push(name);
    } catch (e) {
      skipped.push(name);
      notes.push(`sysctl vm.${name} = ${value}: the model refused it (${(e as Error).message})`);
    }
  }
  const defrag = s.thp?.defrag;
  if (defrag) {
    try {
      machine.writeFile('/sys/kernel/mm/transparent_hugepage/defrag', defrag);
    } catch (e) {
      notes.push(`transparent_hugepage/defrag = ${defrag}: ${(e as Error).message}`);
    }
  }
  return { written, skipped };
}

/** Each zone's managed pages, free pages and free blocks: the snapshot's next to the model's. */
export function compareZones(s: Snapshot, machine: Machine): ZoneComparison[] {
  const model = parseBuddyinfo(machine.readFile('/proc/buddyinfo'));
  const out: ZoneComparison[] = [];
  for (const z of s.zoneinfo) {
    if (!z.present) continue;
    const idx = ZONES.indexOf(z.zone);
    const mz = idx < 0 ? undefined : machine.mm.zones[z.node * MAX_NR_ZONES + idx];
    const sb = s.buddyinfo.find((b) => b.node === z.node && b.zone === z.zone)?.nr_free ?? [];
    const mb = model.find((b) => b.node === z.node && b.zone === z.zone)?.nr_free ?? [];
    let pcp = 0;
    for (const p of z.pagesets) pcp += p.count;
    out.push({
      node: z.node,
      zone: z.zone,
      managed: { snapshot: z.managed, model: mz?.managed_pages ?? 0 },
      free: {
        snapshot: z.pages_free + pcp,
        model: mb.reduce((n, c, o) => n + c * 2 ** o, 0) + (mz ? mz.pcp.count.reduce((a, b) => a + b, 0) : 0),
      },
      buddy: { snapshot: sb, model: mb },
    });
  }
  return out;
}
