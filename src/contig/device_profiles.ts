/**
 * Named device profiles for the device model: the devices of the 2017 MAP_CONTIG thread (an RDMA
 * NIC, a QuickAssist-like accelerator, an embedded camera DMA engine) and an NVMe SSD for
 * comparison. Every limit says where it comes from; numbers marked "estimate" are not from a
 * datasheet or the kernel and are there to be overridden (see docs/device-model.md).
 */
import { INTEL_IOMMU_PGSIZES } from './iommu.ts';
import { UINT_MAX } from './scatterlist.ts';
import { mlx5_mtt_pgsz_bitmap } from './umem.ts';

/**
 * How DMA addresses relate to physical ones: no IOMMU at all; an IOMMU in passthrough (identity,
 * iommu=pt) — both are dma-direct, bus address = physical; or a translating IOMMU (dma-iommu),
 * where the device sees one contiguous IOVA range and the IOMMU's page tables do the scatter.
 */
export type IommuMode = 'off' | 'passthrough' | 'translated';

/** How a device consumes a buffer. */
export type DeviceKind = 'rdma-mr' | 'flat-buffer' | 'nvme';

/** A NIC's memory translation table (mlx5 MTT): page sizes, entry size, on-NIC cache. */
export interface MttParams {
  /** HW page sizes for ib_umem_find_best_pgsz(). */
  readonly pgsz_bitmap: bigint;
  /** Bytes per translation entry (struct mlx5_mtt: one __be64). */
  readonly entry_bytes: number;
  /** Entries the NIC's translation cache holds (estimate). */
  readonly cache_entries: number;
  /** Cost of a translation-cache miss: a PCIe read of the entry from host memory (estimate). */
  readonly miss_ns: number;
}

/** NVMe data-pointer rules (drivers/nvme/host/pci.c). */
export interface NvmeParams {
  /** The controller supports SGLs for I/O commands. */
  readonly sgl_supported: boolean;
  /** Module parameter sgl_threshold: use SGLs when the average segment is at least this (32 KiB). */
  readonly sgl_threshold: number;
  /** NVME_MAX_BYTES: the largest I/O the driver builds (8 MiB). */
  readonly max_io_bytes: number;
  /** Cost per PRP entry (8 bytes) the controller fetches (estimate). */
  readonly prp_entry_ns: number;
  /** Cost per SGL data descriptor (16 bytes) the controller fetches (estimate). */
  readonly sgl_desc_ns: number;
}

/** A device as the model sees it. */
export interface DeviceProfile {
  readonly name: string;
  readonly summary: string;
  readonly kind: DeviceKind;
  /** The device needs the whole buffer as one range of DMA addresses (no scatter-gather). */
  readonly requires_contiguous: boolean;
  /** Largest buffer the device takes, in bytes (Infinity: no limit modelled). */
  readonly max_buffer_bytes: number;
  /** DMA mask width: pages at or above 2^bits cannot be reached without bouncing. */
  readonly dma_mask_bits: number;
  /** Buffer address and length must be multiples of this (1: any). */
  readonly dma_alignment: number;
  /** dma_get_max_seg_size(): the SG table's max_segment. */
  readonly max_segment_size: number;
  /** IOMMU mode the profile assumes by default. */
  readonly iommu: IommuMode;
  /** The IOMMU domain's page sizes (used when translated). */
  readonly iommu_pgsize_bitmap: number;
  /** IOTLB entries available to this device (estimate). */
  readonly iotlb_entries: number;
  /** Cost of an IOTLB miss (page walk in host memory) in ns (estimate). */
  readonly iotlb_miss_ns: number;
  readonly mtt?: MttParams;
  readonly nvme?: NvmeParams;
  /** Link/engine bandwidth in bytes per second. */
  readonly link_bytes_per_s: number;
  /** Cost of each descriptor the device fetches or is given, in ns (estimate). */
  readonly per_descriptor_ns: number;
  /** Default access pattern and size. */
  readonly default_pattern: 'sequential' | 'random';
  readonly default_access_bytes: number;
  /** Where the limits come from. */
  readonly sources: readonly string[];
  /** Which numbers are estimates. */
  readonly estimates: readonly string[];
}

const GiB = 2 ** 30;
const MiB = 2 ** 20;
const KiB = 1024;

/** Estimates shared by the IOMMU side of every profile. */
const IOTLB_ENTRIES = 64;
const IOTLB_MISS_NS = 330;
const IOTLB_SOURCES = [
  'IOMMU page sizes: drivers/iommu/intel/iommu.c domain_super_pgsize_bitmap() (4K | 2M | 1G with 2-level super pages)',
  'IOVA alignment: drivers/iommu/iova.c alloc_iova(size_aligned) via dma-iommu iommu_dma_alloc_iova()',
];
const IOTLB_ESTIMATES = [
  `IOTLB entries per device = ${IOTLB_ENTRIES} (estimate: pcie-bench, Neugebauer et al., SIGCOMM 2018, saw DMA latency rise past a 256 KiB window of 4 KiB pages on Intel Xeon E5; unverified figure)`,
  `IOTLB miss = ${IOTLB_MISS_NS} ns (estimate, same source; unverified figure)`,
];

