/**
 * The reverse-map operations reclaim and migration need (mm/rmap.c): from a page to the PTEs
 * that map it. Page tables belong to the address-space layer (src/vm), which installs these
 * on the MM; a machine without address spaces maps nothing.
 */

/** folio_referenced() found the page mapped in a VM_LOCKED VMA (and mlocked it). */
export const RMAP_VM_LOCKED = 1 << 0;
/** folio_referenced() found the page mapped in a VM_EXEC VMA. */
export const RMAP_VM_EXEC = 1 << 1;

export interface RmapOps {
  /**
   * folio_referenced(): test and clear the accessed bit of every PTE mapping `pfn`. Returns the
   * number of PTEs that were young; `out.vm_flags` gets RMAP_VM_LOCKED / RMAP_VM_EXEC.
   */
  folio_referenced(pfn: number, out: { vm_flags: number }): number;
  /**
   * try_to_unmap(): clear every PTE mapping `pfn`, moving PTE dirty bits to the page (a dirtied
   * lazyfree page becomes swap-backed again and stays mapped). Returns whether no PTE maps it
   * any more.
   */
  try_to_unmap(pfn: number): boolean;
  /**
   * remove_migration_ptes(): repoint every PTE that maps `old` at `new_pfn`, keeping the
   * entries' bits (migration; `new_pfn` already carries the page's mapping and index).
   */
  remap(old: number, new_pfn: number): void;
  /**
   * folio_mkclean(): write-protect and clean every PTE of a shared mapping that maps the page
   * cache page `pfn`, so the next write through it faults and dirties the page again (writeback
   * is starting). Returns the PTEs that were dirty or writable.
   */
  folio_mkclean(pfn: number): number;
}

/** The rmap of a machine with no address spaces: nothing is ever mapped. */
export function no_rmap(): RmapOps {
  return {
    folio_referenced: (_pfn, out) => {
      out.vm_flags = 0;
      return 0;
    },
    try_to_unmap: () => true,
    remap: () => {},
    folio_mkclean: () => 0,
  };
}
