/**
 * The IOMMU side (drivers/iommu/iommu.c, dma-iommu.c, iova.c): the page sizes iommu_map() uses
 * for a buffer, hence the IOMMU page-table entries (PTEs) it needs and what its IOTLB must hold.
 *
 * dma-iommu maps a scatterlist at one IOVA range (iommu_dma_map_sg()); iommu_map_sg() merges
 * physically contiguous entries and maps each physical run with iommu_map_nosync(), which cuts
 * the run into the largest supported pages whose IOVA and physical address are both aligned
 * (iommu_pgsize()). A 2 MiB page needs a physically contiguous, 2 MiB-aligned run whose IOVA has
 * the same offset modulo 2 MiB, so physical contiguity turns into fewer PTEs and IOTLB entries.
 */
import { errnos } from '../lib/errno.ts';
import { PAGE_SIZE } from '../mm/mmzone.ts';
import {
  type Bitmap64,
  bitmap64,
  ffs53,
  ffs64,
  fls53,
  fls64,
  genmask_hi,
  genmask_lo,
  is_u53,
  LIMIT53,
  mod_pow2,
  or53,
  POW2,
} from './bits64.ts';
import { type EntriesByShift, entries_by_shift } from './translation_cache.ts';

const EINVAL = -errnos.EINVAL;

/** Intel VT-d with 2-level super pages (domain_super_pgsize_bitmap()): 4 KiB | 2 MiB | 1 GiB. */
export const INTEL_IOMMU_PGSIZES = 2 ** 12 + 2 ** 21 + 2 ** 30;

/**
 * kernel: drivers/iommu/iommu.c iommu_pgsize()
 * The page size to map `size` bytes at `iova` → `paddr` with: the largest in the bitmap that is
 * no larger than `size` and to which both addresses are aligned. With `count`, count[0] gets how
 * many such pages to map before a larger page becomes possible (the next larger size, if IOVA
 * and paddr share its offset and the run reaches past its next boundary).
 * 4 MiB at IOVA 0x1ff000 → PA 0x3ff000, sizes 4K|2M: 4 KiB pages, count 1 (then 2 MiB aligned).
 */
export function iommu_pgsize(
  bm: Bitmap64,
  iova: number,
  paddr: number,
  size: number,
  count: Float64Array | null,
): number {
  return 2 ** __iommu_pgsize(bm, iova, paddr, size, count ?? SCRATCH);
}

const SCRATCH = new Float64Array(1);

/** iommu_pgsize() returning log2 of the page size (the loop's form: no log2 to undo). */
function __iommu_pgsize(
  bm: Bitmap64,
  iova: number,
  paddr: number,
  size: number,
  count: Float64Array,
): number {
  const addr_merge = or53(paddr, iova);
  // Page sizes supported by the hardware and small enough for size.
  const f = fls53(size);
  let ph = (bm.hi & genmask_hi(f, 0)) >>> 0;
  let pl = (bm.lo & genmask_lo(f, 0)) >>> 0;
  // Constrain the page sizes further based on the maximum alignment.
  if (addr_merge) {
    const a = ffs53(addr_merge);
    ph = (ph & genmask_hi(a, 0)) >>> 0;
    pl = (pl & genmask_lo(a, 0)) >>> 0;
  }
  if (!(ph | pl))
    throw new Error(`BUG: iommu_pgsize: no page size for iova ${iova} paddr ${paddr} size ${size}`);
  const idx = fls64(ph, pl);
  // Find the next biggest supported page size, if it exists.
  const nh = (bm.hi & ~genmask_hi(idx, 0)) >>> 0;
  const nl = (bm.lo & ~genmask_lo(idx, 0)) >>> 0;
  if (nh | nl) {
    const k = ffs64(nh, nl);
    const next = POW2[k];
    // No point trying a bigger page unless IOVA and paddr are similarly offset within it.
    if (mod_pow2(iova, k) === mod_pow2(paddr, k)) {
      const offset = next - mod_pow2(addr_merge, k);
      if (offset + next <= size) size = offset;
    }
  }
  count[0] = Math.floor(size / POW2[idx]);
  return idx;
}

/**
 * kernel: drivers/iommu/iommu.c iommu_map_nosync() (the page-size loop)
 * Map [iova, iova + size) → paddr, adding the pages used to `ptes` (by log2 size). 0, or -EINVAL
 * when iova, paddr or size is not aligned to the smallest supported page.
 */
