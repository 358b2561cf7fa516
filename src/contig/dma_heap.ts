/**
 * dma-buf heaps (drivers/dma-buf/dma-heap.c, heaps/system_heap.c, heaps/cma_heap.c): user space
 * opens /dev/dma_heap/<heap> and asks for a buffer with DMA_HEAP_IOCTL_ALLOC; it gets a dma-buf
 * file descriptor, which it can mmap, pass to devices, and close. The buffer is freed when the
 * dma-buf file's last reference goes: its descriptors (in every process that has it) and the
 * VMAs mapping it.
 *
 * - `system` (always): the buffer is made of the largest blocks to be had, orders 8, 4 and 0
 *   (1 MiB, 64 KiB, 4 KiB, sizes IOMMUs like), never a larger one after a smaller one; orders 8
 *   and 4 try once without reclaim or compaction (HIGH_ORDER_GFP), order 0 is an ordinary user
 *   allocation (LOW_ORDER_GFP). Blocks are compound pages, zeroed, unmovable. mmap maps them at
 *   once with remap_pfn_range(), page by page from the mapping's offset.
 * - `default_cma_region`, and the legacy name of the default CMA area (`reserved`: cma=)
 *   when the machine has one (CONFIG_DMABUF_HEAPS_CMA_LEGACY): one cma_alloc() of the whole
 *   length, aligned to min(get_order(len), CONFIG_CMA_ALIGNMENT = 8), zeroed. mmap needs
 *   MAP_SHARED (EINVAL) and maps nothing: each page is inserted by the fault handler
 *   (vmf_insert_pfn()).
 *
 * Both mappings are VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP with special PTEs. One
 * departure: the system heap refuses MAP_PRIVATE (EINVAL); 6.18 would map a one-page private
 * mapping and copy it on write (and refuses larger ones: remap_pfn_range() of part of a
 * copy-on-write VMA is EINVAL).
 *
 * The nodes are owned by root, mode 0600 (devtmpfs's default: dma_heap_devnode() sets no mode)
 * unless the machine configuration says otherwise (udev or ueventd rules).
 */
import { errnos } from '../lib/errno.ts';
import { type Cma, cma_alloc, cma_by_name, cma_release } from '../mm/cma.ts';
import {
  __GFP_COMP,
  __GFP_NORETRY,
  __GFP_NOWARN,
  __GFP_RECLAIM,
  __GFP_ZERO,
  GFP_HIGHUSER,
} from '../mm/gfp.ts';
import { get_order, PAGE_SIZE } from '../mm/mmzone.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import type { FileOperations, OpenFile, VmAreaDesc } from '../vm/files.ts';
import { remap_pfn_range, VM_FAULT_OK, VM_FAULT_SIGBUS, vmf_insert_pfn } from '../vm/memory.ts';
import type { MmStruct } from '../vm/mm_struct.ts';
import type { FileTask } from '../vm/read_write.ts';
import {
  _IOC_NR,
  DMA_BUF_IOCTL_SYNC,
  DMA_BUF_SYNC_RW,
  DMA_BUF_SYNC_VALID_FLAGS_MASK,
  DMA_HEAP_IOCTL_ALLOC,
  DMA_HEAP_VALID_FD_FLAGS,
  DMA_HEAP_VALID_HEAP_FLAGS,
  type DmaHeapAllocationData,
  O_ACCMODE,
  SEEK_END,
  SEEK_SET,
} from '../vm/uapi.ts';
import type { Vm } from '../vm/vm.ts';
import { VM_DONTDUMP, VM_DONTEXPAND, VM_IO, VM_MAYSHARE, VM_PFNMAP, VM_SHARED } from '../vm/vma.ts';

const EINVAL = -errnos.EINVAL;
const ENOMEM = -errnos.ENOMEM;
const EFAULT = -errnos.EFAULT;
const ENOTTY = -errnos.ENOTTY;

/** system_heap.c: orders[] = {8, 4, 0}, with order_flags[] = {HIGH, HIGH, LOW}. */
export const SYSTEM_HEAP_ORDERS = [8, 4, 0] as const;
/** LOW_ORDER_GFP: GFP_HIGHUSER | __GFP_ZERO. */
export const LOW_ORDER_GFP = GFP_HIGHUSER | __GFP_ZERO;
/** HIGH_ORDER_GFP: one try, no reclaim or compaction, no warning, a compound page. */
export const HIGH_ORDER_GFP =
  ((GFP_HIGHUSER | __GFP_ZERO | __GFP_NOWARN | __GFP_NORETRY) & ~__GFP_RECLAIM) | __GFP_COMP;
