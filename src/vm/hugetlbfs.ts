/**
 * hugetlbfs files (fs/hugetlbfs/inode.c) and memfd_create(MFD_HUGETLB) (mm/memfd.c): regular
 * files whose page cache holds huge pages from the hugetlb pool, one per huge page index.
 *
 * A hugetlbfs inode (on /dev/hugepages, another mount_hugetlbfs() mount, or the internal mount
 * of its page size for a memfd) gets, on first use, a shared hugetlb object (src/vm/hugetlb.ts):
 * its resv_map (the regions) and its page cache. The inode holds one reference to it and every
 * MAP_SHARED VMA of the file another; hugetlbfs_evict_inode() drops the inode's, freeing the
 * cached pages and the reservations left. A MAP_PRIVATE VMA has an object of its own (owning its
 * reservations, HPAGE_RESV_OWNER) that looks in the file's page cache first. i_size lives in the
 * inode's address_space, which never holds base pages.
 */
import { errnos } from '../lib/errno.ts';
import { type Hstate, pages_per_huge_page } from '../mm/hstate.ts';
import { PAGE_SIZE } from '../mm/mmzone.ts';
import type { FileCred, Inode } from './files.ts';
import {
  hugetlb_object_by_id,
  hugetlb_object_put,
  hugetlb_reserve_range,
  new_object,
  remove_inode_hugepages,
  unmap_hugepage_range,
} from './hugetlb.ts';
import type { MmStruct } from './mm_struct.ts';
import type { Vm } from './vm.ts';
import { VM_WRITE } from './vma.ts';

const EINVAL = -errnos.EINVAL;

/** is_file_hugepages(): the inode lives on a hugetlbfs mount. */
export function is_file_hugepages(inode: Inode): boolean {
  return inode.mount.fstype === 'hugetlbfs';
}

/** hstate_inode(): the huge page size of a hugetlbfs inode. */
export function hstate_inode(inode: Inode): Hstate {
  return inode.mount.hstate!;
}

/** huge_page_size(hstate_inode(inode)) in bytes. */
export function hugetlbfs_page_size(inode: Inode): number {
  return PAGE_SIZE * pages_per_huge_page(hstate_inode(inode));
}

/**
 * kernel: fs/hugetlbfs/inode.c hugetlbfs_get_inode() (resv_map_alloc()) and
 * hugetlbfs_evict_inode()
 * The object of a hugetlbfs inode, made on first use; the inode's eviction drops its reference.
 */
export function hugetlbfs_object(vm: Vm, inode: Inode): number {
  if (!inode.hugetlb_object)
    inode.hugetlb_object = new_object(vm, hstate_inode(inode), true, 0, inode.mapping, null);
  return inode.hugetlb_object;
}

/** kernel: fs/hugetlbfs/inode.c hugetlbfs_evict_inode(): the inode's object loses its reference. */
export function hugetlbfs_evict_inode(vm: Vm, inode: Inode, cpu: number): void {
  const obj = inode.hugetlb_object;
  if (!obj) return;
  inode.hugetlb_object = 0;
  hugetlb_object_put(vm, obj, cpu);
}

/** Huge pages a hugetlbfs inode holds in its page cache (0 without an object). */
export function hugetlbfs_nr_pages(vm: Vm, inode: Inode): number {
  const id = inode.hugetlb_object;
  const obj = id === 0 ? undefined : hugetlb_object_by_id(vm, id);
  let n = 0;
  if (obj) for (let i = 0; i < obj.pages.length; i++) if (obj.pages[i] >= 0) n++;
  return n;
}

/**
 * kernel: fs/hugetlbfs/inode.c hugetlbfs_file_mmap()
 * The file part of mmap() of a hugetlbfs file: the offset must be huge page aligned (-EINVAL);
 * the huge page indices of the VMA are reserved (hugetlb_reserve_pages(); -ENOMEM if the pool
 * cannot cover them); a writable mapping extends i_size to its end. Returns the VMA's
 * vm_private_data (the file's object for MAP_SHARED, a private one otherwise) or -errno.
 */
