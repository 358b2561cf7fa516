/**
 * The file syscalls (fs/open.c, fs/read_write.c, fs/namei.c, fs/sync.c, mm/fadvise.c,
 * mm/memfd.c) over the model's files (files.ts) and a process's descriptor table. Each returns
 * its result or throws a FileError carrying the errno Linux returns; the Process methods turn
 * that into an ErrnoError. No bytes move: a read reports how many bytes it would return.
 */
import { errnos } from '../lib/errno.ts';
import { filemap_read, generic_perform_write, shmem_file_read } from '../mm/file_rw.ts';
import { type AddressSpace, folio_end_writeback, folio_start_writeback } from '../mm/filemap.ts';
import { PAGE_SIZE } from '../mm/mmzone.ts';
import { wait_on_device, writeback_pages } from '../mm/page-writeback.ts';
import { force_page_cache_ra, VM_READAHEAD_PAGES } from '../mm/readahead.ts';
import { invalidate_mapping_pages, truncate_inode_pages } from '../mm/truncate.ts';
import { type FileCred, FileError, type Inode, normalize, type OpenFile } from './files.ts';
import {
  hugetlb_file_setup,
  hugetlbfs_read,
  hugetlbfs_setattr_size,
  is_file_hugepages,
} from './hugetlbfs.ts';
import { zap_page_range } from './memory.ts';
import type { MmStruct } from './mm_struct.ts';
import {
  MFD_ALLOW_SEALING,
  MFD_CLOEXEC,
  MFD_EXEC,
  MFD_HUGE_MASK,
  MFD_HUGE_SHIFT,
  MFD_HUGETLB,
  MFD_NOEXEC_SEAL,
  O_ACCMODE,
  O_CREAT,
  O_DIRECTORY,
  O_EXCL,
  O_PATH,
  O_RDONLY,
  O_RDWR,
  O_TMPFILE,
  O_TRUNC,
  O_WRONLY,
  POSIX_FADV_DONTNEED,
  POSIX_FADV_NOREUSE,
  POSIX_FADV_NORMAL,
  POSIX_FADV_RANDOM,
  POSIX_FADV_SEQUENTIAL,
  POSIX_FADV_WILLNEED,
  SEEK_CUR,
  SEEK_DATA,
  SEEK_END,
  SEEK_HOLE,
  SEEK_SET,
} from './uapi.ts';
import type { Vm } from './vm.ts';

function fail(code: keyof typeof errnos, why: string): never {
  throw new FileError(-errnos[code], why);
}

/** MAX_LFS_FILESIZE on 64-bit: the largest offset a file may reach. */
export const MAX_LFS_FILESIZE = Number.MAX_SAFE_INTEGER;

/** A process's descriptor table (struct files_struct): fd → open file. */
export class FdTable {
  readonly fds: Array<OpenFile | undefined> = [];

  /** The open file of `fd`, or EBADF. */
  get(fd: number): OpenFile {
    const file = Number.isInteger(fd) && fd >= 0 ? this.fds[fd] : undefined;
    if (!file) fail('EBADF', `fd ${fd} is not open`);
    return file;
  }

  /** get_unused_fd_flags(): the lowest free descriptor below `limit`, or EMFILE (RLIMIT_NOFILE). */
  unused(limit: number): number {
    let fd = 0;
    while (fd < this.fds.length && this.fds[fd]) fd++;
    if (fd >= limit) fail('EMFILE', `RLIMIT_NOFILE (${limit}) descriptors are open`);
    return fd;
  }

  /** The lowest free descriptor below `limit` now refers to `file` (or EMFILE). */
  install(file: OpenFile, limit: number): number {
    const fd = this.unused(limit);
    this.fds[fd] = file;
    return fd;
  }

  /** Every open descriptor, in order. */
  *entries(): IterableIterator<[number, OpenFile]> {
    for (let fd = 0; fd < this.fds.length; fd++) {
      const file = this.fds[fd];
      if (file) yield [fd, file];
    }
  }
}