/**
 * An mlx5-class RDMA NIC (ConnectX-6 class) registering user memory: ib_umem_get() builds the SG
 * table, mlx5_umem_mkc_find_best_pgsz() picks the MTT page size, one MTT entry per HW page.
 */
export const RDMA_NIC: DeviceProfile = {
  name: 'rdma-nic',
  summary: 'mlx5-like RDMA NIC: memory registration with an MTT of 4K..2G pages',
  kind: 'rdma-mr',
  requires_contiguous: false,
  max_buffer_bytes: Number.POSITIVE_INFINITY,
  dma_mask_bits: 64,
  dma_alignment: 1,
  max_segment_size: 2 * GiB,
  iommu: 'passthrough',
  iommu_pgsize_bitmap: INTEL_IOMMU_PGSIZES,
  iotlb_entries: IOTLB_ENTRIES,
  iotlb_miss_ns: IOTLB_MISS_NS,
  mtt: { pgsz_bitmap: mlx5_mtt_pgsz_bitmap(), entry_bytes: 8, cache_entries: 4096, miss_ns: 500 },
  link_bytes_per_s: 200e9 / 8,
  per_descriptor_ns: 0,
  default_pattern: 'random',
  default_access_bytes: 4 * KiB,
  sources: [
    'SG table: drivers/infiniband/core/umem.c ib_umem_get() + lib/scatterlist.c sg_alloc_append_table_from_pages()',
    'max_segment 2 GiB: drivers/net/ethernet/mellanox/mlx5/core/main.c dma_set_max_seg_size(2 GiB)',
    'page sizes 4K..2G: drivers/infiniband/hw/mlx5/mlx5_ib.h mlx5_umem_mkc_find_best_pgsz() (max_log_entity_size 31 by default)',
    'MTT entries: include/rdma/ib_umem.h ib_umem_num_dma_blocks(); 8 bytes each (include/linux/mlx5/qp.h struct mlx5_mtt)',
    'link 200 Gb/s: ConnectX-6 HDR/200GbE nominal line rate',
    ...IOTLB_SOURCES,
  ],
  estimates: [
    'MTT cache = 4096 entries (estimate: the on-NIC translation cache size is not published)',
    'MTT miss = 500 ns (estimate: one PCIe read round trip to host memory)',
    'IOMMU passthrough by default (iommu=pt, the usual RDMA deployment); pass iommu: translated to see IOTLB costs',
    ...IOTLB_ESTIMATES,
  ],
};

/**
 * A QuickAssist-like accelerator taking one flat buffer (the QAT API's CpaFlatBuffer: a pointer
 * and a 32-bit length) that must be physically contiguous: the case Kravetz cited in the thread.
 */
export const QAT_LIKE_ACCELERATOR: DeviceProfile = {
  name: 'qat-like-accelerator',
  summary: 'QuickAssist-like accelerator: one physically contiguous flat buffer per job',
  kind: 'flat-buffer',
  requires_contiguous: true,
  max_buffer_bytes: UINT_MAX - (UINT_MAX % 4096),
  dma_mask_bits: 64,
  dma_alignment: 1,
  max_segment_size: UINT_MAX,
  iommu: 'passthrough',
  iommu_pgsize_bitmap: INTEL_IOMMU_PGSIZES,
  iotlb_entries: IOTLB_ENTRIES,
  iotlb_miss_ns: IOTLB_MISS_NS,
  link_bytes_per_s: 100e9 / 8,
  per_descriptor_ns: 1000,
  default_pattern: 'sequential',
  default_access_bytes: 64 * KiB,
  sources: [
    'needs contiguity: Kravetz in the MAP_CONTIG thread (QuickAssist compression needs a contiguous buffer from a special driver)',
    'max buffer < 4 GiB: the QAT API flat buffer length is a Cpa32U (dataLenInBytes)',
    ...IOTLB_SOURCES,
  ],
  estimates: [
    'engine throughput = 100 Gb/s (estimate, order of a current QAT device)',
    'per job = 1000 ns (estimate: request ring write + response ring poll)',
    'IOMMU passthrough (no IOMMU translation) by default',
    ...IOTLB_ESTIMATES,
  ],
};

