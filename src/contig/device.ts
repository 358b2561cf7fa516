/**
 * The benefit side of contiguity: what a device gains from a buffer's physical layout. For a
 * buffer (its BufferLayout) and a device profile, device_report() answers: can the device use it
 * at all, how many descriptors and translation entries it needs, and what throughput that gives
 * under a documented, deliberately simple model (docs/device-model.md):
 *
 *   random:     time per access = a / link + descriptors × t_desc + misses × t_miss
 *   sequential: time per pass   = S / link + descriptors × t_desc + misses × t_miss
 *   effective bandwidth = bytes / time
 *
 * Misses (MTT cache, IOTLB) come from translation_cache.ts and are serialised with the transfer,
 * so the model bounds the slowdown from above: real devices overlap some misses with data.
 */
import { PAGE_SIZE } from '../mm/mmzone.ts';
import { type BufferLayout, missing_pages } from './buffer_layout.ts';
import { type CpuTlbReport, cpu_tlb_reach, STLB_SKYLAKE_SP, type StlbConfig } from './cpu_tlb.ts';
import type { DeviceProfile, IommuMode, NvmeParams } from './device_profiles.ts';
import { dma_iommu_iova, iommu_map_buffer } from './iommu.ts';
import { sg_nents } from './scatterlist.ts';
import { physical_segments, segment_order_histogram } from './segments.ts';
import { type CacheEstimate, entries_by_shift, estimate_translation_cache } from './translation_cache.ts';
import {
  ib_umem_find_best_pgsz,
  ib_umem_num_dma_blocks_at,
  ib_umem_sg,
  umem_direct,
  umem_via_iommu,
} from './umem.ts';

/** swiotlb_max_mapping_size(): IO_TLB_SIZE (2 KiB) × IO_TLB_SEGSIZE (128). */
export const SWIOTLB_MAX_MAPPING = 2048 * 128;

/** Overrides of a profile's defaults for one report. */
export interface DeviceReportOptions {
  /** IOMMU mode (default: the profile's). */
  iommu?: IommuMode;
  /** Access pattern (default: the profile's). */
  pattern?: 'sequential' | 'random';
  /** Bytes per access, or per I/O for NVMe (default: the profile's). */
  access_bytes?: number;
  /** IOTLB entries (default: the profile's). */
  iotlb_entries?: number;
  /** IOVA the buffer is mapped at when translated (default: dma-iommu's size-aligned IOVA). */
  iova?: number;
  /** RDMA: the MR's IOVA (default: the buffer's virtual address, as ibv_reg_mr() uses). */
  virt?: number;
  /** CPU STLB geometry (default: Skylake-SP). */
  stlb?: StlbConfig;
}

/** Entries of a translation structure by page size. */
export interface EntriesBySize {
  readonly '4K': number;
  readonly '2M': number;
  readonly '1G': number;
  /** Entries of any other size. */
  readonly other: number;
  readonly total: number;
}

/** The throughput model's result. Everything here is an estimate. */
export interface ThroughputEstimate {
  readonly link_bytes_per_s: number;
  readonly effective_bytes_per_s: number;
  /** effective / link. */
  readonly efficiency: number;
  /** Time split of one access (random) or one pass (sequential), in ns. */
  readonly transfer_ns: number;
  readonly descriptor_ns: number;
  readonly translation_ns: number;
  readonly estimated: true;
}

