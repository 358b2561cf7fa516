/**
 * Page tables: four levels (PGD, PUD, PMD, PTE) of 512 entries, each table a real order-0 frame
 * from the page allocator (GFP_PGTABLE_USER: unmovable, zeroed, accounted in NR_PAGETABLE), as on
 * x86-64. Entry contents live in typed arrays indexed by a table slot; a table's frame records its
 * slot in frames.index and its owner in frames.mapping.
 *
 * An entry is a pfn and x86 flag bits: a table entry points at the next level's table frame, a
 * leaf PTE at a mapped page.
 */
import { __GFP_ACCOUNT, __GFP_ZERO, GFP_KERNEL } from '../mm/gfp.ts';
import type { MM } from '../mm/mm.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import { PG_table } from '../mm/page-flags.ts';
import { node_stat_index } from '../mm/vmstat_items.ts';

export const PTRS_PER_TABLE = 512;
/** GFP_PGTABLE_USER (include/asm-generic/pgalloc.h). */
export const GFP_PGTABLE_USER = GFP_KERNEL | __GFP_ZERO | __GFP_ACCOUNT;

// x86 page-table entry bits (arch/x86/include/asm/pgtable_types.h)
export const _PAGE_PRESENT = 0x001;
export const _PAGE_RW = 0x002;
export const _PAGE_USER = 0x004;
export const _PAGE_ACCESSED = 0x020;
export const _PAGE_DIRTY = 0x040;
export const _PAGE_PSE = 0x080;
/**
 * _PAGE_PROTNONE (the global bit reused): a page mapped in a PROT_NONE VMA. The entry is not
 * present to the MMU but pte_present() is true, and it keeps its pfn; entries are never 0.
 */
export const _PAGE_PROTNONE = 0x100;
export const _PAGE_SOFT_DIRTY = 0x800;
/**
 * A swap entry: a non-present PTE whose pfn field holds the swap slot (swp_offset; one swap
 * device, type 0). The model marks it with this bit; x86 encodes type and offset in the PTE.
 */
export const _PAGE_SWP_ENTRY = 0x200;
/**
 * _PAGE_SPECIAL (pte_mkspecial): a PTE that remap_pfn_range() or vmf_insert_pfn() installed in a
 * VM_PFNMAP mapping. vm_normal_page() gives no page for it: no rmap, no mapcount, no RSS, no
 * refcount; zap, fork, mprotect, pagemap and migration leave its page alone. x86 uses
 * _PAGE_BIT_SOFTW1 (bit 9), which the model's swap-entry marker already takes; this is SOFTW2.
 */
export const _PAGE_SPECIAL = 0x400;

/** pte_special() */
export function pte_special(bits: number): boolean {
  return (bits & _PAGE_SPECIAL) !== 0;
}

/** pte_present(): maps a page (PROT_NONE entries too, as on x86). */
export function pte_present(bits: number): boolean {
  return (bits & (_PAGE_PRESENT | _PAGE_PROTNONE)) !== 0;
}

/** is_swap_pte(): a swap entry. */
export function is_swap_pte(bits: number): boolean {
  return (bits & _PAGE_SWP_ENTRY) !== 0;
}

/** What a table entry pointing at a lower table carries (_PAGE_TABLE). */
export const _PAGE_TABLE = _PAGE_PRESENT | _PAGE_RW | _PAGE_USER | _PAGE_ACCESSED | _PAGE_DIRTY;

/** frames.mapping tag of a page-table page: (mm id << 2) | MAPPING_PGTABLE. */
export const MAPPING_PGTABLE = 3;
const NR_PAGETABLE = node_stat_index('nr_page_table_pages');

export class PageTables {
  /** Per entry: the pfn it points at, or -1. */
  pfn = new Int32Array(64 * PTRS_PER_TABLE).fill(-1);
  /** Per entry: x86 flag bits; 0 = pte_none(). */
  bits = new Uint16Array(64 * PTRS_PER_TABLE);
  /** Per table: present entries, so an emptied table can be freed without a scan. */
  used = new Int16Array(64);
  /** Per table: its frame. */
  frame = new Int32Array(64);
  /**
   * The PTE table deposited with each huge PMD entry (pgtable_trans_huge_deposit()), by the
   * PMD entry's flat index: allocated and owned, linked into nothing until split_huge_pmd().
   */
  readonly deposit = new Map<number, number>();
  private free: number[] = [];
  private slots = 0;
  /** Tables per owning address space (mm_pgtables_bytes / PAGE_SIZE). */
  private readonly perOwner: number[] = [];