/** Who calls, with which limits and where its memory comes from. */
export interface FileTask extends FileCred {
  readonly mm: MmStruct;
  readonly fdt: FdTable;
  /** RLIMIT_NOFILE (soft). */
  readonly nofile: number;
}

const READ = 4;
const WRITE = 2;

/**
 * kernel: fs/open.c do_sys_open() (get_unused_fd_flags, then path_openat → do_open → may_open,
 * handle_truncate)
 * Open (or with O_CREAT create, mode & ~umask 022) a regular file; returns the descriptor. A
 * full descriptor table fails (EMFILE) before the path is looked at, creating nothing. Access
 * mode 3 (O_ACCMODE) needs read and write permission and gives a descriptor that can do neither.
 * O_TRUNC empties an existing file whatever the access mode (Linux truncates O_RDONLY too).
 */
export function sys_open(vm: Vm, task: FileTask, path: string, flags: number, mode: number): number {
  if (!Number.isInteger(flags) || flags < 0) fail('EINVAL', 'flags must be a non-negative integer');
  if ((flags & O_TMPFILE) === O_TMPFILE || flags & O_PATH)
    fail('EOPNOTSUPP', 'O_TMPFILE and O_PATH are not modelled');
  if (flags & O_DIRECTORY) fail('ENOTDIR', `${path} is not a directory`);
  const acc = flags & O_ACCMODE;
  const name = normalize(path);
  task.fdt.unused(task.nofile);
  if (name === '/proc' || name.startsWith('/proc/') || name === '/sys' || name.startsWith('/sys/'))
    fail('ENOENT', `${name}: read /proc and /sys with machine.readFile()`);
  const files = vm.files;
  const mount = files.mount_of(name);
  if (mount.path === name) fail('EISDIR', `${name} is a mount point`);
  let inode = files.lookup(name);
  const existed = inode !== undefined;
  if (inode) {
    if (flags & O_CREAT && flags & O_EXCL) fail('EEXIST', `${name} exists`);
    // may_open() (skipped for the file this open created: FMODE_CREATED)
    const mask =
      (acc === O_WRONLY ? 0 : READ) | (acc === O_RDONLY ? 0 : WRITE) | (flags & O_TRUNC ? WRITE : 0);
    if (!files.permission(inode, mask, task)) fail('EACCES', `${name}: permission denied`);
  } else {
    if (!(flags & O_CREAT)) fail('ENOENT', `${name} does not exist`);
    if (!Number.isInteger(mode) || mode < 0) fail('EINVAL', 'mode must be a non-negative integer');
    inode = files.create(name, mount, mode & ~0o022, task, task.mm.cpu);
  }
  const file = files.open_file(inode, flags);
  // chrdev_open() → the driver's f_op->open (a device node has no O_TRUNC: may_open() drops it).
  const r = file.f_op?.open?.(file, task) ?? 0;
  if (r < 0) {
    files.fput(file, task.mm.cpu);
    throw new FileError(r, `${name}: the driver refused the open`);
  }
  let fd: number;
  try {
    fd = task.fdt.install(file, task.nofile);
  } catch (e) {
    files.fput(file, task.mm.cpu);
    throw e;
  }
  if (flags & O_TRUNC && existed && !inode.i_fop) do_truncate(vm, inode, 0, task.mm.cpu);
  return fd;
}

/** kernel: fs/open.c close_fd() */
export function sys_close(vm: Vm, task: FileTask, fd: number): void {
  const file = task.fdt.get(fd);
  task.fdt.fds[fd] = undefined;
  vm.files.fput(file, task.mm.cpu);
}

/** Close every descriptor (exit_files()). */
export function exit_files(vm: Vm, task: FileTask): void {
  for (const [fd] of task.fdt.entries()) sys_close(vm, task, fd);
}