/** CONFIG_CMA_ALIGNMENT (kernel/dma/Kconfig, default 8). */
export const CONFIG_CMA_ALIGNMENT = 8;
/** cma_heap.c DEFAULT_CMA_NAME */
export const DEFAULT_CMA_NAME = 'default_cma_region';

/** Owner and mode of the /dev/dma_heap/* nodes. */
export interface DmaHeapNodeConfig {
  mode: number;
  uid: number;
  gid: number;
}

/** A heap: the f_op of its /dev/dma_heap/<name> node, and the allocator behind it. */
export class DmaHeap implements FileOperations {
  refusal = '';
  /** Live buffers and their bytes. */
  buffers = 0;
  bytes = 0;

  constructor(
    readonly vm: Vm,
    /** The heap's name (its node is /dev/dma_heap/<name>). */
    readonly name: string,
    /** The CMA area of a CMA heap; null for the system heap. */
    readonly cma: Cma | null,
  ) {}

  /**
   * kernel: drivers/dma-buf/dma-heap.c dma_heap_ioctl() → dma_heap_ioctl_allocate()
   * Only _IOC_NR 0 exists (any other is EINVAL, never ENOTTY: the handler maps the number to its
   * one command); the struct must be there (EFAULT), `fd` 0 and the flags valid (EINVAL), the
   * length non-zero once page aligned (EINVAL). On success `arg.fd` is the new dma-buf.
   */
  ioctl(task: FileTask, _file: OpenFile, request: number, arg: unknown): number {
    if (_IOC_NR(request) >= 1)
      return this.refuse(EINVAL, `ioctl number ${_IOC_NR(request)} is not DMA_HEAP_IOCTL_ALLOC`);
    // Number 0 under another direction or size: the struct arrives zeroed or cut short, so
    // its length reads 0 (EINVAL).
    if (request !== DMA_HEAP_IOCTL_ALLOC)
      return this.refuse(EINVAL, 'not DMA_HEAP_IOCTL_ALLOC: the struct arrives without its length');
    if (typeof arg !== 'object' || arg === null)
      return this.refuse(EFAULT, 'no struct dma_heap_allocation_data');
    const data = arg as DmaHeapAllocationData;
    const fd = data.fd ?? 0;
    const fd_flags = data.fd_flags ?? 0;
    const heap_flags = data.heap_flags ?? 0;
    const len = data.len;
    if (![fd, fd_flags, heap_flags, len].every((x) => Number.isInteger(x) && x >= 0))
      return this.refuse(EINVAL, 'fields must be non-negative integers');
    if (fd) return this.refuse(EINVAL, 'fd must be 0 on the way in');
    if (fd_flags & ~DMA_HEAP_VALID_FD_FLAGS)
      return this.refuse(EINVAL, 'fd_flags other than O_CLOEXEC | O_ACCMODE');
    if (heap_flags & ~DMA_HEAP_VALID_HEAP_FLAGS) return this.refuse(EINVAL, 'no heap flags are defined');
    // dma_heap_buffer_alloc(): PAGE_ALIGN(len), and 0 is EINVAL.
    const size = Math.ceil(len / PAGE_SIZE) * PAGE_SIZE;
    if (!size) return this.refuse(EINVAL, 'len is 0');
    const buf = this.cma ? this.cma_heap_allocate(task, size) : this.system_heap_allocate(task, size);
    if (!buf) return this.refuse(ENOMEM, this.refusal);
    // dma_buf_export() + dma_buf_fd(): an anon-inode file, its descriptor the lowest free.
    const files = this.vm.files;
    const file = files.alloc_file_pseudo('/dmabuf:', size, fd_flags & O_ACCMODE, task, task.mm.cpu, buf);
    this.buffers++;
    this.bytes += size;
    let newfd: number;
    try {
      newfd = task.fdt.install(file, task.nofile);
    } catch {
      files.fput(file, task.mm.cpu); // dma_buf_put(): the release frees the buffer
      return this.refuse(-errnos.EMFILE, 'RLIMIT_NOFILE descriptors are open');
    }
    data.fd = newfd;
    return 0;
  }