export function iommu_map_range(
  bm: Bitmap64,
  iova: number,
  paddr: number,
  size: number,
  ptes: EntriesByShift,
  scratch: Float64Array,
): number {
  if (!(bm.hi | bm.lo)) return -errnos.ENODEV;
  const kmin = ffs64(bm.hi, bm.lo);
  if (mod_pow2(iova, kmin) || mod_pow2(paddr, kmin) || mod_pow2(size, kmin)) return EINVAL;
  while (size > 0) {
    const idx = __iommu_pgsize(bm, iova, paddr, size, scratch);
    const mapped = POW2[idx] * scratch[0];
    ptes[idx] += scratch[0];
    size -= mapped;
    iova += mapped;
    paddr += mapped;
  }
  return 0;
}

/** The IOMMU mapping of a buffer. */
export interface IommuMapping {
  /** IOVA of the buffer's first page. */
  readonly iova: number;
  /** PTEs by log2 page size (index 12: 4 KiB, 21: 2 MiB, 30: 1 GiB). */
  readonly ptes: EntriesByShift;
  /** Total PTEs (leaf entries), i.e. IOTLB entries needed to cover the buffer. */
  readonly total: number;
}

/**
 * kernel: drivers/iommu/dma-iommu.c iommu_dma_alloc_iova() → iova.c alloc_iova(size_aligned)
 * The alignment of the IOVA dma-iommu gives `pages` pages: roundup_pow_of_two(pages) pages
 * (alloc_iova_fast rounds small sizes up, alloc_iova aligns to fls_long(size - 1)). The model
 * uses that value itself as the IOVA: only its alignment matters for the page sizes.
 */
export function dma_iommu_iova(pages: number): number {
  if (!Number.isInteger(pages) || pages < 1) throw new RangeError(`dma_iommu_iova: ${pages} pages`);
  return 2 ** Math.ceil(Math.log2(pages)) * PAGE_SIZE;
}

/**
 * kernel: drivers/iommu/iommu.c iommu_map_sg() over whole pages
 * The IOMMU PTEs for mapping the buffer's pages (pfns, in order) at `iova` (page aligned;
 * default: what dma-iommu would allocate) with the domain's page-size bitmap (default: Intel
 * VT-d 4K|2M|1G). Physically contiguous pages are mapped as one run. RangeError for a page
 * that is not resident or an unaligned IOVA.
 */
export function iommu_map_buffer(
  pfns: ArrayLike<number>,
  pgsize_bitmap: bigint | number = INTEL_IOMMU_PGSIZES,
  iova: number = dma_iommu_iova(Math.max(1, pfns.length)),
): IommuMapping {
  const bm = bitmap64(pgsize_bitmap, 'iommu_map_buffer');
  if (!(bm.hi | bm.lo)) throw new RangeError('iommu_map_buffer: empty page-size bitmap');
  if (pfns.length === 0) throw new RangeError('iommu_map_buffer: no pages');
  if (!is_u53(iova) || iova + pfns.length * PAGE_SIZE > LIMIT53)
    throw new RangeError(`iommu_map_buffer: iova ${iova} is not below 2^53`);
  const ptes = entries_by_shift();
  const scratch = new Float64Array(1);
  let i = 0;
  while (i < pfns.length) {
    const start = pfns[i];
    if (!(start >= 0)) throw new RangeError(`iommu_map_buffer: page ${i} is not resident`);
    let j = i + 1;
    while (j < pfns.length && pfns[j] === pfns[j - 1] + 1) j++;
    const rc = iommu_map_range(
      bm,
      iova + i * PAGE_SIZE,
      start * PAGE_SIZE,
      (j - i) * PAGE_SIZE,
      ptes,
      scratch,
    );
    if (rc)
      throw new RangeError(
        `iommu_map_buffer: iommu_map(iova ${iova + i * PAGE_SIZE}, pa ${start * PAGE_SIZE}) failed (${rc}): smallest IOMMU page is larger than 4 KiB or IOVA unaligned`,
      );
    i = j;
  }
  let total = 0;
  for (let k = 0; k < 64; k++) total += ptes[k];
  return { iova, ptes, total };
}