/** A fork child's table: the same open files, each with one more reference (dup_fd()). */
export function dup_fd(vm: Vm, parent: FdTable): FdTable {
  const t = new FdTable();
  for (const [fd, file] of parent.entries()) {
    vm.files.get_file(file);
    t.fds[fd] = file;
  }
  return t;
}

/** Where a read or write of `file` by `task` allocates, and its readahead state. */
function io(task: FileTask, file: OpenFile, vm: Vm) {
  return { nid: task.mm.nid, cpu: task.mm.cpu, ra: file.ra, random: file.random, now: vm.mm.now() };
}

function check_len(len: number): void {
  if (!Number.isInteger(len) || len < 0) fail('EINVAL', 'count must be a non-negative integer');
}

/**
 * kernel: fs/read_write.c vfs_read() → filemap_read() / shmem_file_read_iter()
 * Read `len` bytes at `pos` (the file position if undefined, which then advances).
 */
export function sys_read(vm: Vm, task: FileTask, fd: number, len: number, pos?: number): number {
  const file = task.fdt.get(fd);
  if (!file.readable) fail('EBADF', `fd ${fd} is not open for reading`);
  // vfs_read(): no ->read or ->read_iter (the model's devices and dma-bufs have none).
  if (file.f_op) fail('EINVAL', `${file.f_op.name} files cannot be read`);
  check_len(len);
  if (pos !== undefined && (!Number.isInteger(pos) || pos < 0)) fail('EINVAL', 'offset must be non-negative');
  const at = pos ?? file.pos;
  const as = file.inode.mapping;
  const r = is_file_hugepages(file.inode)
    ? hugetlbfs_read(vm, file.inode, at, len)
    : file.inode.mount.sbinfo
      ? shmem_file_read(vm.mm, as, at, len)
      : filemap_read(vm.mm, as, at, len, io(task, file, vm));
  if (r < 0) fail('ENOMEM', 'out of memory reading the file');
  if (pos === undefined) file.pos += r;
  return r;
}

/**
 * kernel: fs/read_write.c vfs_write() → generic_perform_write()
 * Write `len` bytes at `pos` (the file position if undefined, which then advances). With
 * O_APPEND every write goes to the end of the file (IOCB_APPEND in generic_write_checks), a
 * pwrite() too: Linux ignores its offset (see pwrite(2), BUGS) and leaves the position alone.
 */
export function sys_write(vm: Vm, task: FileTask, fd: number, len: number, pos?: number): number {
  const file = task.fdt.get(fd);
  if (!file.writable) fail('EBADF', `fd ${fd} is not open for writing`);
  if (file.f_op) fail('EINVAL', `${file.f_op.name} files cannot be written`);
  // hugetlbfs has no write_iter: no FMODE_CAN_WRITE.
  if (is_file_hugepages(file.inode)) fail('EINVAL', 'hugetlbfs files cannot be written with write()');
  check_len(len);
  if (pos !== undefined && (!Number.isInteger(pos) || pos < 0)) fail('EINVAL', 'offset must be non-negative');
  const inode = file.inode;
  const at = file.append ? inode.mapping.i_size : (pos ?? file.pos);
  if (at + len > MAX_LFS_FILESIZE) fail('EFBIG', 'the write would pass the largest file size');
  const r = generic_perform_write(vm.mm, inode.mapping, inode.mount.sbinfo, at, len, io(task, file, vm));
  if (r === -errnos.ENOSPC) fail('ENOSPC', `the ${inode.mount.path} tmpfs is full`);
  if (r < 0) fail('ENOMEM', 'out of memory writing the file');
  if (pos === undefined) file.pos = at + r;
  return r;
}

/**
 * kernel: fs/read_write.c vfs_llseek() → generic_file_llseek() / shmem_file_llseek(): the new
 * position. SEEK_DATA and SEEK_HOLE find the next data and the next hole at or after `offset`
 * (ENXIO at or past the end): on tmpfs the holes are the pages never written or faulted in
 * (mapping_seek_hole_data); a disk file is all data (the model does not track its blocks: the
 * generic_file_llseek_size() answer).
 */