/** What a device makes of a buffer: a plain object (JSON-safe apart from Infinity limits). */
export interface DeviceReport {
  readonly profile: string;
  readonly summary: string;
  readonly iommu: IommuMode;
  readonly pattern: 'sequential' | 'random';
  readonly access_bytes: number;
  readonly buffer: {
    readonly addr: number;
    readonly length: number;
    readonly pages: number;
    readonly missing_pages: number;
  };
  /** Physical segments (runs of contiguous pfns) in virtual order. */
  readonly segments: {
    readonly count: number;
    readonly largest_bytes: number;
    /** Entry k: segments of [2^k, 2^(k+1)) pages. */
    readonly by_order: readonly number[];
  };
  /** Contiguous DMA ranges the device sees (physical segments, or 1 IOVA range when translated). */
  readonly dma_ranges: number;
  /** SG table entries at the profile's max_segment_size (null if the buffer is not resident). */
  readonly sg_entries: number | null;
  readonly usable: boolean;
  /** Why the device cannot use the buffer (empty when usable). */
  readonly problems: readonly string[];
  /** Things worth knowing that do not prevent use. */
  readonly notes: readonly string[];
  /** The descriptors the device needs: what they are, how many per buffer and per access. */
  readonly descriptors: { readonly kind: string; readonly per_buffer: number; readonly per_access: number };
  /** RDMA: the MTT page size and entries (null for other devices or unusable buffers). */
  readonly mtt: null | {
    readonly page_size: number;
    readonly entries: number;
    readonly table_bytes: number;
    readonly cache: CacheEstimate;
  };
  /** Translated IOMMU: the PTEs and the IOTLB estimate (null otherwise). */
  readonly iommu_ptes: null | {
    readonly iova: number;
    readonly ptes: EntriesBySize;
    readonly iotlb: CacheEstimate;
  };
  /** NVMe: descriptors per I/O and how often SGLs are used (null otherwise). */
  readonly nvme: null | {
    readonly io_bytes: number;
    readonly descriptors_per_io: number;
    readonly sgl_fraction: number;
  };
  readonly throughput: ThroughputEstimate;
  readonly cpu_tlb: CpuTlbReport;
}

const DESCRIPTOR_KIND: Record<DeviceProfile['kind'], string> = {
  'rdma-mr': 'MTT entries',
  'flat-buffer': 'flat buffer',
  nvme: 'PRP entries / SGL descriptors',
};

function by_size(ptes: Float64Array): EntriesBySize {
  let total = 0;
  for (let k = 0; k < 64; k++) total += ptes[k];
  const other = total - ptes[12] - ptes[21] - ptes[30];
  return { '4K': ptes[12], '2M': ptes[21], '1G': ptes[30], other, total };
}

/**
 * NVMe descriptors per I/O over the buffer: I/Os of `io_pages` pages at every page (random) or
 * back to back (sequential). An I/O of nseg contiguous segments uses an SGL of nseg descriptors
 * when the average segment reaches sgl_threshold, else one PRP entry per page.
 */
function nvme_descriptors(
  pfns: Int32Array,
  io_pages: number,
  sequential: boolean,
  translated: boolean,
  nv: NvmeParams,
): { ios: number; descriptors: number; desc_ns: number; sgl: number } {
  const n = pfns.length;
  // breaks[k] = discontinuities among pages [0, k): a prefix sum, so a window costs O(1).
  const breaks = new Int32Array(n + 1);
  for (let i = 1; i < n; i++) breaks[i + 1] = breaks[i] + (pfns[i] === pfns[i - 1] + 1 ? 0 : 1);
  let ios = 0;
  let descs = 0;
  let ns = 0;
  let sgl = 0;
  const step = sequential ? io_pages : 1;
  const last = sequential ? n - 1 : n - io_pages;
  for (let p = 0; p <= last; p += step) {
    const w = Math.min(io_pages, n - p);
    const nseg = translated ? 1 : 1 + breaks[p + w] - breaks[p + 1];
    const use_sgl = nv.sgl_supported && nv.sgl_threshold > 0 && (w * PAGE_SIZE) / nseg >= nv.sgl_threshold;
    ios++;
    if (use_sgl) {
      sgl++;
      descs += nseg;
      ns += nseg * nv.sgl_desc_ns;
    } else {
      descs += w;
      ns += w * nv.prp_entry_ns;
    }
  }
  return { ios, descriptors: descs, desc_ns: ns, sgl };
}

