/**
 * Machine configuration: what a user writes (sizes as strings like '64G'), validated with a
 * schema, and turned into the physical layout the kernel boots from (x86-64 e820 map, NUMA nodes,
 * memblock reservations, kernelcore=/movablecore=).
 */
import { z } from 'zod';
import { CONTIG_FALLBACKS } from '../contig/contig_dev.ts';
import { MAP_CONTIG_POLICIES } from '../contig/map_contig.ts';
import { parseSize } from '../lib/size.ts';
import type { CmaReservation } from '../mm/cma.ts';
import { type Memblock, memblock_end_of_DRAM } from '../mm/cma_reserve.ts';
import {
  type CmaParams,
  cmdline_parse_hugetlb_cma,
  dma_contiguous_reserve,
  early_cma,
  early_cma_pernuma,
  early_numa_cma,
  hugetlb_cma_reserve,
} from '../mm/contiguous.ts';
import { type CostModel, DEFAULT_COSTS } from '../mm/cost.ts';
import type { EarlyAllocations, PfnRange, PhysLayout } from '../mm/mm_init.ts';
import { MAX_DMA32_PFN, MAX_ORDER_NR_PAGES, PAGE_SHIFT } from '../mm/mmzone.ts';

const size = z.union([z.string(), z.number()]).transform((v, ctx) => {
  try {
    return parseSize(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const range = z.object({ start: size, size, name: z.string().optional() }).strict();

/** File permission bits (0 .. 07777). */
const mode = z.number().int().min(0).max(0o7777);
const id = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 2);

/** One /dev/contig<N> device (src/contig/contig_dev.ts, docs/devices.md). */
const contigDevice = z
  .object({
    /** `contig<N>`: the node is /dev/contig<N>. */
    name: z.string().regex(/^contig\d+$/, 'must be contig<N>'),
    mode: mode.default(0o660),
    uid: id.default(0),
    gid: id.default(0),
    /** Longest single mapping; longer ones fail with EINVAL. */
    max_mapping_bytes: size.default(2 ** 30),
    /** Memory all the device's mappings may hold at once; past it mmap fails with ENOMEM. */
    max_total_bytes: size.default(4 * 2 ** 30),
    /** When no contiguous run can be had: fail (ENOMEM), best-effort blocks, or hugetlb pages. */
    fallback: z.enum(CONTIG_FALLBACKS).default('strict'),
  })
  .strict();

/** A kernel command-line value, kept as written once its parser accepts it. */
const cmdline = (parse: (p: string) => unknown) =>
  z.union([z.string(), z.number()]).transform((v, ctx) => {
    try {
      parse(String(v));
      return String(v);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });

/** Overrides of the cost model (mm/cost.ts), ns per step. */
const cost = z
  .object(
    Object.fromEntries(
      Object.keys(DEFAULT_COSTS).map((k) => [k, z.number().finite().min(0).optional()]),
    ) as Record<keyof CostModel, z.ZodOptional<z.ZodNumber>>,
  )
  .strict()
  .default({});

export const machineConfigSchema = z
  .object({
    /** Installed RAM, e.g. '64G'. */
    memory: size,
    /** NUMA nodes; memory is split evenly in address order. */
    nodes: z.number().int().min(1).max(64).default(1),
    /** CPUs, numbered contiguously per node. */
    cpus: z.number().int().min(1).max(1024).default(2),
    /** kernelcore=: memory kept out of ZONE_MOVABLE (the rest becomes movable). */
    kernelcore: size.optional(),
    /** movablecore=: memory put in ZONE_MOVABLE, spread evenly over the nodes. */
    movablecore: size.optional(),
    /** Extra holes in the physical map (besides the legacy ones below 1 MiB and 3-4 GiB). */
    holes: z.array(range).default([]),
    /** Extra memblock reservations (firmware, crash kernel, …). */
    reserved: z.array(range).default([]),
    /**
     * The physical map as a real machine reports it (the "System RAM" ranges of /proc/iomem),
     * replacing the x86 map that `memory` implies; `memory` must be their total. A snapshot's import
     * sets it.
     */
    ram: z.array(range).optional(),
    /**
     * Exactly these memblock reservations (a snapshot's PG_reserved pages), replacing the x86
     * defaults (the first 1 MiB, the kernel image, firmware tables, the memmap); `reserved` still adds.
     */
    memblock_reserved: z.array(range).optional(),
    /** cma=size[@base[-limit]]: the default CMA area, "reserved" (kernel/dma/contiguous.c). */
    cma: cmdline(early_cma).optional(),
    /** cma_pernuma=size: a "pernuma<nid>" CMA area on every node (CONFIG_DMA_NUMA_CMA). */
    cma_pernuma: cmdline(early_cma_pernuma).optional(),
    /** numa_cma=<node>:size[,<node>:size]: "numa<nid>" CMA areas (CONFIG_DMA_NUMA_CMA). */
    numa_cma: cmdline(early_numa_cma).optional(),
    /** hugetlb_cma=size or <node>:size[,...]: "hugetlb<nid>" CMA areas for 1 GiB pages. */
    hugetlb_cma: cmdline(cmdline_parse_hugetlb_cma).optional(),
    /** Size of the kernel image loaded at 16 MiB. */
    kernel_image: size.default(36 << 20),
    /** Kernel build options. */
    kernel: z
      .object({
        CMA: z.boolean().default(true),
        NUMA: z.boolean().default(true),
        TRANSPARENT_HUGEPAGE: z.boolean().default(true),
      })
      .strict()
      .default({ CMA: true, NUMA: true, TRANSPARENT_HUGEPAGE: true }),
    /** /sys/kernel/mm/transparent_hugepage/enabled at boot. */
    thp: z.enum(['always', 'madvise', 'never']).default('madvise'),
    /** The kernel's own memory after boot (slab, page tables, …); defaults scale with RAM. */
    early: z
      .object({
        unmovable: size.optional(),
        reclaimable: size.optional(),
        transient_fraction: z.number().min(0).max(0.9).default(0.3),
      })
      .strict()
      .default({ transient_fraction: 0.3 }),
    /** The disk behind `/`: its queue settings and write bandwidth (a SATA disk's by default). */
    disk: z
      .object({
        read_ahead_kb: z.number().int().min(0).default(128),
        max_sectors_kb: z.number().int().min(4).default(1280),
        write_mb_s: z.number().positive().default(100),
      })
      .strict()
      .default({ read_ahead_kb: 128, max_sectors_kb: 1280, write_mb_s: 100 }),
    /**
     * `deferred_init=lazy`, as our machines boot: each node's highest zone starts with 128 MiB
     * initialised and grows a section at a time when allocations need it. `off`: upstream, all
     * memory is initialised when boot ends.
     */
    deferred_init: z.enum(['off', 'lazy']).default('off'),
    /**
     * What mmap(MAP_CONTIG) does (src/contig/map_contig.ts): `rfc-poc`, the 2017 proof of concept;
     * `linux`, plain 6.18, which ignores the flag like any unknown one.
     */
    map_contig: z.enum(['linux', ...MAP_CONTIG_POLICIES]).default('rfc-poc'),
    /**
     * The /dev/contig<N> devices (Hocko's per-device mmap): by default one, contig0, root:root
     * 0660, 1 GiB per mapping, 4 GiB in all, strict. `[]` for none.
     */
    contig_devices: z
      .array(contigDevice)
      .default([
        {
          name: 'contig0',
          mode: 0o660,
          uid: 0,
          gid: 0,
          max_mapping_bytes: 2 ** 30,
          max_total_bytes: 4 * 2 ** 30,
          fallback: 'strict',
        },
      ])
      .superRefine((devs, ctx) => {
        const seen = new Set<string>();
        for (const d of devs) {
          if (seen.has(d.name)) ctx.addIssue({ code: 'custom', message: `${d.name} is configured twice` });
          seen.add(d.name);
        }
      }),
    /** Owner and mode of the /dev/dma_heap/* nodes (devtmpfs's default: root:root 0600). */
    dma_heap: z
      .object({ mode: mode.default(0o600), uid: id.default(0), gid: id.default(0) })
      .strict()
      .default({ mode: 0o600, uid: 0, gid: 0 }),
    /** A swap device of this size (swapon at boot); none by default, as on our machines. */
    swap: size.default(0),
    /** What each step of the kernel costs, ns, where it should differ from mm/cost.ts. */
    cost,
    /** Sysctls written right after boot, as `name: value` under /proc/sys/vm. */
    sysctl: z.record(z.string(), z.union([z.string(), z.number()])).default({}),
    /**
     * The hugetlb part of the kernel command line, in order, as on Linux: `hugepagesz=`,
     * `hugepages=` (a count, or per node `0:2,1:2`, for the hugepagesz= before it, else the
     * default size) and `default_hugepagesz=`, e.g. 'hugepagesz=1G hugepages=2 hugepages=512'.
     * Bad values are warned about in the kernel log and ignored, as the kernel does.
     */
    hugetlb: z.string().default(''),
    /** Seed of the machine's PRNG. */
    seed: z.number().int().min(0).default(1),
  })
  .strict();

export type MachineConfigInput = z.input<typeof machineConfigSchema>;
export type MachineConfig = z.output<typeof machineConfigSchema>;

/** Validate a configuration; throws an Error naming every bad field. */
export function parseMachineConfig(input: MachineConfigInput): MachineConfig {
  const result = machineConfigSchema.safeParse(input);
  if (!result.success) {
    const lines = result.error.issues.map((i) => `  ${i.path.join('.') || '(config)'}: ${i.message}`);
    throw new Error(`invalid machine configuration:\n${lines.join('\n')}`);
  }
  const c = result.data;
  if (c.memory < 64 << 20)
    throw new Error('invalid machine configuration:\n  memory: at least 64M is needed');
  if (c.memory % 4096) throw new Error('invalid machine configuration:\n  memory: must be a multiple of 4K');
  if (c.cpus < c.nodes) throw new Error('invalid machine configuration:\n  cpus: at least one CPU per node');
  if (c.kernelcore !== undefined && c.movablecore !== undefined) {
    throw new Error('invalid machine configuration:\n  kernelcore, movablecore: give one or the other');
  }
  if (c.ram) {
    const total = c.ram.reduce((n, r) => n + r.size, 0);
    if (total !== c.memory)
      throw new Error(
        `invalid machine configuration:\n  memory: ${c.memory} is not the ram ranges' total ${total}`,
      );
    const sorted = [...c.ram].sort((a, b) => a.start - b.start);
    for (let i = 0; i < sorted.length; i++) {
      const r = sorted[i];
      if (r.start % 4096 || r.size % 4096 || r.size <= 0)
        throw new Error(`invalid machine configuration:\n  ram[${i}]: not whole, nonempty pages`);
      if (i && sorted[i - 1].start + sorted[i - 1].size > r.start)
        throw new Error(`invalid machine configuration:\n  ram[${i}]: overlaps the range before it`);
    }
  }
  for (const k of ['cma', 'cma_pernuma', 'numa_cma', 'hugetlb_cma'] as const) {
    if (c[k] !== undefined && !c.kernel.CMA)
      throw new Error(`invalid machine configuration:\n  ${k}: needs kernel.CMA`);
  }
  for (const k of ['cma_pernuma', 'numa_cma'] as const) {
    if (c[k] !== undefined && !c.kernel.NUMA)
      throw new Error(`invalid machine configuration:\n  ${k}: needs kernel.NUMA (CONFIG_DMA_NUMA_CMA)`);
  }
  return c;
}

const pages = (bytes: number): number => Math.floor(bytes / 2 ** PAGE_SHIFT);
const LOW_RAM_END = pages(3 * 2 ** 30); // the PCI hole spans 3-4 GiB
const BIOS_HOLE = { start: 159, end: 256 }; // 0x9f000-0xfffff: EBDA, VGA, ROM
const alignUp = (v: number, a: number): number => Math.ceil(v / a) * a;

function subtract(ranges: PfnRange[], hole: PfnRange): PfnRange[] {
  const out: PfnRange[] = [];
  for (const r of ranges) {
    if (hole.end <= r.start || hole.start >= r.end) out.push(r);
    else {
      if (r.start < hole.start) out.push({ start: r.start, end: hole.start });
      if (hole.end < r.end) out.push({ start: hole.end, end: r.end });
    }
  }
  return out;
}

/** The pfn below which `count` RAM pages lie. */
function pfnAfterRamPages(ram: PfnRange[], count: number): number {
  for (const r of ram) {
    const len = r.end - r.start;
    if (count <= len) return r.start + count;
    count -= len;
  }
  return ram[ram.length - 1].end;
}

function ramBetween(ram: PfnRange[], start: number, end: number): number {
  let n = 0;
  for (const r of ram) n += Math.max(0, Math.min(r.end, end) - Math.max(r.start, start));
  return n;
}

/** The x86-64 map of `total` pages of RAM: below 1 MiB, up to 3 GiB, then above 4 GiB. */
function x86Ram(total: number): PfnRange[] {
  const low = Math.min(total, LOW_RAM_END);
  const ram: PfnRange[] = [
    { start: 1, end: BIOS_HOLE.start },
    { start: BIOS_HOLE.end, end: low },
  ];
  if (total > low) ram.push({ start: MAX_DMA32_PFN, end: MAX_DMA32_PFN + (total - low) });
  return ram;
}

/** Configured RAM ranges as pfn ranges, in address order. */
function explicitRam(ranges: { start: number; size: number }[]): PfnRange[] {
  return ranges
    .map((r) => ({ start: pages(r.start), end: pages(r.start + r.size) }))
    .sort((a, b) => a.start - b.start);
}

/**
 * The e820 map of an x86-64 machine (as our Firecracker VMs and most PCs lay it out): pfn 0 and
 * 0x9f000-0xfffff are not RAM, the first 3 GiB are, 3-4 GiB is the PCI hole, the rest sits above
 * 4 GiB. `memory: '24G'` reproduces a real 24 GiB machine's map exactly.
 */
export function buildLayout(c: MachineConfig): PhysLayout {
  let ram = c.ram ? explicitRam(c.ram) : x86Ram(pages(c.memory));
  for (const h of c.holes) ram = subtract(ram, { start: pages(h.start), end: pages(h.start + h.size) });
  ram = ram.filter((r) => r.end > r.start);
  const max_pfn = alignUp(ram[ram.length - 1].end, MAX_ORDER_NR_PAGES);
  const ramPages = ramBetween(ram, 0, max_pfn);

  // Nodes: equal shares of RAM in address order, boundaries on MAX_ORDER_NR_PAGES.
  const nodes: PhysLayout['nodes'] = [];
  const perNodeCpus = Math.floor(c.cpus / c.nodes);
  let cpu = 0;
  let start = 0;
  for (let nid = 0; nid < c.nodes; nid++) {
    const end =
      nid === c.nodes - 1
        ? max_pfn
        : alignUp(pfnAfterRamPages(ram, Math.round((ramPages * (nid + 1)) / c.nodes)), MAX_ORDER_NR_PAGES);
    const cpus: number[] = [];
    const n = nid === c.nodes - 1 ? c.cpus - cpu : perNodeCpus;
    for (let k = 0; k < n; k++) cpus.push(cpu++);
    nodes.push({ start, end, cpus });
    start = end;
  }

  // Memblock reservations: the first 1 MiB (x86 always reserves it), the kernel image at 16 MiB,
  // firmware tables at the top of low RAM, and per node the memmap (64 bytes per page) plus
  // early page tables and per-cpu areas, allocated top-down from the node's last RAM.
  const reserved: PhysLayout['reserved'] = c.memblock_reserved
    ? c.memblock_reserved.map((r) => ({
        start: pages(r.start),
        end: pages(r.start + r.size),
        name: r.name ?? 'reserved',
      }))
    : [
        { start: 0, end: 256, name: 'low 1M' },
        { start: pages(16 << 20), end: pages(16 << 20) + pages(c.kernel_image), name: 'kernel' },
      ];
  const lowTop = ram.filter((r) => r.end <= LOW_RAM_END).at(-1);
  if (lowTop && !c.memblock_reserved)
    reserved.push({ start: lowTop.end - 205, end: lowTop.end, name: 'firmware' });
  const user = c.reserved.map((r) => ({ start: pages(r.start), end: pages(r.start + r.size) }));
  // CMA areas are reserved in setup_arch() before sparse_init() allocates the memmap.
  const cma = reserveCma(c, ram, [...reserved, ...user], nodes);
  const cmaRanges = (cma?.areas ?? []).flatMap((a) => a.ranges).sort((a, b) => b.start - a.start);
  for (const n of c.memblock_reserved ? [] : nodes) {
    const nodeRam = ramBetween(ram, n.start, n.end);
    const top = ram.filter((r) => r.start < n.end && r.end > n.start).at(-1);
    if (!top) continue;
    const memmap = Math.ceil((nodeRam * 64) / 4096) + 512 + 64 * n.cpus.length;
    let topEnd = Math.min(top.end, n.end);
    // Top-down, below any CMA range in the way.
    for (const a of cmaRanges) if (a.start < topEnd && a.end > topEnd - memmap) topEnd = a.start;
    reserved.push({ start: Math.max(top.start, topEnd - memmap), end: topEnd, name: 'memmap' });
  }
  for (const r of c.reserved)
    reserved.push({ start: pages(r.start), end: pages(r.start + r.size), name: r.name ?? 'reserved' });
  for (const a of cmaRanges.reverse()) reserved.push({ ...a, name: 'cma' });

  // kernelcore= / movablecore=: ZONE_MOVABLE takes the top of each node's highest zone.
  const zone_movable_pfn = nodes.map((n) => {
    const nodeRam = ramBetween(ram, n.start, n.end);
    let movable = 0;
    if (c.movablecore !== undefined) movable = Math.ceil(pages(c.movablecore) / c.nodes);
    else if (c.kernelcore !== undefined)
      movable = Math.max(0, nodeRam - Math.ceil(pages(c.kernelcore) / c.nodes));
    if (movable <= 0) return 0;
    const highestStart =
      ramBetween(ram, n.start, MAX_DMA32_PFN) < nodeRam && n.end > MAX_DMA32_PFN
        ? Math.max(MAX_DMA32_PFN, n.start)
        : n.start;
    const below = Math.max(0, nodeRam - movable);
    const pfn = alignUp(pfnAfterRamPages(ram, ramBetween(ram, 0, n.start) + below), MAX_ORDER_NR_PAGES);
    return Math.min(Math.max(pfn, highestStart), n.end);
  });
  const layout: PhysLayout = { ram, reserved, nodes, zone_movable_pfn, nr_cpus: c.cpus };
  if (cma) {
    layout.cma = cma.areas;
    layout.boot_log = cma.log;
  }
  return layout;
}

/**
 * The CMA areas the command line declares, placed as setup_arch() places them: the NUMA and
 * default areas (dma_contiguous_reserve(), limit: all memory is mapped), then the hugetlb ones
 * (x86 has GB pages). Undefined when no CMA parameter is given.
 */
function reserveCma(
  c: MachineConfig,
  ram: PfnRange[],
  reserved: PfnRange[],
  nodes: PfnRange[],
): { areas: CmaReservation[]; log: string[] } | undefined {
  if (
    c.cma === undefined &&
    c.cma_pernuma === undefined &&
    c.numa_cma === undefined &&
    c.hugetlb_cma === undefined
  )
    return undefined;
  const p: CmaParams = {
    cma: c.cma === undefined ? undefined : early_cma(c.cma),
    cma_pernuma: c.cma_pernuma === undefined ? undefined : early_cma_pernuma(c.cma_pernuma),
    numa_cma: c.numa_cma === undefined ? undefined : early_numa_cma(c.numa_cma),
    hugetlb_cma: c.hugetlb_cma === undefined ? undefined : cmdline_parse_hugetlb_cma(c.hugetlb_cma),
  };
  const mb: Memblock = {
    memory: ram,
    reserved: reserved.map((r) => ({ start: r.start, end: r.end })),
    nodes,
    numa: c.kernel.NUMA,
    areas: [],
    log: [],
  };
  dma_contiguous_reserve(mb, p, memblock_end_of_DRAM(mb));
  hugetlb_cma_reserve(mb, p);
  return { areas: mb.areas, log: mb.log };
}

/** The kernel's early allocations, scaled with RAM unless given. */
export function earlyAllocations(c: MachineConfig): EarlyAllocations {
  return {
    unmovable_pages: pages(c.early.unmovable ?? (16 << 20) + c.memory / 1000),
    reclaimable_pages: pages(c.early.reclaimable ?? (8 << 20) + c.memory / 2000),
    transient_fraction: c.early.transient_fraction,
  };
}