export function sys_lseek(task: FileTask, fd: number, offset: number, whence: number): number {
  const file = task.fdt.get(fd);
  if (!Number.isInteger(offset)) fail('EINVAL', 'offset must be an integer');
  // vfs_llseek(): a device without ->llseek is not seekable; a dma-buf has its own.
  if (file.f_op) {
    const r = file.f_op.llseek?.(file, offset, whence) ?? -errnos.ESPIPE;
    if (r < 0) throw new FileError(r, `${file.f_op.name}: lseek refused`);
    return r;
  }
  let base: number;
  if (whence === SEEK_SET) base = 0;
  else if (whence === SEEK_CUR) base = file.pos;
  else if (whence === SEEK_END) base = file.inode.mapping.i_size;
  else if (whence === SEEK_DATA || whence === SEEK_HOLE) {
    file.pos = seek_hole_data(file.inode.mapping, offset, whence === SEEK_DATA);
    return file.pos;
  } else fail('EINVAL', `whence ${whence} is not SEEK_SET, SEEK_CUR, SEEK_END, SEEK_DATA or SEEK_HOLE`);
  const pos = base + offset;
  if (pos < 0 || pos > MAX_LFS_FILESIZE) fail('EINVAL', 'the resulting offset is negative or too large');
  file.pos = pos;
  return pos;
}

/** SEEK_DATA / SEEK_HOLE from `offset` in `as` (see sys_lseek). */
function seek_hole_data(as: AddressSpace, offset: number, data: boolean): number {
  const size = as.i_size;
  if (offset < 0 || offset >= size) fail('ENXIO', 'offset at or past the end of the file');
  if (!as.shmem) return data ? offset : size;
  const last = Math.floor((size - 1) / PAGE_SIZE);
  for (let index = Math.floor(offset / PAGE_SIZE); index <= last; index++) {
    const present = as.i_pages.has(index);
    if (present === data) return Math.max(offset, index * PAGE_SIZE);
  }
  if (data) fail('ENXIO', 'no data after the offset');
  return size;
}

/**
 * kernel: mm/truncate.c truncate_pagecache() after truncate_setsize()
 * Shrinking unmaps the pages past the new end from every mapping (private COW copies too),
 * drops them from the page cache and returns their tmpfs blocks; growing only moves i_size.
 */
export function do_truncate(vm: Vm, inode: Inode, size: number, cpu: number): void {
  // hugetlbfs_setattr(): a size that is not a multiple of the huge page size is EINVAL.
  if (is_file_hugepages(inode)) {
    if (hugetlbfs_setattr_size(vm, inode, size, cpu) < 0)
      fail('EINVAL', 'hugetlbfs size is not a multiple of the huge page size');
    return;
  }
  const as = inode.mapping;
  const old = as.i_size;
  as.i_size = size;
  if (size >= old) return;
  const first = Math.ceil(size / PAGE_SIZE);
  unmap_mapping_pages(vm, as.id, first, Number.POSITIVE_INFINITY, true);
  truncate_inode_pages(vm.mm, as, first, cpu);
}

/**
 * kernel: mm/memory.c unmap_mapping_pages()
 * Zap the PTEs, in every VMA mapping the file, of file pages [first, last): with `even_cows`
 * (truncation) also the private copies made of them, else only the page-cache pages.
 */
export function unmap_mapping_pages(
  vm: Vm,
  mapping: number,
  first: number,
  last: number,
  even_cows: boolean,
): void {
  const v = vm.vmas;
  for (const vma of [...(v.i_mmap.get(mapping) ?? [])]) {
    const base = v.vm_start[vma] - v.vm_pgoff[vma] * PAGE_SIZE;
    const start = Math.max(v.vm_start[vma], base + first * PAGE_SIZE);
    const end = Math.min(v.vm_end[vma], base + last * PAGE_SIZE);
    if (start < end) zap_page_range(vm, vm.mms[v.vm_mm[vma]]!, vma, start, end, even_cows);
  }
}