  /**
   * kernel: drivers/dma-buf/heaps/system_heap.c system_heap_allocate() / alloc_largest_available()
   * Blocks of order 8, 4, 0, the largest that fits what is left and is not above the previous
   * one; null (ENOMEM) when not even an order-0 page can be had, everything given back.
   */
  private system_heap_allocate(task: FileTask, size: number): DmaBuf | null {
    const mm = this.vm.mm;
    const heads: number[] = [];
    const orders: number[] = [];
    let remaining = size;
    let max_order: number = SYSTEM_HEAP_ORDERS[0];
    while (remaining > 0) {
      let got = -1;
      let order = 0;
      for (const o of SYSTEM_HEAP_ORDERS) {
        if (remaining < PAGE_SIZE << o || max_order < o) continue;
        got = __alloc_pages(mm, o ? HIGH_ORDER_GFP : LOW_ORDER_GFP, o, task.mm.nid, task.mm.cpu);
        if (got >= 0) {
          order = o;
          break;
        }
      }
      if (got < 0) {
        for (let k = 0; k < heads.length; k++) __free_pages(mm, heads[k], orders[k], task.mm.cpu);
        this.refusal = `out of memory after ${size - remaining} of ${size} bytes`;
        return null;
      }
      heads.push(got);
      orders.push(order);
      remaining -= PAGE_SIZE << order;
      max_order = order;
    }
    const pfns = new Int32Array(size / PAGE_SIZE);
    let i = 0;
    for (let k = 0; k < heads.length; k++) for (let p = 0; p < 1 << orders[k]; p++) pfns[i++] = heads[k] + p;
    return new DmaBuf(this, pfns, Int32Array.from(heads), Uint8Array.from(orders));
  }

  /**
   * kernel: drivers/dma-buf/heaps/cma_heap.c cma_heap_allocate()
   * One cma_alloc() of the page count, aligned to min(get_order(size), CONFIG_CMA_ALIGNMENT),
   * then cleared (memset); null (ENOMEM) if the area cannot give it.
   */
  private cma_heap_allocate(task: FileTask, size: number): DmaBuf | null {
    const mm = this.vm.mm;
    const pagecount = size / PAGE_SIZE;
    const align = Math.min(get_order(size), CONFIG_CMA_ALIGNMENT);
    const pfn = cma_alloc(mm, this.cma, pagecount, align, false, { cpu: task.mm.cpu });
    if (pfn < 0) {
      this.refusal = `CMA area ${this.cma!.name} has no ${pagecount} free pages aligned to ${2 ** align}`;
      return null;
    }
    mm.kernel_ns += pagecount * mm.cost.clear_page;
    const pfns = new Int32Array(pagecount);
    for (let i = 0; i < pagecount; i++) pfns[i] = pfn + i;
    return new DmaBuf(this, pfns, Int32Array.of(pfn), new Uint8Array(0));
  }

  /** The dma-buf's release: its memory goes back to the heap's allocator. */
  free(buf: DmaBuf, cpu: number): void {
    const mm = this.vm.mm;
    if (this.cma) cma_release(mm, this.cma, buf.heads[0], buf.pfns.length, cpu);
    else for (let k = 0; k < buf.heads.length; k++) __free_pages(mm, buf.heads[k], buf.orders[k], cpu);
    this.buffers--;
    this.bytes -= buf.pfns.length * PAGE_SIZE;
  }

  private refuse(err: number, why: string): number {
    this.refusal = why;
    return err;
  }
}

/**
 * A dma-buf (struct dma_buf with its heap's buffer): the f_op and private data of its file.
 * Released, with its memory, at the file's last reference.
 */
export class DmaBuf implements FileOperations {
  readonly name = 'dma-buf';
  refusal = '';

  constructor(
    readonly heap: DmaHeap,
    /** Per page offset, the page behind it. */
    readonly pfns: Int32Array,
    /** The blocks: system heap compound heads and their orders; a CMA buffer's first pfn. */
    readonly heads: Int32Array,
    readonly orders: Uint8Array,
  ) {}

  /**
   * kernel: drivers/dma-buf/dma-buf.c dma_buf_mmap_internal() → ops->mmap
   * The mapping must lie inside the buffer (EINVAL). The CMA heap wants MAP_SHARED (EINVAL);
   * so does the model's system heap (see the file comment).
   */
  mmap_prepare(_task: FileTask, desc: VmAreaDesc): number {
    const pages = (desc.end - desc.start) / PAGE_SIZE;
    if (desc.pgoff + pages > this.pfns.length) return this.refuse(EINVAL, 'the mapping runs past the buffer');
    if (!(desc.vm_flags & (VM_SHARED | VM_MAYSHARE)))
      return this.refuse(EINVAL, `${this.heap.name} heap buffers are mapped MAP_SHARED only`);
    desc.vm_flags |= VM_IO | VM_PFNMAP | VM_DONTEXPAND | VM_DONTDUMP;
    return 0;
  }

