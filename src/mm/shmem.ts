/**
 * tmpfs and shared anonymous memory (mm/shmem.c): files whose only copy is their page cache.
 * Their pages are swap-backed, so they live on the anon LRU and, without a swap device, cannot
 * be reclaimed; they count as Shmem in /proc/meminfo. A mount bounds its pages (size=, 50% of
 * RAM by default): beyond that a write or fault gets ENOSPC / SIGBUS.
 */
import { errnos } from '../lib/errno.ts';
import { type AddressSpace, filemap_create_folio, filemap_get_folio } from './filemap.ts';
import type { MM } from './mm.ts';

/** struct shmem_sb_info: one tmpfs mount's block accounting. */
export class ShmemSbInfo {
  used_blocks = 0;
  constructor(
    /** Pages the mount may hold (size= / PAGE_SIZE; Infinity for the internal shm mount). */
    public max_blocks: number,
  ) {}
}

/**
 * kernel: mm/shmem.c shmem_get_folio_gfp() (SGP_CACHE / SGP_WRITE)
 * The page at `index` of a tmpfs file, allocated zeroed on first use within the mount's size.
 * Returns the pfn, -ENOSPC when the mount is full, -ENOMEM when memory ran out.
 */
export function shmem_get_folio(
  mm: MM,
  as: AddressSpace,
  sbinfo: ShmemSbInfo,
  index: number,
  nid: number,
  cpu: number,
): number {
  const cached = filemap_get_folio(as, index);
  if (cached >= 0) return cached;
  // shmem_inode_acct_blocks(): the commit charge first (-ENOMEM), then the mount's size.
  if (as.acct_blocks && !as.acct_blocks.shmem_acct(1)) return -errnos.ENOMEM;
  if (sbinfo.used_blocks + 1 > sbinfo.max_blocks) {
    as.acct_blocks?.shmem_acct(-1);
    return -errnos.ENOSPC;
  }
  const pfn = filemap_create_folio(mm, as, index, nid, cpu);
  if (pfn < 0) {
    as.acct_blocks?.shmem_acct(-1);
    return -errnos.ENOMEM;
  }
  sbinfo.used_blocks++;
  return pfn;
}