function check_options(profile: DeviceProfile, layout: BufferLayout, o: DeviceReportOptions): void {
  if (o.access_bytes !== undefined && (!Number.isInteger(o.access_bytes) || o.access_bytes < 1))
    throw new RangeError(`device_report: access_bytes ${o.access_bytes} is not a positive whole number`);
  if (o.iotlb_entries !== undefined && (!Number.isInteger(o.iotlb_entries) || o.iotlb_entries < 0))
    throw new RangeError(`device_report: iotlb_entries ${o.iotlb_entries} is not a whole number >= 0`);
  if (o.pattern !== undefined && o.pattern !== 'sequential' && o.pattern !== 'random')
    throw new RangeError(`device_report: pattern '${o.pattern}' is not 'sequential' or 'random'`);
  if (o.iommu !== undefined && o.iommu !== 'off' && o.iommu !== 'passthrough' && o.iommu !== 'translated')
    throw new RangeError(`device_report: iommu '${o.iommu}' is not 'off', 'passthrough' or 'translated'`);
  if (layout.pfns.length !== layout.map_shift.length)
    throw new RangeError('device_report: layout has different numbers of pfns and mapping sizes');
  if (profile.kind === 'nvme' && profile.nvme) {
    const a = o.access_bytes ?? profile.default_access_bytes;
    if (a > profile.nvme.max_io_bytes)
      throw new RangeError(
        `device_report: ${profile.name} I/O of ${a} bytes exceeds its ${profile.nvme.max_io_bytes}-byte maximum`,
      );
  }
}

/**
 * What `profile` makes of the buffer `layout`: usability, descriptors and translation entries,
 * IOMMU and CPU TLB behaviour, and the estimated throughput. Pure: same inputs, same report.
 */