/**
 * An embedded camera DMA engine without IOMMU behind a V4L2 driver using videobuf2-dma-contig:
 * USERPTR buffers must be one contiguous DMA range (vb2_dc_get_userptr(): "contiguous mapping is
 * too small" → -EFAULT), cache-line aligned, and below a 32-bit DMA mask.
 */
export const CAMERA_DMA_NO_IOMMU: DeviceProfile = {
  name: 'camera-dma-no-iommu',
  summary: 'embedded camera DMA engine, no IOMMU, no scatter-gather (videobuf2-dma-contig)',
  kind: 'flat-buffer',
  requires_contiguous: true,
  max_buffer_bytes: 64 * MiB,
  dma_mask_bits: 32,
  dma_alignment: 64,
  max_segment_size: UINT_MAX,
  iommu: 'off',
  iommu_pgsize_bitmap: INTEL_IOMMU_PGSIZES,
  iotlb_entries: IOTLB_ENTRIES,
  iotlb_miss_ns: IOTLB_MISS_NS,
  link_bytes_per_s: (4 * 2.5e9) / 8,
  per_descriptor_ns: 1000,
  default_pattern: 'sequential',
  default_access_bytes: 64 * KiB,
  sources: [
    'contiguity: drivers/media/common/videobuf2/videobuf2-dma-contig.c vb2_dc_get_userptr() + vb2_dc_get_contiguous_size()',
    'alignment: vb2_dc_get_userptr() requires vaddr and size aligned to dma_get_cache_alignment() (64 bytes assumed)',
    'DMA mask 32 bits: common for embedded DMA engines; above it dma-direct bounces through swiotlb, at most 256 KiB per mapping (IO_TLB_SIZE 2 KiB x IO_TLB_SEGSIZE 128)',
  ],
  estimates: [
    'max buffer = 64 MiB (estimate: a few raw frames)',
    'bandwidth = 4-lane MIPI CSI-2 at 2.5 Gb/s per lane (estimate)',
    'per frame setup = 1000 ns (estimate)',
  ],
};

/**
 * An NVMe SSD (drivers/nvme/host/pci.c): PRPs name every 4 KiB page of an I/O; SGLs, when the
 * controller supports them and the average segment is at least sgl_threshold, name each
 * contiguous segment. With a translating IOMMU the request is coalesced into one IOVA range.
 */
export const NVME_LIKE: DeviceProfile = {
  name: 'nvme-like',
  summary: 'NVMe SSD: PRP per 4K page, or SGL per contiguous segment',
  kind: 'nvme',
  requires_contiguous: false,
  max_buffer_bytes: Number.POSITIVE_INFINITY,
  dma_mask_bits: 64,
  dma_alignment: 4,
  max_segment_size: UINT_MAX,
  iommu: 'off',
  iommu_pgsize_bitmap: INTEL_IOMMU_PGSIZES,
  iotlb_entries: IOTLB_ENTRIES,
  iotlb_miss_ns: IOTLB_MISS_NS,
  nvme: {
    sgl_supported: true,
    sgl_threshold: 32 * KiB,
    max_io_bytes: 8 * MiB,
    prp_entry_ns: 2,
    sgl_desc_ns: 4,
  },
  link_bytes_per_s: 7e9,
  per_descriptor_ns: 0,
  default_pattern: 'random',
  default_access_bytes: 128 * KiB,
  sources: [
    'PRP/SGL choice: drivers/nvme/host/pci.c nvme_map_data() with sgl_threshold = 32 KiB; NVME_MAX_BYTES = 8 MiB',
    'IOVA coalescing: blk_rq_dma_map_coalesce() (one segment through a translating IOMMU)',
    ...IOTLB_SOURCES,
  ],
  estimates: [
    'bandwidth = 7 GB/s (estimate: a PCIe Gen4 x4 SSD)',
    'PRP entry = 2 ns, SGL descriptor = 4 ns (estimates: amortised descriptor fetch)',
    'dword (4-byte) buffer alignment',
    ...IOTLB_ESTIMATES,
  ],
};

/** All profiles by name. */
export const DEVICE_PROFILES: Readonly<Record<string, DeviceProfile>> = {
  [RDMA_NIC.name]: RDMA_NIC,
  [QAT_LIKE_ACCELERATOR.name]: QAT_LIKE_ACCELERATOR,
  [CAMERA_DMA_NO_IOMMU.name]: CAMERA_DMA_NO_IOMMU,
  [NVME_LIKE.name]: NVME_LIKE,
};

/** A profile by name; RangeError naming the known ones. */
export function device_profile(name: string): DeviceProfile {
  const p = Object.hasOwn(DEVICE_PROFILES, name) ? DEVICE_PROFILES[name] : undefined;
  if (!p)
    throw new RangeError(
      `unknown device profile '${name}' (known: ${Object.keys(DEVICE_PROFILES).join(', ')})`,
    );
  return p;
}