  /** kernel: drivers/dma-buf/heaps/system_heap.c system_heap_mmap(): remap_pfn_range() page by page. */
  mmap(mm: MmStruct, vma: number): number {
    if (this.heap.cma) return 0; // cma_heap_mmap(): pages come at fault time
    const vm = this.heap.vm;
    const v = vm.vmas;
    let addr = v.vm_start[vma];
    for (let idx = v.vm_pgoff[vma]; addr < v.vm_end[vma]; idx++, addr += PAGE_SIZE) {
      const r = remap_pfn_range(vm, mm, vma, addr, this.pfns, idx, 1);
      if (r < 0) return r;
    }
    return 0;
  }

  /** kernel: drivers/dma-buf/heaps/cma_heap.c cma_heap_vm_fault(): vmf_insert_pfn(), SIGBUS past the end. */
  fault(mm: MmStruct, vma: number, addr: number, _write: boolean): number {
    const vm = this.heap.vm;
    if (!this.heap.cma) return VM_FAULT_SIGBUS; // system heap: no vm_ops->fault
    const pgoff = vm.vmas.linear_page_index(vma, addr);
    if (pgoff >= this.pfns.length) return VM_FAULT_SIGBUS;
    const r = vmf_insert_pfn(vm, mm, vma, addr, this.pfns[pgoff]);
    return r === VM_FAULT_OK ? VM_FAULT_OK : r;
  }

  /**
   * kernel: drivers/dma-buf/dma-buf.c dma_buf_ioctl(): DMA_BUF_IOCTL_SYNC with `{ flags }`
   * (EFAULT without it, EINVAL for unknown flags or no direction; cache maintenance is free in
   * the model); anything else ENOTTY.
   */
  ioctl(_task: FileTask, _file: OpenFile, request: number, arg: unknown): number {
    if (request !== DMA_BUF_IOCTL_SYNC)
      return this.refuse(ENOTTY, `no dma-buf ioctl 0x${request.toString(16)}`);
    if (typeof arg !== 'object' || arg === null) return this.refuse(EFAULT, 'no struct dma_buf_sync');
    const flags = (arg as { flags?: number }).flags ?? 0;
    if (!Number.isInteger(flags) || flags < 0 || flags & ~DMA_BUF_SYNC_VALID_FLAGS_MASK)
      return this.refuse(EINVAL, 'unknown DMA_BUF_SYNC_* flags');
    if (!(flags & DMA_BUF_SYNC_RW)) return this.refuse(EINVAL, 'neither DMA_BUF_SYNC_READ nor _WRITE');
    return 0;
  }

  /** kernel: drivers/dma-buf/dma-buf.c dma_buf_llseek(): offset 0 with SEEK_SET or SEEK_END (the size). */
  llseek(_file: OpenFile, offset: number, whence: number): number {
    if (offset !== 0) return EINVAL;
    if (whence === SEEK_END) return this.pfns.length * PAGE_SIZE;
    if (whence === SEEK_SET) return 0;
    return EINVAL;
  }

  /** kernel: drivers/dma-buf/dma-buf.c dma_buf_release() → ops->release: the memory goes. */
  release(_file: OpenFile, cpu: number): void {
    this.heap.free(this, cpu);
  }

  private refuse(err: number, why: string): number {
    this.refusal = why;
    return err;
  }
}

/**
 * kernel: drivers/dma-buf/heaps/system_heap.c system_heap_create() and cma_heap.c
 * add_default_cma_heap(): the system heap, and for the default CMA area (cma=, "reserved") a heap
 * named default_cma_region plus its legacy name; each gets /dev/dma_heap/<name>.
 */
export function dma_heap_init(vm: Vm, node: DmaHeapNodeConfig): DmaHeap[] {
  const heaps = [new DmaHeap(vm, 'system', null)];
  const cma = vm.mm.config.CMA ? cma_by_name(vm.mm, 'reserved') : undefined;
  if (cma) {
    heaps.push(new DmaHeap(vm, DEFAULT_CMA_NAME, cma));
    if (cma.name !== DEFAULT_CMA_NAME) heaps.push(new DmaHeap(vm, cma.name, cma));
  }
  for (const h of heaps) vm.files.mknod(`/dev/dma_heap/${h.name}`, node.mode, node.uid, node.gid, h);
  return heaps;
}