  constructor(private readonly mm: MM) {}

  /** Page-table pages of address space `owner`. */
  owned(owner: number): number {
    return this.perOwner[owner] ?? 0;
  }

  /** Tables in use across all address spaces. */
  get count(): number {
    return this.slots - this.free.length;
  }

  /**
   * pagetable_alloc() + the level's ctor: a zeroed table frame for address space `owner`,
   * allocated on `cpu` from node `nid`; -1 if the page allocator has nothing (VM_FAULT_OOM).
   */
  alloc(owner: number, nid: number, cpu: number): number {
    const pfn = __alloc_pages(this.mm, GFP_PGTABLE_USER, 0, nid, cpu);
    if (pfn < 0) return -1;
    let slot = this.free.pop();
    if (slot === undefined) {
      slot = this.slots++;
      if (slot >= this.frame.length) this.grow();
    }
    const f = this.mm.frames;
    f.flags[pfn] |= PG_table;
    f.mapping[pfn] = (owner << 2) | MAPPING_PGTABLE;
    f.index[pfn] = slot;
    this.frame[slot] = pfn;
    this.used[slot] = 0;
    this.perOwner[owner] = (this.perOwner[owner] ?? 0) + 1;
    this.mm.nodes[this.mm.page_zone(pfn)!.nid].vm_stat[NR_PAGETABLE]++;
    return slot;
  }

  /** pagetable_dtor() + pagetable_free(): the table must be empty. */
  release(slot: number, cpu: number): void {
    if (this.used[slot] !== 0)
      throw new Error(`freeing page table slot ${slot} with ${this.used[slot]} entries`);
    const pfn = this.frame[slot];
    const f = this.mm.frames;
    this.perOwner[f.mapping[pfn] >> 2]--;
    f.flags[pfn] &= ~PG_table;
    f.mapping[pfn] = 0;
    f.index[pfn] = 0;
    this.mm.nodes[this.mm.page_zone(pfn)!.nid].vm_stat[NR_PAGETABLE]--;
    __free_pages(this.mm, pfn, 0, cpu);
    this.frame[slot] = -1;
    this.free.push(slot);
  }

  /** Set entry `i` of table `slot`. */
  set(slot: number, i: number, pfn: number, bits: number): void {
    const e = slot * PTRS_PER_TABLE + i;
    if (this.bits[e] === 0) this.used[slot]++;
    this.pfn[e] = pfn;
    this.bits[e] = bits;
  }

  /** pte_clear() */
  clear(slot: number, i: number): void {
    const e = slot * PTRS_PER_TABLE + i;
    if (this.bits[e] !== 0) this.used[slot]--;
    this.pfn[e] = -1;
    this.bits[e] = 0;
  }

  /** The table slot an entry points at (for non-leaf levels); -1 for none or a huge (PSE) leaf. */
  child(slot: number, i: number): number {
    const e = slot * PTRS_PER_TABLE + i;
    return this.bits[e] === 0 || this.bits[e] & _PAGE_PSE ? -1 : this.mm.frames.index[this.pfn[e]];
  }

  private grow(): void {
    const n = this.frame.length * 2;
    const pfn = new Int32Array(n * PTRS_PER_TABLE).fill(-1);
    pfn.set(this.pfn);
    this.pfn = pfn;
    const bits = new Uint16Array(n * PTRS_PER_TABLE);
    bits.set(this.bits);
    this.bits = bits;
    const used = new Int16Array(n);
    used.set(this.used);
    this.used = used;
    const frame = new Int32Array(n);
    frame.set(this.frame);
    this.frame = frame;
  }
}

/** Table indices of a virtual address at each level, PGD first (4-level paging). */
export function pgd_index(vpn: number): number {
  return Math.floor(vpn / 2 ** 27) & 511;
}
export function pud_index(vpn: number): number {
  return (vpn >>> 18) & 511;
}
export function pmd_index(vpn: number): number {
  return (vpn >>> 9) & 511;
}
export function pte_index(vpn: number): number {
  return vpn & 511;
}
