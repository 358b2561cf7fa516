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
/** The RFC POC's VM_CONTIG (its 0x00800000, VM_SYNC's bit in later kernels): pre-allocated pages. */
export const VM_CONTIG = 0x800000;
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

/** What VmaTable tells the vm layer (Vm implements it). */
export interface VmaOps {
  file_put(file: number): void;
  file_get(file: number): void;
  private_get(data: number): void;
}

export class VmaTable {
  vm_start = new Float64Array(64);
  vm_end = new Float64Array(64);
  vm_pgoff = new Float64Array(64);
  vm_flags = new Uint32Array(64);
  /** Owning mm_struct id. */
  vm_mm = new Int32Array(64);
  /** anon_vma id, or -1 until the first anonymous fault (anon_vma_prepare). */
  anon_vma = new Int32Array(64);
  /** vm_file: the open file (struct file id) mapped, 0 for anonymous memory. */
  vm_file = new Int32Array(64);
  /** The address_space id of vm_file's inode (0 without a file). */
  vm_mapping = new Int32Array(64);
  /** vm_private_data: a hugetlb VMA's object (src/vm/hugetlb.ts), a MAP_CONTIG backing, 0 for none. */
  vm_private_data = new Int32Array(64);
  /** i_mmap: per address_space id, the VMAs mapping it (the file rmap's interval tree). */
  readonly i_mmap = new Map<number, Set<number>>();
  /** The vm layer (Vm), told of file references and duplicated private data; null: no one. */
  ops: VmaOps | null = null;
  private free: number[] = [];
  private used = 0;

  /** Called with the open-file id when a VMA holding a file goes away (fput). */
  file_put(file: number): void {
    this.ops?.file_put(file);
  }

  /** Called with the open-file id when a VMA holding a file is duplicated (get_file). */
  file_get(file: number): void {
    this.ops?.file_get(file);
  }

  /** Called with vm_private_data when a VMA holding one is duplicated (vm_ops->open). */
  private_get(data: number): void {
    this.ops?.private_get(data);
  }

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
    this.vm_file[id] = 0;
    this.vm_mapping[id] = 0;
    this.vm_private_data[id] = 0;
    return id;
  }

  /**
   * The VMA maps open file `file` (whose inode's address_space is `mapping`): it takes over the
   * caller's reference and joins the mapping's i_mmap.
   */
  set_file(id: number, file: number, mapping: number): void {
    this.vm_file[id] = file;
    this.vm_mapping[id] = mapping;
    const set = this.i_mmap.get(mapping) ?? new Set<number>();
    this.i_mmap.set(mapping, set);
    set.add(id);
  }

  /** vm_area_free(): a file VMA leaves i_mmap and drops its file reference. */
  release(id: number): void {
    const file = this.vm_file[id];
    if (file) {
      const mapping = this.vm_mapping[id];
      const set = this.i_mmap.get(mapping)!;
      set.delete(id);
      if (!set.size) this.i_mmap.delete(mapping);
      this.vm_file[id] = 0;
      this.vm_mapping[id] = 0;
    }
    this.vm_mm[id] = -1;
    this.free.push(id);
    if (file) this.file_put(file);
  }

  /** vm_area_dup(): a copy of `id` in a new slot (the caller adjusts bounds). */
  dup(id: number, mm = this.vm_mm[id]): number {
    const copy = this.alloc(mm, this.vm_start[id], this.vm_end[id], this.vm_flags[id], this.vm_pgoff[id]);
    this.anon_vma[copy] = this.anon_vma[id];
    this.vm_private_data[copy] = this.vm_private_data[id];
    // Only hugetlb counts its VMAs (a MAP_CONTIG backing counts its mapped pages instead).
    if (this.vm_private_data[id] && this.vm_flags[id] & VM_HUGETLB)
      this.private_get(this.vm_private_data[id]);
    if (this.vm_file[id]) {
      this.file_get(this.vm_file[id]);
      this.set_file(copy, this.vm_file[id], this.vm_mapping[id]);
    }
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
    this.vm_file = g(this.vm_file);
    this.vm_mapping = g(this.vm_mapping);
    this.vm_private_data = g(this.vm_private_data);
  }
}
