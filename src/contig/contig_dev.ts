/**
 * /dev/contig<N>: Michal Hocko's alternative to MAP_CONTIG (2017-10-13, 10-16), as a driver of
 * mapcontig's own. Access is the device node's file permissions; `mmap(MAP_SHARED)` of the
 * device allocates a buffer through the shared in-kernel helper (contig_alloc.ts) under the
 * device's limits and maps it as device memory (remap_pfn_range(): VM_IO | VM_PFNMAP, special
 * PTEs), with the fallback the administrator chose when no contiguous run can be had.
 *
 * - Limits: a mapping longer than max_mapping_bytes is EINVAL (it can never succeed on this
 *   device); one that would take the device's memory in use past max_total_bytes is ENOMEM
 *   (memory may come back). Both are checked before anything is allocated.
 * - Allocation: one physically contiguous run (contig_alloc 'strict': alloc_contig_pages()).
 *   If that fails, the device's fallback: `strict` fails with ENOMEM; `best-effort` takes the
 *   fewest, largest buddy blocks (contig_alloc 'best-effort'), ENOMEM only when memory is short;
 *   `hugetlb` takes free pages of the default huge page size from the hugetlb pool (surplus
 *   pages too, under nr_overcommit_hugepages) to cover the length rounded up to huge pages, all
 *   or nothing (ENOMEM), and charges the whole huge pages to the device.
 * - Each mapping gets its own buffer and its own struct file on the device's inode
 *   (alloc_file_clone() + vma_set_file()): the buffer lives exactly as long as a VMA refers to
 *   it — a partial munmap, an mremap move or a fork keeps it, closing the descriptor does not
 *   free it, the last VMA going does (f_op->release). Pages are zeroed, unmovable (not on the
 *   LRU; held hugetlb pages are not migratable), and never in anyone's RSS.
 * - The mapping must be MAP_SHARED at offset 0 (EINVAL otherwise): a private copy-on-write view of
 *   device memory has no use here. No ioctls (ENOTTY).
 *
 * Per-device state is in /sys/class/contig/contig<N>/ (src/fs/sysfs/contig_sysfs.ts).
 */
