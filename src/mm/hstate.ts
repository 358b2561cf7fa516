/**
 * struct hstate (include/linux/hugetlb.h): one huge page size and its pool, and the machine's set
 * of them. Kept apart from hugetlb.ts, which allocates, so that MM can hold its pools without
 * importing the allocators.
 */
import { MAX_PAGE_ORDER, PAGE_SHIFT } from './mmzone.ts';

/** struct hstate: one huge page size and its pool. */
export class Hstate {
  max_huge_pages = 0;
  nr_huge_pages = 0;
  free_huge_pages = 0;
  resv_huge_pages = 0;
  surplus_huge_pages = 0;
  nr_overcommit_huge_pages = 0;
  readonly nr_huge_pages_node: Int32Array;
  readonly free_huge_pages_node: Int32Array;
  readonly surplus_huge_pages_node: Int32Array;
  /** Boot-time per-node counts (hugepages=N:C), node-exact allocations. */
  readonly max_huge_pages_node: Int32Array;
  /**
   * hugepage_freelists[nid]: head pfns of free pool pages, the list head last (enqueue adds at the
   * head, dequeue and remove_pool take the head, as list_move/list_entry(.next) do).
   */
  readonly hugepage_freelists: number[][];
  /** The heads on the free lists (HPageFreed), for folio_test_hugetlb_freed() in O(1). */
  readonly freed = new Set<number>();
  next_nid_to_alloc = 0;
  next_nid_to_free = 0;
  /** "hugepages-2048kB" */
  readonly name: string;

  constructor(
    readonly order: number,
    nr_nodes: number,
  ) {
    this.nr_huge_pages_node = new Int32Array(nr_nodes);
    this.free_huge_pages_node = new Int32Array(nr_nodes);
    this.surplus_huge_pages_node = new Int32Array(nr_nodes);
    this.max_huge_pages_node = new Int32Array(nr_nodes);
    this.hugepage_freelists = Array.from({ length: nr_nodes }, () => []);
    this.name = `hugepages-${huge_page_size_kb(this)}kB`;
  }
}

/** huge_page_size(h) / SZ_1K */
export function huge_page_size_kb(h: Hstate): number {
  return 4 << h.order;
}
/** pages_per_huge_page(h) */
export function pages_per_huge_page(h: Hstate): number {
  return 2 ** h.order;
}
/** hstate_is_gigantic(): order above MAX_PAGE_ORDER, beyond the buddy allocator. */
export function hstate_is_gigantic(h: Hstate): boolean {
  return h.order > MAX_PAGE_ORDER;
}
/**
 * hugepage_migration_supported(h): arch_hugetlb_migration_supported() on x86-64 is true for the
 * PMD, PUD and PGDIR sizes, i.e. both hstates (2 MiB and 1 GiB).
 */
export function hugepage_migration_supported(h: Hstate): boolean {
  return h.order === 9 || h.order === 18 || h.order === 27;
}
/** hugepage_movable_supported(h): migratable and not gigantic (gigantic pages never use ZONE_MOVABLE). */
export function hugepage_movable_supported(h: Hstate): boolean {
  return hugepage_migration_supported(h) && !hstate_is_gigantic(h);
}
/** persistent_huge_pages(h) */
export function persistent_huge_pages(h: Hstate): number {
  return h.nr_huge_pages - h.surplus_huge_pages;
}
/** available_huge_pages(h) */
export function available_huge_pages(h: Hstate): number {
  return h.free_huge_pages - h.resv_huge_pages;
}

/** The pools of a machine: the hstates in registration order and which one is the default. */
export class HugetlbState {
  readonly hstates: Hstate[] = [];
  default_hstate_idx = 0;
  /** Gigantic pages memblock reserved at boot, not yet gathered into their pools. */
  readonly huge_boot_pages: Array<{ h: Hstate; pfn: number; nid: number }> = [];
  /** pr_warn/pr_info lines of boot-time parsing, moved to the kernel log at hugetlb_init(). */
  readonly bootlog: string[] = [];
  // Command-line parsing state (hugepages_setup() and friends).
  parsed_valid_hugepagesz = true;
  parsed_default_hugepagesz = false;
  parsed_hstate: Hstate | null = null;
  default_hstate_max_huge_pages = 0;
  readonly default_hugepages_in_node: Int32Array;
  last_mhp: unknown = null;
  /**
   * Heads of in-use pages isolated for migration (folio_isolate_hugetlb() cleared their
   * hugetlb_migratable flag and took them off hugepage_activelist).
   */
  readonly isolated = new Set<number>();
  /** Heads with the hugetlb_temporary flag: migration targets from alloc_migrate_hugetlb_folio(). */
  readonly temporary = new Set<number>();
  /**
   * The address-space half of migrating an in-use page (hugetlbfs_migrate_folio() moving its page
   * cache slot, and remove_migration_ptes() repointing its PMD/PUD leaves): installed by the vm
   * layer (src/vm/hugetlb.ts, through Vm) on its first hugetlb object; null while nothing can map one.
   */
  vm: { hugetlb_migrate_mapping(old: number, dst: number): void } | null = null;
  /** vm.hugetlb_shm_group: the group allowed SHM_HUGETLB (fs/hugetlb.ts). */
  hugetlb_shm_group = 0;

  constructor(readonly nr_nodes: number) {
    this.default_hugepages_in_node = new Int32Array(nr_nodes);
  }

  get default_hstate(): Hstate {
    return this.hstates[this.default_hstate_idx];
  }

  /** size_to_hstate() */
  size_to_hstate(bytes: number): Hstate | undefined {
    return this.hstates.find((h) => 2 ** (h.order + PAGE_SHIFT) === bytes);
  }

  /** hugetlb_add_hstate(): register an order unless it exists. */
  hugetlb_add_hstate(order: number): Hstate {
    const have = this.hstates.find((h) => h.order === order);
    if (have) return have;
    const h = new Hstate(order, this.nr_nodes);
    this.hstates.push(h);
    this.parsed_hstate = h;
    return h;
  }
}
