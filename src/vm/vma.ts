/**
 * struct vm_area_struct, for every VMA of every address space, as a struct-of-arrays table with
 * recycled slots. A VMA id is its slot. Addresses and page offsets are doubles holding exact
 * integers (user addresses reach 2^47).
 */

// vm_flags (include/linux/mm.h)
export const VM_NONE = 0;
export const VM_READ = 0x1;
export const VM_WRITE = 0x2;
export const VM_EXEC = 0x4;
export const VM_SHARED = 0x8;
export const VM_MAYREAD = 0x10;
export const VM_MAYWRITE = 0x20;
export const VM_MAYEXEC = 0x40;
export const VM_MAYSHARE = 0x80;
export const VM_GROWSDOWN = 0x100;
export const VM_PFNMAP = 0x400;
export const VM_LOCKED = 0x2000;
export const VM_IO = 0x4000;
/** MADV_SEQUENTIAL and MADV_RANDOM read-ahead hints. */
export const VM_SEQ_READ = 0x8000;
export const VM_RAND_READ = 0x10000;
export const VM_DONTCOPY = 0x20000;
export const VM_DONTEXPAND = 0x40000;
export const VM_LOCKONFAULT = 0x80000;
export const VM_ACCOUNT = 0x100000;
export const VM_NORESERVE = 0x200000;
export const VM_HUGETLB = 0x400000;
/** MADV_WIPEONFORK: the child of a fork gets this range empty. */
export const VM_WIPEONFORK = 0x2000000;
/** MADV_DONTDUMP: left out of core dumps. */
export const VM_DONTDUMP = 0x4000000;
export const VM_SOFTDIRTY = 0x8000000;
export const VM_MIXEDMAP = 0x10000000;
export const VM_HUGEPAGE = 0x20000000;
export const VM_NOHUGEPAGE = 0x40000000;
export const VM_ACCESS_FLAGS = VM_READ | VM_WRITE | VM_EXEC;
/** VM_STACK on x86-64 (no CONFIG_STACK_GROWSUP). */
export const VM_STACK = VM_GROWSDOWN;
/** VM_LOCKED_MASK: what mlock() sets and munlock() clears. */
export const VM_LOCKED_MASK = VM_LOCKED | VM_LOCKONFAULT;
/** VM_SPECIAL: mappings that are never merged, never mlocked and never expanded by mremap(). */
export const VM_SPECIAL = VM_IO | VM_DONTEXPAND | VM_PFNMAP | VM_MIXEDMAP;
/**
 * VM_DATA_DEFAULT_FLAGS on x86-64 (VM_DATA_FLAGS_TSK_EXEC without READ_IMPLIES_EXEC): what a brk
 * heap gets.
 */
export const VM_DATA_DEFAULT_FLAGS = VM_READ | VM_WRITE | VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC;

export class VmaTable {
  vm_start = new Float64Array(64);
  vm_end = new Float64Array(64);
  vm_pgoff = new Float64Array(64);
  vm_flags = new Uint32Array(64);
  /** Owning mm_struct id. */
  vm_mm = new Int32Array(64);
  /** anon_vma id, or -1 until the first anonymous fault (anon_vma_prepare). */
  anon_vma = new Int32Array(64);
  private free: number[] = [];
  private used = 0;

  /** Live VMAs in all address spaces. */
  get count(): number {
    return this.used - this.free.length;
  }

  /** vm_area_alloc(): a new VMA slot. */
  alloc(mm: number, start: number, end: number, flags: number, pgoff: number): number {
    let id = this.free.pop();
    if (id === undefined) {
      id = this.used++;
      if (id >= this.vm_start.length) this.grow();
    }
    this.vm_start[id] = start;
    this.vm_end[id] = end;
    this.vm_flags[id] = flags;
    this.vm_pgoff[id] = pgoff;
    this.vm_mm[id] = mm;
    this.anon_vma[id] = -1;
    return id;
  }

  /** vm_area_free() */
  release(id: number): void {
    this.vm_mm[id] = -1;
    this.free.push(id);
  }

  /** vm_area_dup(): a copy of `id` in a new slot (the caller adjusts bounds). */
  dup(id: number, mm = this.vm_mm[id]): number {
    const copy = this.alloc(mm, this.vm_start[id], this.vm_end[id], this.vm_flags[id], this.vm_pgoff[id]);
    this.anon_vma[copy] = this.anon_vma[id];
    return copy;
  }

  /** linear_page_index(): the page offset of `addr` in the VMA's object (page->index). */
  linear_page_index(id: number, addr: number): number {
    return this.vm_pgoff[id] + (addr - this.vm_start[id]) / 4096;
  }

  private grow(): void {
    const n = this.vm_start.length * 2;
    const g = <T extends Float64Array | Uint32Array | Int32Array>(a: T): T => {
      const b = new (a.constructor as new (n: number) => T)(n);
      b.set(a);
      return b;
    };
    this.vm_start = g(this.vm_start);
    this.vm_end = g(this.vm_end);
    this.vm_pgoff = g(this.vm_pgoff);
    this.vm_flags = g(this.vm_flags);
    this.vm_mm = g(this.vm_mm);
    this.anon_vma = g(this.anon_vma);
  }
}