/** kernel: fs/open.c do_sys_ftruncate(): EINVAL unless open for writing; EFBIG past the limit. */
export function sys_ftruncate(vm: Vm, task: FileTask, fd: number, length: number): void {
  const file = task.fdt.get(fd);
  if (!Number.isInteger(length) || length < 0) fail('EINVAL', 'length must be non-negative');
  if (!file.writable) fail('EINVAL', `fd ${fd} is not open for writing`);
  // do_ftruncate(): only a regular file.
  if (file.f_op) fail('EINVAL', `${file.f_op.name} files cannot be truncated`);
  if (length > MAX_LFS_FILESIZE) fail('EFBIG', 'length exceeds the largest file size');
  do_truncate(vm, file.inode, length, task.mm.cpu);
}

/**
 * kernel: fs/sync.c vfs_fsync() → file_write_and_wait_range()
 * Write back every dirty page of the file and wait for the writes (the caller's wait is not
 * simulated: the writes complete at once). tmpfs has nothing to write.
 */
export function sys_fsync(vm: Vm, task: FileTask, fd: number): void {
  const as = task.fdt.get(fd).inode.mapping;
  if (!as.bdi) return;
  const dirty = [...as.dirty_pages];
  for (const pfn of dirty) {
    folio_start_writeback(vm.mm, as, pfn);
    folio_end_writeback(vm.mm, pfn);
  }
  wait_on_device(vm.mm, as, dirty.length);
}

/**
 * kernel: mm/fadvise.c generic_fadvise()
 * RANDOM / SEQUENTIAL / NORMAL set the readahead mode; WILLNEED reads the range ahead;
 * DONTNEED starts writeback of the range's dirty pages and drops its clean unmapped pages.
 * `len` 0 means to the end of the file.
 */
export function sys_fadvise(
  vm: Vm,
  task: FileTask,
  fd: number,
  offset: number,
  len: number,
  advice: number,
): void {
  const file = task.fdt.get(fd);
  if (!Number.isInteger(offset) || !Number.isInteger(len) || len < 0) fail('EINVAL', 'bad offset or length');
  const as = file.inode.mapping;
  // tmpfs, hugetlbfs, devices and dma-bufs have no backing device (noop_backing_dev_info):
  // every valid advice is ignored.
  if (as.shmem || is_file_hugepages(file.inode) || file.f_op) {
    if (!Number.isInteger(advice) || advice < POSIX_FADV_NORMAL || advice > POSIX_FADV_NOREUSE)
      fail('EINVAL', `advice ${advice} is not a POSIX_FADV_* value`);
    return;
  }
  const end = len === 0 ? Number.POSITIVE_INFINITY : offset + len;
  switch (advice) {
    case POSIX_FADV_NORMAL:
      file.ra.ra_pages = file.inode.mapping.bdi?.ra_pages ?? VM_READAHEAD_PAGES;
      file.random = false;
      return;
    case POSIX_FADV_RANDOM:
      file.random = true;
      return;
    case POSIX_FADV_SEQUENTIAL:
      file.ra.ra_pages = (file.inode.mapping.bdi?.ra_pages ?? VM_READAHEAD_PAGES) * 2;
      file.random = false;
      return;
    case POSIX_FADV_WILLNEED: {
      if (file.inode.mount.sbinfo) return;
      const first = Math.floor(offset / PAGE_SIZE);
      const last = Math.min(Math.ceil(Math.min(end, as.i_size) / PAGE_SIZE), first + 512 * 1024);
      const ractl = { mm: vm.mm, mapping: as, ra: file.ra, nid: task.mm.nid, cpu: task.mm.cpu, nr_read: 0 };
      force_page_cache_ra(ractl, first, Math.max(0, last - first));
      return;
    }
    case POSIX_FADV_NOREUSE:
      file.noreuse = true;
      return;
    case POSIX_FADV_DONTNEED: {
      // Start writeback of the range's dirty pages (__filemap_fdatawrite_range, WB_SYNC_NONE),
      // then drop its clean pages: whole pages only, and the last one only if the range ends at a
      // page end or at the end of the file.
      const endbyte = end - 1; // inclusive
      if (as.bdi && as.nr_dirty)
        writeback_pages(
          vm.mm,
          as,
          as.nr_dirty,
          Math.floor(offset / PAGE_SIZE),
          Math.floor(endbyte / PAGE_SIZE) + 1,
        );
      const first = Math.floor((offset + PAGE_SIZE - 1) / PAGE_SIZE);
      let last = Math.floor(endbyte / PAGE_SIZE);
      if (
        end !== Number.POSITIVE_INFINITY &&
        endbyte % PAGE_SIZE !== PAGE_SIZE - 1 &&
        endbyte !== as.i_size - 1
      ) {
        if (last === 0) return;
        last--;
      }
      if (last >= first) invalidate_mapping_pages(vm.mm, as, task.mm.cpu, first, last + 1);
      return;
    }
    default:
      fail('EINVAL', `advice ${advice} is not a POSIX_FADV_* value`);
  }
}

