/**
 * RDMA memory registration (drivers/infiniband/core/umem.c, include/rdma/ib_umem.h): the SG
 * table ib_umem_get() builds for a user buffer, the page size a NIC's translation table (the
 * mlx5 MTT) uses for it (ib_umem_find_best_pgsz()), and the number of translation entries
 * (ib_umem_num_dma_blocks()).
 *
 * Without an IOMMU (or in passthrough) the DMA addresses of the SG entries are physical, so the
 * page size the NIC can use grows with physical contiguity: a buffer of 4 KiB pieces needs one
 * MTT entry per 4 KiB, a 2 MiB-aligned contiguous one a single entry per 2 MiB or more.
 */
import { PAGE_SIZE } from '../mm/mmzone.ts';
import {
  type Bitmap64,
  bitmap64,
  bits_per,
  ffs64,
  fls64,
  genmask_hi,
  genmask_lo,
  hi32,
  is_u53,
  LIMIT53,
  lo32,
} from './bits64.ts';
import { SgTable, sg_alloc_append_table_from_pages } from './scatterlist.ts';

/** struct ib_umem as the page-size choice sees it: the user range and its DMA-mapped SG list. */
export interface IbUmem {
  /** umem->address: the user virtual address registered. */
  readonly address: number;
  /** umem->length in bytes. */
  readonly length: number;
  /** Number of DMA segments (sgt.nents after dma mapping). */
  readonly nents: number;
  /** Per DMA segment: sg_dma_address(). */
  readonly dma_address: Float64Array;
  /** Per DMA segment: sg_dma_len(). */
  readonly dma_length: Float64Array;
}

/** PAGE_SIZE / sizeof(struct page *): pages ib_umem_get() pins and appends per round. */
const UMEM_PAGES_PER_ROUND = PAGE_SIZE / 8;

/**
 * kernel: drivers/infiniband/core/umem.c ib_umem_get() (its SG table) + dma-direct mapping
 * The SG table of registering [addr, addr + length) backed by `pfns` (one per page touched):
 * whole pages from addr & PAGE_MASK, appended 512 pages at a time with max_segment =
 * ib_dma_max_seg_size(). RangeError if a page is not resident or the sizes do not match.
 */
export function ib_umem_sg(
  pfns: ArrayLike<number>,
  addr: number,
  length: number,
  max_segment: number,
): SgTable {
  if (!is_u53(addr) || !is_u53(length) || length === 0 || addr + length > LIMIT53)
    throw new RangeError(`ib_umem_get: bad range addr ${addr}, length ${length}`);
  const npages = ib_umem_num_dma_blocks_at(addr, length, PAGE_SIZE);
  if (pfns.length !== npages)
    throw new RangeError(`ib_umem_get: ${pfns.length} pfns for a registration of ${npages} pages`);
  if (!Number.isInteger(max_segment) || max_segment < PAGE_SIZE || max_segment > 0xffffffff)
    throw new RangeError(`ib_umem_get: max_segment ${max_segment} is not an unsigned int of at least a page`);
  for (let i = 0; i < npages; i++)
    if (!(pfns[i] >= 0))
      throw new RangeError(`ib_umem_get: page ${i} is not resident (pin_user_pages would fault it in first)`);
  const t = new SgTable(npages);
  let left = npages;
  let cur = 0;
  while (left) {
    const pinned = Math.min(left, UMEM_PAGES_PER_ROUND);
    left -= pinned;
    sg_alloc_append_table_from_pages(t, pfns, cur, pinned, 0, pinned * PAGE_SIZE, max_segment, left);
    cur += pinned;
  }
  return t;
}

/** The umem of a registration whose SG table was mapped by dma-direct (bus address = physical). */
export function umem_direct(addr: number, length: number, sg: SgTable): IbUmem {
  const dma_address = new Float64Array(sg.nents);
  const dma_length = new Float64Array(sg.nents);
  for (let i = 0; i < sg.nents; i++) {
    dma_address[i] = sg.dma_address(i);
    dma_length[i] = sg.length[i];
  }
  return { address: addr, length, nents: sg.nents, dma_address, dma_length };
}

/**
 * The umem of a registration mapped through a translating IOMMU (dma-iommu): the whole SG list
 * gets one IOVA range starting at `iova` (page aligned), so the DMA list is contiguous whatever
 * the physical layout; the NIC's page size is then bounded by VA/IOVA alignment only.
 */
export function umem_via_iommu(addr: number, length: number, iova: number): IbUmem {
  if (!is_u53(iova) || iova % PAGE_SIZE)
    throw new RangeError(`umem_via_iommu: iova ${iova} is not page aligned`);
  const pages = ib_umem_num_dma_blocks_at(addr, length, PAGE_SIZE);
  return {
    address: addr,
    length,
    nents: 1,
    dma_address: Float64Array.of(iova),
    dma_length: Float64Array.of(pages * PAGE_SIZE),
  };
}

/**
 * kernel: drivers/infiniband/core/umem.c ib_umem_find_best_pgsz()
 * The largest page size in `pgsz_bitmap` the HW can use for the whole MR with IOVA `virt`:
 * every VA that falls on a discontinuity of the DMA list must start a HW page, and each run
 * must have VA and DMA address equal modulo the page size. 0 if none fits (a driver that
 * supports PAGE_SIZE never sees 0).
 *
 * The mask accumulates the bits where VA and DMA address differ (and the VA bits at every
 * discontinuity); its trailing zeros bound the page size. Worked example: 4 MiB at VA
 * 0x7f0000200000, one physical run at 0x40200000, bitmap 4K..2G (bits 12..31). The VA bits that
 * change over the range are (va + 4M - 1) ^ va = 0x7fffff, bits_per = 23, so the mask starts as
 * the bitmap's bits 23..31; the run adds 0x40200000 ^ va = 0x7f0040000000 (lowest bit 30). The
 * mask's lowest bit is 23, so the answer is 8 MiB: VA and PA agree modulo 8 MiB, and one 8 MiB HW
 * page covers the whole range (ib_umem_num_dma_blocks = 1).
 *
 * All addresses and lengths are integers below 2^53; `pgsz_bitmap` may be a bigint with any of
 * the 64 bits. The result is a power of two (exact as a number) or 0.
 */