import { errnos } from '../lib/errno.ts';
import { type Hstate, pages_per_huge_page } from '../mm/hstate.ts';
import { alloc_hugetlb_folio, free_huge_folio } from '../mm/hugetlb.ts';
import { PAGE_SIZE } from '../mm/mmzone.ts';
import { __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import type { FileOperations, OpenFile, VmAreaDesc } from '../vm/files.ts';
import { remap_pfn_range } from '../vm/memory.ts';
import type { MmStruct } from '../vm/mm_struct.ts';
import type { FileTask } from '../vm/read_write.ts';
import type { Vm } from '../vm/vm.ts';
import { VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_MAYSHARE, VM_PFNMAP } from '../vm/vma.ts';
import { contig_alloc } from './contig_alloc.ts';

export const CONTIG_FALLBACKS = ['strict', 'best-effort', 'hugetlb'] as const;
export type ContigFallback = (typeof CONTIG_FALLBACKS)[number];

/** One /dev/contig<N> device as the machine configuration describes it (sizes in bytes). */
export interface ContigDeviceConfig {
  /** The node's name under /dev, `contig<N>`. */
  name: string;
  /** File permission bits of the node (0660 by default). */
  mode: number;
  uid: number;
  gid: number;
  /** Longest single mapping (EINVAL beyond it). */
  max_mapping_bytes: number;
  /** Memory the device may hold at once, all mappings together (ENOMEM beyond it). */
  max_total_bytes: number;
  /** What to do when no contiguous run of the size asked can be had. */
  fallback: ContigFallback;
}

/** How a buffer's pages were obtained (and so how they go back). */
const FROM_CONTIG = 0;
const FROM_HUGETLB = 1;

const EINVAL = -errnos.EINVAL;
const ENOMEM = -errnos.ENOMEM;

/**
 * One mapping's memory: a pfn per page offset, the struct file the VMAs hold. Its release (the
 * last VMA going) gives the pages back and uncharges the device.
 */
export class ContigDevBuffer implements FileOperations {
  readonly name: string;

  constructor(
    readonly dev: ContigDevice,
    /** Per page offset of the mapping, the page behind it. */
    readonly pfns: Int32Array,
    /** FROM_CONTIG: order-0 pages from contig_alloc(); FROM_HUGETLB: pool pages (heads in `huge`). */
    readonly source: number,
    /** Heads of the hugetlb pages (FROM_HUGETLB), in pfn order. */
    readonly huge: Int32Array,
    /** Bytes charged to the device (whole huge pages for a hugetlb buffer). */
    readonly bytes: number,
  ) {
    this.name = dev.name;
  }

  /** f_op->mmap: remap_pfn_range() of the whole buffer at the VMA (offset 0). */
  // kernel: mm/memory.c remap_pfn_range()
  mmap(mm: MmStruct, vma: number): number {
    const v = this.dev.vm.vmas;
    const nr = (v.vm_end[vma] - v.vm_start[vma]) / PAGE_SIZE;
    return remap_pfn_range(this.dev.vm, mm, vma, v.vm_start[vma], this.pfns, v.vm_pgoff[vma], nr);
  }

  /** f_op->release of the buffer's file: its last VMA went. */
  release(_file: OpenFile, cpu: number): void {
    this.dev.free_buffer(this, cpu);
  }
}

/**
 * The driver of one /dev/contig<N> node (its f_op): limits and counters live here, the buffers in
 * the struct files of their mappings.
 */
export class ContigDevice implements FileOperations {
  readonly name: string;
  /** Bytes of memory the device's live buffers hold. */
  in_use_bytes = 0;
  /** Live buffers. */
  buffers = 0;
  /** Successful mmaps, and those that got their memory from the fallback. */
  allocs = 0;
  fallback_allocs = 0;
  /** Refused mmaps: limits (EINVAL, ENOMEM) and allocation failures (ENOMEM). */
  failures = 0;
  refusal = '';
  max_mapping_bytes: number;
  max_total_bytes: number;
  fallback: ContigFallback;

  constructor(
    readonly vm: Vm,
    readonly config: Readonly<ContigDeviceConfig>,
  ) {
    this.name = config.name;
    this.max_mapping_bytes = config.max_mapping_bytes;
    this.max_total_bytes = config.max_total_bytes;
    this.fallback = config.fallback;
  }

  /** Create /dev/<name> with the configured owner and mode. */
  // kernel: drivers/base/core.c device_create() → devtmpfs_create_node()
  register(): void {
    const c = this.config;
    this.vm.files.mknod(`/dev/${c.name}`, c.mode, c.uid, c.gid, this);
  }

  /** f_op->mmap, before the VMA exists: check, allocate, and give the mapping its buffer's file. */
  mmap_prepare(task: FileTask, desc: VmAreaDesc): number {
    const len = desc.end - desc.start;
    if (!(desc.vm_flags & VM_MAYSHARE)) return this.refuse(EINVAL, 'only MAP_SHARED mappings');
    if (desc.pgoff !== 0) return this.refuse(EINVAL, 'the offset must be 0 (each mapping is a new buffer)');
    if (len > this.max_mapping_bytes)
      return this.refuse(EINVAL, `${len} bytes exceed max_mapping_bytes (${this.max_mapping_bytes})`);
    if (this.in_use_bytes + len > this.max_total_bytes)
      return this.refuse(
        ENOMEM,
        `${len} more bytes would exceed max_total_bytes (${this.max_total_bytes}; ${this.in_use_bytes} in use)`,
      );
    const buffer = this.alloc_buffer(len / PAGE_SIZE, task.mm.nid, task.mm.cpu);
    if (!buffer) {
      this.failures++;
      return ENOMEM;
    }
    this.allocs++;
    this.buffers++;
    this.in_use_bytes += buffer.bytes;
    // vma_set_file(): the VMA holds the buffer's own file; the device file's reference goes.
    const files = this.vm.files;
    const clone = files.alloc_file_clone(desc.file, buffer);
    files.fput(desc.file, task.mm.cpu);
    desc.file = clone;
    desc.vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
    return 0;
  }

  /** The buffer for `pages` pages: a contiguous run, else the device's fallback; null if none. */
  private alloc_buffer(pages: number, nid: number, cpu: number): ContigDevBuffer | null {
    const mm = this.vm.mm;
    const pfns = contig_alloc(mm, pages, 'strict', nid, cpu);
    if (pfns) return new ContigDevBuffer(this, pfns, FROM_CONTIG, new Int32Array(0), pages * PAGE_SIZE);
    if (this.fallback === 'best-effort') {
      const some = contig_alloc(mm, pages, 'best-effort', nid, cpu);
      if (!some) {
        this.refusal = 'out of memory (no contiguous run, and best effort found too few pages)';
        return null;
      }
      this.fallback_allocs++;
      return new ContigDevBuffer(this, some, FROM_CONTIG, new Int32Array(0), pages * PAGE_SIZE);
    }
    if (this.fallback === 'hugetlb') return this.alloc_hugetlb(pages, nid, cpu);
    this.refusal = `no ${pages} contiguous pages could be freed up (alloc_contig_pages)`;
    return null;
  }

  /**
   * The hugetlb fallback: enough default-size huge pages from the pool (alloc_hugetlb_folio()
   * without a reservation), all or nothing, laid out in pfn order and zeroed. Held pages are not
   * migratable (the kernel sets hugetlb_migratable only for pages in a hugetlb mapping).
   */
  private alloc_hugetlb(pages: number, nid: number, cpu: number): ContigDevBuffer | null {
    const mm = this.vm.mm;
    const h: Hstate | undefined = mm.hugetlb.hstates.length ? mm.hugetlb.default_hstate : undefined;
    if (!h) {
      this.refusal = 'no contiguous run, and no hugetlb page size to fall back to';
      return null;
    }
    const per = pages_per_huge_page(h);
    const n = Math.ceil(pages / per);
    if (this.in_use_bytes + n * per * PAGE_SIZE > this.max_total_bytes) {
      this.refusal = `the ${n} huge pages of the hugetlb fallback would exceed max_total_bytes`;
      return null;
    }
    const heads = new Int32Array(n);
    for (let k = 0; k < n; k++) {
      const pfn = alloc_hugetlb_folio(mm, h, true, nid);
      if (pfn < 0) {
        for (let j = 0; j < k; j++) free_huge_folio(mm, heads[j], cpu);
        this.refusal = `no contiguous run, and the hugetlb pool has fewer than ${n} free ${h.name} pages`;
        return null;
      }
      heads[k] = pfn;
    }
    heads.sort();
    const pfns = new Int32Array(pages);
    for (let i = 0; i < pages; i++) pfns[i] = heads[Math.floor(i / per)] + (i % per);
    for (let k = 0; k < n; k++) mm.hugetlb.isolated.add(heads[k]);
    // The pool's pages are not cleared on allocation: the driver zeroes them (folio_zero_user).
    mm.kernel_ns += n * per * mm.cost.clear_page;
    this.fallback_allocs++;
    return new ContigDevBuffer(this, pfns, FROM_HUGETLB, heads, n * per * PAGE_SIZE);
  }

  /** The buffer's last mapping went: its pages go back where they came from. */
  free_buffer(buffer: ContigDevBuffer, cpu: number): void {
    const mm = this.vm.mm;
    if (buffer.source === FROM_HUGETLB) {
      for (const head of buffer.huge) {
        mm.hugetlb.isolated.delete(head);
        free_huge_folio(mm, head, cpu);
      }
    } else {
      for (let i = 0; i < buffer.pfns.length; i++) __free_pages(mm, buffer.pfns[i], 0, cpu);
    }
    this.in_use_bytes -= buffer.bytes;
    this.buffers--;
  }

  private refuse(err: number, why: string): number {
    this.failures++;
    this.refusal = why;
    return err;
  }
}

/** Register every configured /dev/contig<N>; returns the drivers. */
export function contig_dev_init(vm: Vm, configs: readonly ContigDeviceConfig[]): ContigDevice[] {
  return configs.map((c) => {
    const dev = new ContigDevice(vm, c);
    dev.register();
    return dev;
  });
}