/** kernel: fs/namei.c do_unlinkat() */
export function sys_unlink(vm: Vm, task: FileTask, path: string): void {
  const name = normalize(path);
  if (vm.files.mount_of(name).path === name) fail('EISDIR', `${name} is a mount point`);
  vm.files.unlink(name, task, task.mm.cpu);
}

const MFD_ALL_FLAGS = MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_HUGETLB | MFD_NOEXEC_SEAL | MFD_EXEC;

/**
 * kernel: mm/memfd.c memfd_create() (sanitize_flags(), alloc_file())
 * An anonymous tmpfs file (no size limit but memory), open O_RDWR; maps as "/memfd:<name>
 * (deleted)". With MFD_HUGETLB a hugetlbfs file of the size in bits 26..31 (MFD_HUGE_2MB,
 * MFD_HUGE_1GB; 0 for the default): those bits without MFD_HUGETLB, or any unknown flag, are
 * EINVAL; a size with no hstate is ENODEV (hugetlb_file_setup()).
 */
export function sys_memfd_create(vm: Vm, task: FileTask, name: string, flags: number): number {
  const allowed = flags & MFD_HUGETLB ? MFD_ALL_FLAGS | (MFD_HUGE_MASK << MFD_HUGE_SHIFT) : MFD_ALL_FLAGS;
  if (!Number.isInteger(flags) || flags < 0 || flags >= 2 ** 32 || flags & ~allowed)
    fail('EINVAL', 'unknown memfd flags');
  if (flags & MFD_EXEC && flags & MFD_NOEXEC_SEAL) fail('EINVAL', 'MFD_EXEC and MFD_NOEXEC_SEAL together');
  if (name.length > 249) fail('EINVAL', 'name longer than 249 bytes');
  task.fdt.unused(task.nofile);
  let inode: Inode;
  if (flags & MFD_HUGETLB) {
    const r = hugetlb_file_setup(
      vm,
      task,
      task.mm.cpu,
      `/memfd:${name}`,
      (flags >>> MFD_HUGE_SHIFT) & MFD_HUGE_MASK,
    );
    if (typeof r === 'number') fail('ENODEV', 'no hugetlb page size of that MFD_HUGE_ value');
    inode = r;
  } else inode = vm.files.create(null, vm.files.shm_mount, 0o777, task, task.mm.cpu, `/memfd:${name}`);
  const file = vm.files.open_file(inode, O_RDWR);
  try {
    return task.fdt.install(file, task.nofile);
  } catch (e) {
    vm.files.fput(file, task.mm.cpu);
    throw e;
  }
}