export function device_report(
  layout: BufferLayout,
  profile: DeviceProfile,
  opts: DeviceReportOptions = {},
): DeviceReport {
  check_options(profile, layout, opts);
  const iommu = opts.iommu ?? profile.iommu;
  const translated = iommu === 'translated';
  const pattern = opts.pattern ?? profile.default_pattern;
  const length = layout.length;
  const a = Math.min(opts.access_bytes ?? profile.default_access_bytes, length);
  const pfns = layout.pfns;
  const pages = pfns.length;
  const missing = missing_pages(layout);
  const segs = physical_segments(pfns);
  const problems: string[] = [];
  const notes: string[] = [];

  if (missing)
    problems.push(
      `${missing} of ${pages} pages are not resident: the driver's pin would fault them in, so the layout is not known yet (touch the buffer first)`,
    );
  if (length > profile.max_buffer_bytes)
    problems.push(
      `${fmt_bytes(length)} exceeds the device's ${fmt_bytes(profile.max_buffer_bytes)} buffer limit`,
    );
  if (profile.dma_alignment > 1 && (layout.addr % profile.dma_alignment || length % profile.dma_alignment))
    problems.push(`address and length must be multiples of ${profile.dma_alignment} bytes`);
  const dma_ranges = translated ? 1 : segs.count;
  if (profile.requires_contiguous && !translated && !missing && segs.count > 1)
    problems.push(
      `needs one contiguous DMA range: the buffer is ${segs.count} physical segments, the largest ${fmt_bytes(segs.largest_pages * PAGE_SIZE)}`,
    );
  if (!translated && !missing) dma_mask_check(profile, pfns, segs.largest_pages, problems, notes);
  if (translated && profile.requires_contiguous)
    notes.push('the IOMMU gives the device one contiguous IOVA range whatever the physical layout');

  const sg_entries = missing ? null : sg_nents(pfns, profile.max_segment_size);
  let mtt: DeviceReport['mtt'] = null;
  let iommu_ptes: DeviceReport['iommu_ptes'] = null;
  let nvme: DeviceReport['nvme'] = null;
  let descriptors = { kind: DESCRIPTOR_KIND[profile.kind], per_buffer: 0, per_access: 0 };
  let translation_ns = 0;
  let descriptor_ns = 0;
  const sequential = pattern === 'sequential';
  let iova = 0;

  if (!missing && translated) {
    iova = opts.iova ?? dma_iommu_iova(pages);
    const m = iommu_map_buffer(pfns, profile.iommu_pgsize_bitmap, iova);
    const iotlb = estimate_translation_cache(m.ptes, opts.iotlb_entries ?? profile.iotlb_entries, a);
    iommu_ptes = { iova, ptes: by_size(m.ptes), iotlb };
    translation_ns +=
      (sequential ? iotlb.sequential_misses_per_pass : iotlb.misses_per_access) * profile.iotlb_miss_ns;
  }

  if (profile.kind === 'rdma-mr' && profile.mtt && !missing) {
    const mp = profile.mtt;
    const virt = opts.virt ?? layout.addr;
    const umem = translated
      ? umem_via_iommu(layout.addr, length, iova)
      : umem_direct(layout.addr, length, ib_umem_sg(pfns, layout.addr, length, profile.max_segment_size));
    const pgsz = ib_umem_find_best_pgsz(umem, mp.pgsz_bitmap, virt);
    if (!pgsz)
      problems.push('no supported MTT page size fits the buffer (ib_umem_find_best_pgsz returned 0)');
    else {
      const entries = ib_umem_num_dma_blocks_at(virt, length, pgsz);
      const classes = entries_by_shift();
      classes[Math.round(Math.log2(pgsz))] = entries;
      const cache = estimate_translation_cache(classes, mp.cache_entries, a);
      mtt = { page_size: pgsz, entries, table_bytes: entries * mp.entry_bytes, cache };
      descriptors = { kind: DESCRIPTOR_KIND[profile.kind], per_buffer: entries, per_access: 0 };
      translation_ns +=
        (sequential ? cache.sequential_misses_per_pass : cache.misses_per_access) * mp.miss_ns;
    }
  } else if (profile.kind === 'nvme' && profile.nvme && !missing) {
    const io_pages = Math.ceil(a / PAGE_SIZE);
    const r = nvme_descriptors(pfns, io_pages, sequential, translated, profile.nvme);
    const per_io = r.descriptors / r.ios;
    nvme = { io_bytes: a, descriptors_per_io: per_io, sgl_fraction: r.sgl / r.ios };
    descriptors = {
      kind: DESCRIPTOR_KIND[profile.kind],
      per_buffer: sequential ? r.descriptors : per_io * Math.ceil(length / a),
      per_access: per_io,
    };
    descriptor_ns = sequential ? r.desc_ns : r.desc_ns / r.ios;
  } else if (profile.kind === 'flat-buffer') {
    descriptors = { kind: DESCRIPTOR_KIND[profile.kind], per_buffer: 1, per_access: a / length };
    descriptor_ns = (sequential ? 1 : a / length) * profile.per_descriptor_ns;
  }
  if (profile.kind !== 'nvme' && profile.kind !== 'flat-buffer' && profile.per_descriptor_ns)
    descriptor_ns +=
      (sequential ? descriptors.per_buffer : descriptors.per_access) * profile.per_descriptor_ns;

  const usable = problems.length === 0;
  const bytes = sequential ? length : a;
  const transfer_ns = (bytes / profile.link_bytes_per_s) * 1e9;
  const total_ns = transfer_ns + descriptor_ns + translation_ns;
  const effective = usable ? (bytes / total_ns) * 1e9 : 0;
  return {
    profile: profile.name,
    summary: profile.summary,
    iommu,
    pattern,
    access_bytes: a,
    buffer: { addr: layout.addr, length, pages, missing_pages: missing },
    segments: {
      count: segs.count,
      largest_bytes: segs.largest_pages * PAGE_SIZE,
      by_order: segment_order_histogram(segs),
    },
    dma_ranges,
    sg_entries,
    usable,
    problems,
    notes,
    descriptors,
    mtt,
    iommu_ptes,
    nvme,
    throughput: {
      link_bytes_per_s: profile.link_bytes_per_s,
      effective_bytes_per_s: effective,
      efficiency: effective / profile.link_bytes_per_s,
      transfer_ns,
      descriptor_ns,
      translation_ns,
      estimated: true,
    },
    cpu_tlb: cpu_tlb_reach(layout, opts.stlb ?? STLB_SKYLAKE_SP, 64),
  };
}

/**
 * Without a translating IOMMU, pages at or above the DMA mask are bounced by swiotlb, which maps
 * at most SWIOTLB_MAX_MAPPING bytes at a time: a larger contiguous DMA range cannot be bounced.
 */