export function ib_umem_find_best_pgsz(
  umem: IbUmem,
  pgsz_bitmap: bigint | number | Bitmap64,
  virt: number,
): number {
  const bm = typeof pgsz_bitmap === 'object' ? pgsz_bitmap : bitmap64(pgsz_bitmap, 'ib_umem_find_best_pgsz');
  if (!is_u53(virt) || virt + umem.length > LIMIT53)
    throw new RangeError(`ib_umem_find_best_pgsz: virt ${virt} (+ length ${umem.length}) is not below 2^53`);
  if (!(umem.length > 0)) throw new RangeError('ib_umem_find_best_pgsz: empty umem');
  let bh = bm.hi;
  let bl = bm.lo;
  // The largest page size that could work from the VA bits that do not change over the range.
  const last = umem.length - 1 + virt;
  const b = bits_per((hi32(last) ^ hi32(virt)) * 4294967296 + ((lo32(last) ^ lo32(virt)) >>> 0));
  let mh = (bh & genmask_hi(63, b)) >>> 0;
  let ml = (bl & genmask_lo(63, b)) >>> 0;
  // Offset into the first SGL.
  let pgoff = umem.address % PAGE_SIZE;
  let va = virt;
  let curr_base = -1; // ~0: the first entry never continues anything
  let curr_len = 0;
  const addr = umem.dma_address;
  const len = umem.dma_length;
  for (let i = 0; i < umem.nents; i++) {
    const a = addr[i];
    if (curr_base < 0 || curr_base + curr_len !== a) {
      curr_base = a;
      curr_len = 0;
      // Reduce max page size if VA/PA bits differ.
      const pa = curr_base + pgoff;
      mh = (mh | (hi32(pa) ^ hi32(va))) >>> 0;
      ml = (ml | (lo32(pa) ^ lo32(va))) >>> 0;
      // A VA at a discontinuity must start a HW page: its alignment bounds the page size.
      if (i !== 0) {
        mh = (mh | hi32(va)) >>> 0;
        ml = (ml | lo32(va)) >>> 0;
      }
    }
    curr_len += len[i];
    va += len[i] - pgoff;
    pgoff = 0;
  }
  if (mh | ml) {
    // pgsz_bitmap &= GENMASK(count_trailing_zeros(mask), 0)
    const k = ffs64(mh, ml);
    bh = (bh & genmask_hi(k, 0)) >>> 0;
    bl = (bl & genmask_lo(k, 0)) >>> 0;
  }
  return bh | bl ? 2 ** fls64(bh, bl) : 0;
}

/**
 * kernel: include/rdma/ib_umem.h ib_umem_num_dma_blocks()
 * HW pages of `pgsz` bytes spanning [iova, iova + length): ALIGN(iova + length, pgsz) -
 * ALIGN_DOWN(iova, pgsz), over pgsz. 4 MiB at IOVA 1 MiB with 2 MiB pages spans [0, 6 MiB): 3.
 */
export function ib_umem_num_dma_blocks_at(iova: number, length: number, pgsz: number): number {
  if (!(pgsz > 0) || 2 ** Math.round(Math.log2(pgsz)) !== pgsz)
    throw new RangeError(`ib_umem_num_dma_blocks: page size ${pgsz} is not a power of two`);
  // Division by a power of two is exact in floating point, so ceil/floor are exact here.
  return Math.ceil((iova + length) / pgsz) - Math.floor(iova / pgsz);
}

/** ib_umem_num_dma_blocks() of a umem whose IOVA is `iova` (ib_umem_find_best_pgsz sets umem->iova = virt). */
export function ib_umem_num_dma_blocks(umem: IbUmem, iova: number, pgsz: number): number {
  return ib_umem_num_dma_blocks_at(iova, umem.length, pgsz);
}

/**
 * kernel: drivers/infiniband/hw/mlx5/mlx5_ib.h mlx5_umem_mkc_find_best_pgsz() bitmap for an MTT
 * mkey: GENMASK(max_log_entity_size, min_log_entity_size). With the capability
 * max_mkey_log_entity_size_mtt unreported (0), or above 31 without umr_log_entity_size_5, the
 * maximum is 31 (2 GiB); the minimum is max(log_min_mkey_entity_size, MLX5_ADAPTER_PAGE_SHIFT = 12).
 */
export function mlx5_mtt_pgsz_bitmap(max_log_entity_size = 31, min_log_entity_size = 12): bigint {
  if (
    !Number.isInteger(max_log_entity_size) ||
    !Number.isInteger(min_log_entity_size) ||
    min_log_entity_size < 12 ||
    max_log_entity_size > 63 ||
    min_log_entity_size > max_log_entity_size
  )
    throw new RangeError(
      `mlx5_mtt_pgsz_bitmap: entity sizes 2^${min_log_entity_size}..2^${max_log_entity_size} are not 12 <= min <= max <= 63`,
    );
  return ((1n << BigInt(max_log_entity_size + 1)) - 1n) & ~((1n << BigInt(min_log_entity_size)) - 1n);
}