export function hugetlbfs_file_mmap(
  vm: Vm,
  mm: MmStruct,
  inode: Inode,
  offset: number,
  len: number,
  vm_flags: number,
): number {
  const h = hstate_inode(inode);
  const size = hugetlbfs_page_size(inode);
  if (offset % size) return EINVAL;
  const id = hugetlb_reserve_range(
    vm,
    mm,
    h,
    offset / size,
    (offset + len) / size,
    vm_flags,
    hugetlbfs_object(vm, inode),
  );
  if (id < 0) return id;
  if (vm_flags & VM_WRITE && inode.mapping.i_size < offset + len) inode.mapping.i_size = offset + len;
  return id;
}

/**
 * kernel: fs/hugetlbfs/inode.c hugetlbfs_setattr() → hugetlb_vmtruncate()
 * A new size (huge page aligned: else -EINVAL). Shrinking unmaps the pages past it from every
 * VMA of the file (hugetlb_vmdelete_list(): private copies too), then remove_inode_hugepages()
 * frees the cached ones and gives back the reservations of those indices. Returns 0 or -EINVAL.
 */
export function hugetlbfs_setattr_size(vm: Vm, inode: Inode, offset: number, cpu: number): number {
  const size = hugetlbfs_page_size(inode);
  if (offset % size) return EINVAL;
  inode.mapping.i_size = offset;
  const id = inode.hugetlb_object;
  const obj = id === 0 ? undefined : hugetlb_object_by_id(vm, id);
  if (!obj) return 0;
  const first = offset / size;
  const v = vm.vmas;
  for (const vma of [...(v.i_mmap.get(inode.mapping.id) ?? [])]) {
    const base = v.vm_start[vma] - v.vm_pgoff[vma] * PAGE_SIZE;
    const start = Math.max(v.vm_start[vma], base + first * size);
    const mm = vm.mms[v.vm_mm[vma]];
    if (mm && start < v.vm_end[vma] && v.vm_private_data[vma])
      unmap_hugepage_range(vm, mm, vma, start, v.vm_end[vma]);
  }
  remove_inode_hugepages(vm, obj, first, cpu);
  return 0;
}

/**
 * kernel: fs/hugetlbfs/inode.c hugetlbfs_read_iter()
 * Bytes a read of `len` at `pos` returns: up to i_size, holes reading as zeros. Each 4 KiB is
 * copied (copy_page); nothing is allocated.
 */
export function hugetlbfs_read(vm: Vm, inode: Inode, pos: number, len: number): number {
  const n = Math.max(0, Math.min(len, inode.mapping.i_size - pos));
  vm.mm.kernel_ns += Math.ceil(n / PAGE_SIZE) * vm.mm.cost.copy_page;
  return n;
}

/**
 * kernel: fs/hugetlbfs/inode.c hugetlb_file_setup(name, 0, VM_NORESERVE, HUGETLB_ANONHUGE_INODE,
 * page_size_log) for memfd_create(MFD_HUGETLB)
 * An unnamed file on the internal hugetlbfs mount of the size `page_size_log` selects (0: the
 * default); -ENODEV if no hstate has that size. Shown in maps as "/memfd:<name> (deleted)".
 */
export function hugetlb_file_setup(
  vm: Vm,
  cred: FileCred,
  cpu: number,
  label: string,
  page_size_log: number,
): Inode | number {
  const st = vm.mm.hugetlb;
  const h = page_size_log
    ? st.size_to_hstate(2 ** page_size_log)
    : st.hstates.length
      ? st.default_hstate
      : undefined;
  if (!h) return -errnos.ENODEV;
  return vm.files.create(null, vm.files.hugetlbfs_mount(h), 0o777, cred, cpu, label);
}