function dma_mask_check(
  profile: DeviceProfile,
  pfns: Int32Array,
  largest_pages: number,
  problems: string[],
  notes: string[],
): void {
  if (profile.dma_mask_bits >= 64) return;
  const limit = 2 ** (profile.dma_mask_bits - 12); // first pfn the mask cannot reach
  let above = 0;
  for (let i = 0; i < pfns.length; i++) if (pfns[i] + 1 > limit) above++;
  if (!above) return;
  const range = profile.requires_contiguous ? pfns.length * PAGE_SIZE : largest_pages * PAGE_SIZE;
  const msg = `${above} pages lie above the ${profile.dma_mask_bits}-bit DMA mask`;
  if (range > SWIOTLB_MAX_MAPPING)
    problems.push(`${msg}; swiotlb bounces at most ${fmt_bytes(SWIOTLB_MAX_MAPPING)} per mapping`);
  else notes.push(`${msg}: every transfer is bounced (copied) through swiotlb`);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** Bytes for people: 4194304 → '4 MiB', 1572864 → '1.5 MiB'. */
export function fmt_bytes(n: number): string {
  if (!Number.isFinite(n)) return 'unlimited';
  let u = 0;
  while (n >= 1024 && u < UNITS.length - 1) {
    n /= 1024;
    u++;
  }
  return `${Number.isInteger(n) ? n : n.toFixed(n < 10 ? 2 : 1)} ${UNITS[u]}`;
}

function fmt_rate(bps: number): string {
  return `${(bps / 1e9).toFixed(2)} GB/s`;
}

/** A short human-readable summary of a report (a few lines, no trailing newline). */
export function format_device_report(r: DeviceReport): string {
  const lines: string[] = [];
  lines.push(
    `${r.profile} (IOMMU ${r.iommu}): ${r.usable ? 'usable' : 'NOT usable'} — ${r.buffer.pages} pages, ${r.segments.count} physical segments (largest ${fmt_bytes(r.segments.largest_bytes)})${r.sg_entries === null ? '' : `, ${r.sg_entries} SG entries`}`,
  );
  for (const p of r.problems) lines.push(`  problem: ${p}`);
  for (const n of r.notes) lines.push(`  note: ${n}`);
  if (r.mtt)
    lines.push(
      `  MTT: ${r.mtt.entries} entries of ${fmt_bytes(r.mtt.page_size)} (${fmt_bytes(r.mtt.table_bytes)}); cache misses ${r.pattern === 'random' ? `${r.mtt.cache.misses_per_access.toFixed(3)} per access` : `${r.mtt.cache.sequential_misses_per_pass} per pass`}`,
    );
  if (r.iommu_ptes) {
    const p = r.iommu_ptes.ptes;
    lines.push(
      `  IOMMU: ${p.total} PTEs (${p['4K']} x 4K, ${p['2M']} x 2M, ${p['1G']} x 1G); IOTLB misses ${r.pattern === 'random' ? `${r.iommu_ptes.iotlb.misses_per_access.toFixed(3)} per access` : `${r.iommu_ptes.iotlb.sequential_misses_per_pass} per pass`}`,
    );
  }
  if (r.nvme)
    lines.push(
      `  NVMe: ${r.nvme.descriptors_per_io.toFixed(1)} descriptors per ${fmt_bytes(r.nvme.io_bytes)} I/O, SGL for ${(r.nvme.sgl_fraction * 100).toFixed(0)}%`,
    );
  const t = r.throughput;
  lines.push(
    `  throughput (estimate, ${r.pattern} ${fmt_bytes(r.access_bytes)}): ${fmt_rate(t.effective_bytes_per_s)} of ${fmt_rate(t.link_bytes_per_s)} (${(t.efficiency * 100).toFixed(1)}%)`,
  );
  const c = r.cpu_tlb;
  lines.push(
    `  CPU: ${c.translations_4k} x 4K + ${c.translations_2m} x 2M + ${c.translations_1g} x 1G translations; ${c.stlb.name} STLB covers ${(c.coverage * 100).toFixed(1)}%`,
  );
  return lines.join('\n');
}
