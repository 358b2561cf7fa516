/**
 * A process as user space sees it: credentials, resource limits, a CPU, and an address space,
 * with the memory syscalls. Arguments are checked as Linux checks them and failures throw an
 * ErrnoError carrying the errno the syscall would return; touching memory runs page faults and
 * throws a FaultError where the process would get SIGSEGV or be killed for lack of memory.
 */

import { type ErrnoCode, ErrnoError, errnos } from '../lib/errno.ts';
import { type Hstate, pages_per_huge_page } from '../mm/hstate.ts';
import { PAGE_SIZE as PAGE } from '../mm/mmzone.ts';
import { FileError, shmem_zero_setup, type VmAreaDesc } from './files.ts';
import { dup_mmap } from './fork.ts';
import { FOLL_FORCE, FOLL_LONGTERM, FOLL_WRITE, pin_user_pages, unpin_user_pages } from './gup.ts';
import { huge_pmd_entry } from './huge_memory.ts';
import {
  hugetlb_get_unmapped_area,
  hugetlb_leaf_allows,
  hugetlb_mmap_abort,
  hugetlb_reserve_pages,
} from './hugetlb.ts';
import { hstate_inode, hugetlbfs_file_mmap, is_file_hugepages } from './hugetlbfs.ts';
import { sys_madvise } from './madvise.ts';
import { handle_mm_fault, VM_FAULT_OK, VM_FAULT_SIGBUS, walk_pte_table } from './memory.ts';
import { can_do_mlock, do_mlock, sys_mlock2, sys_mlockall, sys_munlock, sys_munlockall } from './mlock.ts';
import type { MmStruct } from './mm_struct.ts';
import {
  __mmap_prepare,
  count_vma_pages_range,
  do_munmap,
  exit_mmap,
  get_unmapped_area,
  may_expand_vm,
  mlock_future_ok,
  mmap_region,
  PMD_SIZE,
  populate_vma_page_range,
  range_is_free,
  sys_brk,
  type TaskContext,
  thp_get_unmapped_area,
} from './mmap.ts';
import { sys_mprotect } from './mprotect.ts';
import { sys_mremap } from './mremap.ts';
import { OOM_SCORE_ADJ_MAX, OOM_SCORE_ADJ_MIN, type OomTask } from './oom_kill.ts';
import {
  _PAGE_ACCESSED,
  _PAGE_DIRTY,
  _PAGE_PRESENT,
  _PAGE_RW,
  PTRS_PER_TABLE,
  pte_index,
} from './pgtable.ts';
import {
  dup_fd,
  exit_files,
  FdTable,
  type FileTask,
  sys_close,
  sys_fadvise,
  sys_fsync,
  sys_ftruncate,
  sys_lseek,
  sys_memfd_create,
  sys_open,
  sys_read,
  sys_unlink,
  sys_write,
} from './read_write.ts';
import {
  CAP_DAC_OVERRIDE,
  CAP_FOWNER,
  CAP_IPC_LOCK,
  CAP_SYS_ADMIN,
  CAP_SYS_RAWIO,
  CAP_SYS_RESOURCE,
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_CONTIG_BEST_EFFORT,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
  MAP_HUGE_MASK,
  MAP_HUGE_SHIFT,
  MAP_HUGETLB,
  MAP_KNOWN_FLAGS,
  MAP_LOCKED,
  MAP_NONBLOCK,
  MAP_NORESERVE,
  MAP_POPULATE,
  MAP_PRIVATE,
  MAP_SHARED,
  MAP_SHARED_VALIDATE,
  MAP_TYPE,
  O_RDONLY,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
  RLIM_NLIMITS,
  RLIMIT_AS,
  RLIMIT_DATA,
  RLIMIT_MEMLOCK,
  RLIMIT_NOFILE,
} from './uapi.ts';
import { OVERCOMMIT_NEVER, security_vm_enough_memory_mm, vm_unacct_memory } from './util.ts';
import type { Vm } from './vm.ts';
import {
  VM_ACCOUNT,
  VM_CONTIG,
  VM_DONTCOPY,
  VM_DONTEXPAND,
  VM_EXEC,
  VM_HUGETLB,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYSHARE,
  VM_MAYWRITE,
  VM_NOHUGEPAGE,
  VM_NORESERVE,
  VM_READ,
  VM_SHARED,
  VM_WRITE,
} from './vma.ts';

export const RLIM_INFINITY = Number.POSITIVE_INFINITY;

/**
 * Resource limits in bytes (RLIM_INFINITY = Infinity), one set of soft limits (rlim_cur, what the
 * kernel enforces) and one of hard limits (rlim_max, the ceiling an unprivileged process may raise
 * its soft limit to). Defaults are the kernel's INIT_RLIMITS.
 */
export interface Rlimits {
  /** RLIMIT_AS, bytes. */
  as: number;
  /** RLIMIT_MEMLOCK, bytes (MLOCK_LIMIT: 8 MiB by default). */
  memlock: number;
  /** RLIMIT_DATA, bytes: private writable mappings and the heap. */
  data: number;
  /** RLIMIT_NOFILE: descriptors (not bytes); 1024 soft, 4096 hard by default (INR_OPEN_CUR/MAX). */
  nofile: number;
}

export interface SpawnOptions {
  /** The command name (comm) shown in kernel log lines; 'proc' by default. */
  name?: string;
  /** /proc/<pid>/oom_score_adj: -1000 (never killed) .. 1000. */
  oom_score_adj?: number;
  uid?: number;
  gid?: number;
  /** Capability numbers held (CAP_IPC_LOCK, …); root (uid 0) holds all by default. */
  caps?: number[];
  /** Limits set both soft and hard (as a shell's `ulimit -l N` does). */
  rlimits?: Partial<Rlimits>;
  /** Hard limits, where they should differ from `rlimits` (at least the soft limit). */
  rlimits_max?: Partial<Rlimits>;
  cpu?: number;
  nid?: number;
}

/**
 * What a process gets instead of a page: SIGSEGV (no mapping, or not allowed), SIGBUS (a file
 * page past the end of the file, or a full tmpfs) or an OOM kill.
 */
export class FaultError extends Error {
  constructor(
    readonly signal: 'SIGSEGV' | 'SIGBUS' | 'SIGKILL',
    /** SEGV_MAPERR (no VMA), SEGV_ACCERR (protection), BUS_ADRERR (no page), or 'oom'. */
    readonly code: 'SEGV_MAPERR' | 'SEGV_ACCERR' | 'BUS_ADRERR' | 'oom',
    readonly address: number,
  ) {
    super(`${signal} (${code}) at 0x${address.toString(16)}`);
    this.name = 'FaultError';
  }
}

/** An RDMA memory registration (struct ib_umem): the pinned pages, one pfn per page. */
export interface Umem {
  readonly pages: readonly number[];
  released: boolean;
}

/**
 * The machine's process table, as fork() reaches it: an object with a method, not a callback, so
 * a cloned machine's processes fork into the clone's table.
 */
export interface ProcessSpawner {
  /** Register the child whose address space `mm` builds (a copy of the parent's). */
  spawn(parent: Process, mm: (cpu: number, nid: number) => MmStruct | null): Process;
}

/** A process's entry in vm.tasks, what the OOM killer sees of it. */
class ProcessOomTask implements OomTask {
  readonly pid: number;
  readonly comm: string;
  readonly uid: number;
  readonly cap_sys_admin: boolean;

  constructor(
    readonly process: Process,
    readonly oom_score_adj: number,
  ) {
    this.pid = process.pid;
    this.comm = process.name;
    this.uid = process.uid;
    this.cap_sys_admin = process.caps.has(CAP_SYS_ADMIN);
  }

  kill(): void {
    this.process.oom_kill();
  }
}

export class Process implements TaskContext, FileTask {
  /** Live RDMA registrations (ib_umem_get), released at exit. */
  private readonly umems = new Set<Umem>();
  /** Open file descriptors (a fork child gets a copy sharing the open files). */
  fdt = new FdTable();
  readonly uid: number;
  readonly gid: number;
  readonly caps: ReadonlySet<number>;
  /** Soft limits (rlim_cur); setrlimit() changes them. */
  readonly rlimits: Rlimits;
  /** Hard limits (rlim_max). */
  readonly rlimits_max: Rlimits;
  readonly cpu: number;
  readonly nid: number;
  exited = false;
  /** Time this process has spent in the kernel, ns: its syscalls and faults, waits included. */
  kernel_ns = 0;
  /** SIGKILLed by the OOM killer while its own fault was running; dies when that fault unwinds. */
  private killed = false;
  readonly name: string;
  /** What a fork() child inherits. */
  readonly options: SpawnOptions;

  constructor(
    private readonly vm: Vm,
    readonly pid: number,
    readonly mm: MmStruct,
    opts: SpawnOptions,
    /** Registers a new process (the machine's process table); used by fork(). */
    private readonly spawner: ProcessSpawner,
  ) {
    this.uid = opts.uid ?? 0;
    this.gid = opts.gid ?? 0;
    this.caps = new Set(
      opts.caps ??
        (this.uid === 0
          ? [CAP_DAC_OVERRIDE, CAP_FOWNER, CAP_IPC_LOCK, CAP_SYS_ADMIN, CAP_SYS_RAWIO, CAP_SYS_RESOURCE]
          : []),
    );
    this.rlimits = {
      as: RLIM_INFINITY,
      memlock: 8 * 2 ** 20,
      data: RLIM_INFINITY,
      nofile: 1024,
      ...opts.rlimits,
    };
    this.rlimits_max = {
      ...this.rlimits,
      ...(opts.rlimits?.nofile ? {} : { nofile: 4096 }),
      ...opts.rlimits_max,
    };
    for (const k of Object.keys(this.rlimits) as Array<keyof Rlimits>) {
      if (!(this.rlimits[k] <= this.rlimits_max[k]))
        throw new ErrnoError('EINVAL', 'setrlimit', undefined, `soft ${k} limit above the hard limit`);
    }
    this.name = opts.name ?? 'proc';
    const oom_score_adj = opts.oom_score_adj ?? 0;
    if (
      !Number.isInteger(oom_score_adj) ||
      oom_score_adj < OOM_SCORE_ADJ_MIN ||
      oom_score_adj > OOM_SCORE_ADJ_MAX
    ) {
      throw new ErrnoError('EINVAL', 'oom_score_adj', undefined, `${oom_score_adj} is outside -1000..1000`);
    }
    vm.tasks[mm.id] = new ProcessOomTask(this, oom_score_adj);
    this.options = {
      name: this.name,
      oom_score_adj,
      uid: this.uid,
      gid: this.gid,
      caps: [...this.caps],
      rlimits: { ...this.rlimits },
      rlimits_max: { ...this.rlimits_max },
      cpu: mm.cpu,
      nid: mm.nid,
    };
    this.cpu = mm.cpu;
    this.nid = mm.nid;
  }

  /**
   * SIGKILL from the OOM killer: the process dies now, or, if its own fault or syscall is
   * running (it is current), when that unwinds.
   */
  oom_kill(): void {
    if (this.vm.current === this.mm.id) this.killed = true;
    else this.exit();
  }

  capable(cap: number): boolean {
    return this.caps.has(cap);
  }

  /**
   * mmap(2): map anonymous memory (private, or MAP_SHARED: shared memory on the internal
   * tmpfs, as shmem_zero_setup() makes it) or `fd` at `offset` (MAP_PRIVATE: copy-on-write;
   * MAP_SHARED: writes go to the page cache). Returns the address.
   */
  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    this.alive('mmap');
    return this.syscall(() => this.mmap_pgoff(addr, length, prot, flags, fd, offset));
  }

  /** ksys_mmap_pgoff(): mmap(2)'s checks and work, as this task. */
  private mmap_pgoff(
    addr: number,
    length: number,
    prot: number,
    flags: number,
    fd: number,
    offset: number,
  ): number {
    const vm = this.vm;
    const mm = this.mm;
    const fail = (code: keyof typeof errnos, why: string): never => {
      throw new ErrnoError(code, 'mmap', undefined, why);
    };
    if (!isWhole(addr) || !isWhole(length) || !isWhole(offset))
      fail('EINVAL', 'arguments must be non-negative integers');
    if (!length) fail('EINVAL', 'length is 0');
    const type = flags & MAP_TYPE;
    if (type !== MAP_SHARED && type !== MAP_PRIVATE && type !== MAP_SHARED_VALIDATE)
      fail('EINVAL', 'neither MAP_SHARED nor MAP_PRIVATE');
    // MAP_CONTIG exists only under a policy (src/contig/); otherwise it is an unknown flag.
    const contig = flags & MAP_CONTIG ? vm.map_contig : null;
    const best_effort =
      contig !== null && contig.name !== 'rfc-poc' && (flags & MAP_CONTIG_BEST_EFFORT) !== 0;
    const known = MAP_KNOWN_FLAGS | (contig ? MAP_CONTIG : 0) | (best_effort ? MAP_CONTIG_BEST_EFFORT : 0);
    if (type === MAP_SHARED_VALIDATE && flags & ~known)
      fail('EOPNOTSUPP', 'unknown flags with MAP_SHARED_VALIDATE');
    if (contig) {
      // The RFC POC (3/3): anonymous only; populated and locked at mmap, never expanded.
      if (!(flags & MAP_ANONYMOUS)) fail('EINVAL', 'MAP_CONTIG without MAP_ANONYMOUS');
      if (type !== MAP_PRIVATE)
        fail('EINVAL', 'MAP_CONTIG with MAP_SHARED (the POC only backs private faults)');
      flags |= MAP_POPULATE | MAP_LOCKED;
    }
    if (offset % PAGE) fail('EINVAL', 'offset is not page aligned');
    if (flags & MAP_GROWSDOWN) fail('EINVAL', 'MAP_GROWSDOWN is not supported by this model');
    const file = flags & MAP_ANONYMOUS ? null : (this.fdt.fds[fd] ?? fail('EBADF', `fd ${fd} is not open`));
    const hugetlbfs = file !== null && is_file_hugepages(file.inode);
    if (file && !hugetlbfs && flags & MAP_HUGETLB) fail('EINVAL', 'MAP_HUGETLB on a file not on hugetlbfs');
    // hstate_sizelog(): MAP_HUGE_2MB/MAP_HUGE_1GB in bits 26..31, else the default size; a
    // hugetlbfs file's own size (is_file_hugepages(), MAP_HUGE_* bits ignored).
    let hs: Hstate | undefined;
    if (file && hugetlbfs) hs = hstate_inode(file.inode);
    else if (flags & MAP_HUGETLB) {
      const log = (flags >>> MAP_HUGE_SHIFT) & MAP_HUGE_MASK;
      hs = log ? vm.mm.hugetlb.size_to_hstate(2 ** log) : vm.mm.hugetlb.default_hstate;
      if (!hs) fail('EINVAL', 'no hugetlb page size of that MAP_HUGE_ value');
    }
    const hsize = hs ? PAGE * pages_per_huge_page(hs) : PAGE;
    if (file && offset / PAGE + Math.ceil(length / PAGE) > 2 ** 52)
      fail('EOVERFLOW', 'offset + length overflows the file offset');
    // A hugetlb length is rounded up to the huge page size (ALIGN(len, huge_page_size(hs))).
    const len = Math.ceil(length / hsize) * hsize;
    if (len > mm.task_size) fail('ENOMEM', 'length exceeds the address space');
    if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;
    if (flags & MAP_FIXED) {
      if (addr % PAGE) fail('EINVAL', 'MAP_FIXED address is not page aligned');
      if (addr % hsize) fail('EINVAL', 'MAP_FIXED address is not huge page aligned');
      if (addr + len > mm.task_size) fail('ENOMEM', 'range exceeds the address space');
      if (addr < vm.sysctl.mmap_min_addr && !this.capable(CAP_SYS_RAWIO))
        fail('EPERM', 'address below vm.mmap_min_addr');
      if (flags & MAP_FIXED_NOREPLACE && !range_is_free(mm, addr, len))
        fail('EEXIST', 'MAP_FIXED_NOREPLACE range is mapped');
    }
    let vm_flags = VM_MAYREAD | VM_MAYWRITE | VM_MAYEXEC | mm.def_flags;
    if (prot & PROT_READ) vm_flags |= VM_READ;
    if (prot & PROT_WRITE) vm_flags |= VM_WRITE;
    if (prot & PROT_EXEC) vm_flags |= VM_EXEC;
    if (flags & MAP_LOCKED) vm_flags |= VM_LOCKED;
    // No THP either: the pages are the ones allocated here.
    // The POC's VM_DONTEXPAND is VM_SPECIAL, which unlocks it; a policy that holds its pages
    // keeps VM_LOCKED, and VM_CONTIG alone refuses growth and merging.
    if (contig) vm_flags |= VM_CONTIG | VM_NOHUGEPAGE | (contig.holds_pages ? 0 : VM_DONTEXPAND);
    if (contig?.dontfork) vm_flags |= VM_DONTCOPY;
    // MAP_NORESERVE is honoured unless vm.overcommit_memory is 2 (do_mmap()); an accountable
    // mapping becomes VM_ACCOUNT in __mmap_prepare().
    if (flags & MAP_NORESERVE && vm.sysctl.overcommit_memory !== OVERCOMMIT_NEVER) vm_flags |= VM_NORESERVE;
    // hugetlb applies strict overcommit unless MAP_NORESERVE; hugetlbfs_file_mmap() adds the rest.
    if (hs) vm_flags |= VM_HUGETLB | VM_DONTEXPAND | (flags & MAP_NORESERVE ? VM_NORESERVE : 0);
    if (flags & MAP_LOCKED && !can_do_mlock(this)) fail('EPERM', 'MAP_LOCKED with RLIMIT_MEMLOCK 0');
    if (!mlock_future_ok(mm, vm_flags, len, this)) fail('EAGAIN', 'RLIMIT_MEMLOCK exceeded');
    let pgoff = 0;
    if (file) {
      if (type !== MAP_PRIVATE) {
        if (prot & PROT_WRITE && !file.writable)
          fail('EACCES', 'MAP_SHARED with PROT_WRITE of a file not open for writing');
        vm_flags |= VM_SHARED | VM_MAYSHARE;
        if (!file.writable) vm_flags &= ~(VM_MAYWRITE | VM_SHARED);
      }
      if (!file.readable) fail('EACCES', 'the file is not open for reading');
      pgoff = offset / PAGE;
    } else if (type !== MAP_PRIVATE) {
      vm_flags |= VM_SHARED | VM_MAYSHARE;
    }
    // may_expand_vm(): RLIMIT_AS and RLIMIT_DATA, counting what a MAP_FIXED mapping replaces as freed.
    const replaced = flags & MAP_FIXED ? count_vma_pages_range(mm, addr, addr + len) : 0;
    if (!may_expand_vm(mm, vm_flags, len / PAGE - replaced, this))
      fail('ENOMEM', 'RLIMIT_AS or RLIMIT_DATA exceeded');
    // do_mmap(): only past the limit (measured on 6.18.44: at map_count == max one more succeeds).
    if (mm.map_count > vm.sysctl.max_map_count) fail('ENOMEM', 'vm.max_map_count exceeded');
    let start = addr;
    if (!(flags & MAP_FIXED)) {
      // __get_unmapped_area(): hugetlb aligns to its page size; a private anonymous mapping
      // asked without a hint, a whole number of PMDs long, is THP-aligned.
      if (hs) start = hugetlb_get_unmapped_area(vm, mm, addr, len, hsize);
      else if (
        !file &&
        type === MAP_PRIVATE &&
        !addr &&
        vm.mm.config.TRANSPARENT_HUGEPAGE &&
        len % PMD_SIZE === 0
      )
        start = thp_get_unmapped_area(vm, mm, len);
      else start = get_unmapped_area(vm, mm, addr, len);
      if (start < 0) fail('ENOMEM', 'no free range of that size');
    }
    // shmem_zero_setup()'s shmem_acct_size(): shared anonymous memory without VM_NORESERVE is
    // charged for its whole size. Checked before anything is replaced: 6.18 puts a MAP_FIXED
    // victim back when this fails.
    const shm_acct = !file && !hs && type !== MAP_PRIVATE && !(vm_flags & VM_NORESERVE) ? len / PAGE : 0;
    if (shm_acct && security_vm_enough_memory_mm(vm, mm, this, shm_acct) < 0)
      fail('ENOMEM', 'commit refused for shared memory (vm.overcommit_memory)');
    // hugetlb_reserve_pages(): the pool must cover the whole mapping unless MAP_NORESERVE;
    // hugetlbfs_file_mmap() wants a huge page aligned offset first.
    const hobj = !hs
      ? 0
      : file
        ? hugetlbfs_file_mmap(vm, mm, file.inode, offset, len, vm_flags)
        : hugetlb_reserve_pages(vm, mm, hs, len, vm_flags);
    if (hobj === -errnos.EINVAL) fail('EINVAL', 'offset is not a multiple of the huge page size');
    if (hobj < 0)
      fail('ENOMEM', 'not enough free hugetlb pages to reserve (nr_hugepages, nr_overcommit_hugepages)');
    // A device or dma-buf file: the driver's f_op->mmap (ENODEV without one) checks and
    // allocates before anything is replaced; the VMA holds the struct file it names.
    let vma_file = file;
    if (file?.f_op) {
      const f_op = file.f_op;
      if (!f_op.mmap_prepare) fail('ENODEV', `${f_op.name} files cannot be mapped`);
      vm.files.get_file(file);
      const desc: VmAreaDesc = { start, end: start + len, pgoff, vm_flags, file };
      const r = f_op.mmap_prepare!(this, desc);
      if (r < 0) {
        vm.files.fput(desc.file, mm.cpu);
        fail(ERRNO_CODES.get(r) ?? 'EINVAL', f_op.refusal || `${f_op.name}: mmap refused`);
      }
      vm_flags = desc.vm_flags;
      vma_file = desc.file;
    }
    // The commit charge, then (MAP_FIXED) unmapping what the new mapping replaces.
    const setup = __mmap_prepare(vm, mm, this, start, len, vm_flags, (flags & MAP_FIXED) !== 0);
    if (setup < 0) {
      if (shm_acct) vm_unacct_memory(vm, shm_acct);
      if (hs) hugetlb_mmap_abort(vm, mm, hobj);
      if (vma_file?.f_op) vm.files.fput(vma_file, mm.cpu);
      fail('ENOMEM', 'commit refused (vm.overcommit_memory), or vm.max_map_count reached');
    }
    vm_flags = setup;
    if (vma_file?.f_op) {
      const vma = mmap_region(vm, mm, start, len, vm_flags, pgoff, vma_file.id);
      // f_op->mmap's PTEs (remap_pfn_range()); a failure unmaps the VMA (mmap_region()'s
      // unmap_and_free_vma), which drops the driver's file.
      const r = vma_file.f_op.mmap?.(mm, vma) ?? 0;
      if (r < 0) {
        do_munmap(vm, mm, start, start + len);
        fail(ERRNO_CODES.get(r) ?? 'ENOMEM', `${vma_file.f_op.name}: out of memory for page tables`);
      }
      // VM_IO | VM_PFNMAP mappings are never populated (__mm_populate() skips them).
      return start;
    }
    // __alloc_vma_contig_range() (RFC POC 3/3): the pages, before the VMA is linked.
    const backing = contig ? contig.alloc(mm, this, len / PAGE, best_effort) : 0;
    if (typeof backing === 'number' && backing < 0) {
      if (vm_flags & VM_ACCOUNT) vm_unacct_memory(vm, len / PAGE);
      fail(ERRNO_CODES.get(backing) ?? 'ENOMEM', `MAP_CONTIG (${contig!.name}): ${contig!.refusal}`);
    }
    if (file) vm.files.get_file(file);
    const vma = file
      ? mmap_region(vm, mm, start, len, vm_flags, pgoff, file.id)
      : mmap_region(vm, mm, start, len, vm_flags, type === MAP_PRIVATE && !hs && !contig ? start / PAGE : 0);
    if (hs) vm.vmas.vm_private_data[vma] = hobj;
    else if (typeof backing === 'object') {
      vm.vmas.vm_private_data[vma] = vm.contig_backings.length;
      vm.contig_backings.push(backing);
    } else if (!file && type !== MAP_PRIVATE) shmem_zero_setup(vm, this, vma, len, shm_acct);
    // mm_populate() for MAP_POPULATE (unless MAP_NONBLOCK) and for locked mappings.
    if ((flags & (MAP_POPULATE | MAP_NONBLOCK)) === MAP_POPULATE || vm_flags & VM_LOCKED) {
      populate_vma_page_range(vm, mm, vma, start, start + len);
    }
    return start;
  }

  /** munmap(2) */
  munmap(addr: number, length: number): void {
    this.alive('munmap');
    if (!isWhole(addr) || !isWhole(length) || addr % PAGE)
      throw new ErrnoError('EINVAL', 'munmap', undefined, 'address is not page aligned');
    if (!length) throw new ErrnoError('EINVAL', 'munmap', undefined, 'length is 0');
    const len = Math.ceil(length / PAGE) * PAGE;
    if (addr + len > this.mm.task_size)
      throw new ErrnoError('EINVAL', 'munmap', undefined, 'range exceeds the address space');
    const r = this.syscall(() => do_munmap(this.vm, this.mm, addr, addr + len));
    if (r === -errnos.EINVAL)
      throw new ErrnoError('EINVAL', 'munmap', undefined, 'splits a hugetlb mapping off its huge page size');
    if (r < 0) throw new ErrnoError('ENOMEM', 'munmap', undefined, 'vm.max_map_count reached');
  }

  // The memory syscalls of mm/mprotect.c, mm/mlock.c, mm/madvise.c, mm/mremap.c and brk(), and
  // the resource limits they obey. Arguments are unsigned longs: non-negative integers below
  // 2^64, else EINVAL. The work and the errnos are the kernel functions'; see those files.

  /** mprotect(2): set the protection of [addr, addr + length) (addr page aligned) to `prot`. */
  mprotect(addr: number, length: number, prot: number): void {
    this.ulongs('mprotect', addr, length, prot);
    const r = this.syscall(() => sys_mprotect(this.vm, this.mm, this, addr, length, prot));
    if (r < 0)
      throw syscall_error('mprotect', r, {
        EINVAL: 'unaligned address, bad prot bits, or PROT_GROWSDOWN/PROT_GROWSUP',
        ENOMEM: 'range not fully mapped, vm.max_map_count reached, RLIMIT_DATA exceeded, or commit refused',
      });
  }

  /** mlock(2): lock [addr, addr + length) (rounded out to pages) in memory, faulting it in. */
  mlock(addr: number, length: number): void {
    this.ulongs('mlock', addr, length);
    const r = this.syscall(() => do_mlock(this.vm, this.mm, this, addr, length, VM_LOCKED));
    if (r < 0) throw syscall_error('mlock', r, MLOCK_ERRORS);
  }

  /** mlock2(2): mlock(), or with MLOCK_ONFAULT only the pages present and faulted in later. */
  mlock2(addr: number, length: number, flags = 0): void {
    this.ulongs('mlock2', addr, length, flags);
    const r = this.syscall(() => sys_mlock2(this.vm, this.mm, this, addr, length, flags));
    if (r < 0) throw syscall_error('mlock2', r, { ...MLOCK_ERRORS, EINVAL: 'unknown flags or range wraps' });
  }

  /** munlock(2): unlock [addr, addr + length) (rounded out to pages). */
  munlock(addr: number, length: number): void {
    this.ulongs('munlock', addr, length);
    const r = this.syscall(() => sys_munlock(this.vm, this.mm, addr, length));
    if (r < 0) throw syscall_error('munlock', r, MLOCK_ERRORS);
  }

  /** mlockall(2): MCL_CURRENT locks every mapping, MCL_FUTURE every later one (MCL_ONFAULT: on fault). */
  mlockall(flags: number): void {
    this.ulongs('mlockall', flags);
    const r = this.syscall(() => sys_mlockall(this.vm, this.mm, this, flags));
    if (r < 0)
      throw syscall_error('mlockall', r, {
        EINVAL: 'no flags, unknown flags, or MCL_ONFAULT alone',
        ENOMEM: 'MCL_CURRENT with the address space larger than RLIMIT_MEMLOCK',
        EPERM: 'RLIMIT_MEMLOCK is 0 and no CAP_IPC_LOCK',
      });
  }

  /** munlockall(2): unlock every mapping and cancel MCL_FUTURE. */
  munlockall(): void {
    this.alive('munlockall');
    this.syscall(() => sys_munlockall(this.vm, this.mm));
  }

  /** madvise(2): give `advice` (MADV_*) for [addr, addr + length) (addr page aligned). */
  madvise(addr: number, length: number, advice: number): void {
    this.ulongs('madvise', addr, length, advice);
    const r = this.syscall(() => sys_madvise(this.vm, this.mm, this, addr, length, advice));
    if (r < 0)
      throw syscall_error('madvise', r, {
        EINVAL: 'unknown advice, unaligned address, or advice not allowed on the mapping (VM_LOCKED, …)',
        ENOMEM: 'range not fully mapped, or out of memory',
        EAGAIN: 'vm.max_map_count reached',
        EPERM: 'needs CAP_SYS_ADMIN',
        ENOSYS: 'advice not modelled (KSM, MADV_COLLAPSE, guard regions, memory-failure injection)',
      });
  }

  /**
   * mremap(2): resize the mapping at oldAddress to newSize, moving it if MREMAP_MAYMOVE allows
   * (to newAddress with MREMAP_FIXED; leaving the old range mapped with MREMAP_DONTUNMAP).
   * Returns the (new) address.
   */
  mremap(oldAddress: number, oldSize: number, newSize: number, flags = 0, newAddress = 0): number {
    this.ulongs('mremap', oldAddress, oldSize, newSize, flags, newAddress);
    const r = this.syscall(() =>
      sys_mremap(this.vm, this.mm, this, oldAddress, oldSize, newSize, flags, newAddress),
    );
    if (r < 0)
      throw syscall_error('mremap', r, {
        EINVAL: 'bad flags, sizes or alignment, overlapping ranges, or old size 0',
        EFAULT: 'old range not mapped by one VMA, or the mapping may not grow',
        ENOMEM: 'cannot grow in place without MREMAP_MAYMOVE, no room, a limit reached, or commit refused',
        EAGAIN: 'RLIMIT_MEMLOCK exceeded',
        EPERM: 'MREMAP_FIXED below vm.mmap_min_addr',
      });
    return r;
  }

  /**
   * brk(2) as the system call: move the end of the heap to `addr` and return the new end, or the
   * current end when the request is refused (brk(0) asks for it). The heap starts at
   * mm.start_brk (DEFAULT_START_BRK).
   */
  brk(addr: number): number {
    this.ulongs('brk', addr);
    return this.syscall(() => sys_brk(this.vm, this.mm, addr, this));
  }

  /** getrlimit(2) for RLIMIT_AS, RLIMIT_DATA and RLIMIT_MEMLOCK (bytes; Infinity = RLIM_INFINITY). */
  getrlimit(resource: number): { rlim_cur: number; rlim_max: number } {
    this.alive('getrlimit');
    const key = rlimit_key('getrlimit', resource);
    return { rlim_cur: this.rlimits[key], rlim_max: this.rlimits_max[key] };
  }

  /**
   * setrlimit(2): EINVAL for an unknown resource or a soft limit above the hard one; EPERM for
   * raising the hard limit without CAP_SYS_RESOURCE. A fork() child inherits the new limits.
   */
  setrlimit(resource: number, rlim: { rlim_cur: number; rlim_max: number }): void {
    this.alive('setrlimit');
    const key = rlimit_key('setrlimit', resource);
    const { rlim_cur, rlim_max } = rlim;
    if (!isRlim(rlim_cur) || !isRlim(rlim_max))
      throw new ErrnoError(
        'EINVAL',
        'setrlimit',
        undefined,
        'limits must be non-negative integers or RLIM_INFINITY',
      );
    if (rlim_cur > rlim_max)
      throw new ErrnoError('EINVAL', 'setrlimit', undefined, 'soft limit above the hard limit');
    if (rlim_max > this.rlimits_max[key] && !this.capable(CAP_SYS_RESOURCE))
      throw new ErrnoError('EPERM', 'setrlimit', undefined, 'raising the hard limit needs CAP_SYS_RESOURCE');
    this.rlimits[key] = rlim_cur;
    this.rlimits_max[key] = rlim_max;
    this.options.rlimits = { ...this.rlimits };
    this.options.rlimits_max = { ...this.rlimits_max };
  }

  /** rlimit(): the soft limit of an RLIMIT_* resource, bytes (Infinity for those not modelled). */
  rlimit(resource: number): number {
    const key = RLIMIT_KEYS[resource];
    return key ? this.rlimits[key] : RLIM_INFINITY;
  }

  /** rlimit_max(): the hard limit of an RLIMIT_* resource. */
  rlimit_max(resource: number): number {
    const key = RLIMIT_KEYS[resource];
    return key ? this.rlimits_max[key] : RLIM_INFINITY;
  }

  /** Run a syscall as this task (see asCurrent) and return its result. */
  private syscall<T>(fn: () => T): T {
    let r: T | undefined;
    this.asCurrent(() => {
      r = fn();
    });
    return r as T;
  }

  /** The process is alive and every argument is an unsigned long. */
  private ulongs(syscall: string, ...args: number[]): void {
    this.alive(syscall);
    for (const x of args) {
      if (!Number.isInteger(x) || x < 0 || x >= 2 ** 64)
        throw new ErrnoError('EINVAL', syscall, undefined, 'arguments must be integers in 0 .. 2^64 - 1');
    }
  }

  /**
   * Access [addr, addr + length) page by page, as loads (or stores with `write`) would, taking a
   * page fault wherever the PTE does not already allow the access. Returns the faults taken.
   */
  touch(addr: number, length: number, opts: { write?: boolean } = {}): number {
    this.alive('touch');
    const write = opts.write ?? false;
    const vm = this.vm;
    const mm = this.mm;
    const v = vm.vmas;
    let faults = 0;
    const end = addr + length;
    const kmm = vm.mm;
    this.asCurrent(() => {
      for (let page = addr - (addr % PAGE); page < end; page += PAGE) {
        const vma = mm.mt.walk(page);
        if (vma < 0) throw new FaultError('SIGSEGV', 'SEGV_MAPERR', Math.max(page, addr));
        const f = v.vm_flags[vma];
        if (write ? !(f & VM_WRITE) : !(f & (VM_READ | VM_WRITE | VM_EXEC)))
          throw new FaultError('SIGSEGV', 'SEGV_ACCERR', Math.max(page, addr));
        if (f & VM_HUGETLB ? hugetlb_leaf_allows(vm, mm, vma, page, write) : pte_allows(vm, mm, page, write))
          continue;
        faults++;
        kmm.kernel_ns += kmm.cost.fault_exception;
        const r = handle_mm_fault(vm, mm, vma, page, write);
        if (r === VM_FAULT_SIGBUS) throw new FaultError('SIGBUS', 'BUS_ADRERR', Math.max(page, addr));
        if (r !== VM_FAULT_OK || this.killed) throw new FaultError('SIGKILL', 'oom', page);
      }
    }, 0);
    return faults;
  }

  /**
   * fork(2): a child with a copy-on-write copy of this address space (less VM_DONTCOPY
   * mappings), the same credentials and limits, on the same CPU.
   */
  fork(): Process {
    this.alive('fork');
    const child = this.syscall(() =>
      this.spawner.spawn(this, (cpu, nid) => dup_mmap(this.vm, this.mm, cpu, nid, this)),
    );
    child.fdt = dup_fd(this.vm, this.fdt);
    return child;
  }

  /**
   * exit(2): the address space goes away and every page it alone mapped is freed; its files
   * are closed (a file with no name, descriptor or mapping left frees its page cache).
   */
  exit(): void {
    if (this.exited) return;
    this.vm.tasks[this.mm.id] = undefined;
    for (const umem of [...this.umems]) this.ib_umem_release(umem);
    exit_mmap(this.vm, this.mm);
    exit_files(this.vm, this);
    this.exited = true;
  }

  /**
   * pin_user_pages(2)-style pinning as a driver does it for this process: pin the pages of
   * [addr, addr + length) (rounded out to pages), faulting them in, and return their pfns (one
   * per page; unpin with unpin_user_pages()). FOLL_WRITE pins for writing, FOLL_LONGTERM (RDMA,
   * VFIO) first migrates pages out of ZONE_MOVABLE and CMA. The pins belong to the caller: they
   * outlive munmap() and exit(), keeping the pages allocated. Throws EFAULT for a hole or a
   * mapping that may not be pinned, ENOMEM when memory runs out.
   */
  pin_user_pages(addr: number, length: number, gup_flags = 0): number[] {
    this.ulongs('pin_user_pages', addr, length, gup_flags);
    const start = addr - (addr % PAGE);
    const nr = Math.ceil((addr + length) / PAGE) - start / PAGE;
    const pages: number[] = [];
    const r = this.syscall(() => pin_user_pages(this.vm, this.mm, start, nr, gup_flags, pages));
    if (r < 0)
      throw syscall_error('pin_user_pages', r, {
        EFAULT: 'range not fully mapped, or a mapping that may not be pinned',
        ENOMEM: 'out of memory, or long-term pin migration failed',
      });
    return pages;
  }

  /** unpin_user_pages(): drop the pins pin_user_pages() returned. */
  unpin_user_pages(pages: readonly number[]): void {
    unpin_user_pages(this.vm, pages, this.cpu);
  }

  /**
   * ib_umem_get() (RDMA memory registration, drivers/infiniband/core/umem.c): count the pages
   * in pinned_vm against RLIMIT_MEMLOCK (ENOMEM past it without CAP_IPC_LOCK), then pin them
   * FOLL_LONGTERM (FOLL_WRITE when `writable`, else FOLL_FORCE). Released by ib_umem_release()
   * or when the process exits (its RDMA device file closes).
   */
  ib_umem_get(addr: number, length: number, writable: boolean): Umem {
    this.ulongs('ib_umem_get', addr, length);
    const npages = Math.ceil((addr + length) / PAGE) - Math.floor(addr / PAGE);
    if (!length || npages > 0xffffffff)
      throw new ErrnoError('EINVAL', 'ib_umem_get', undefined, 'empty range');
    const lock_limit = Math.floor(this.rlimits.memlock / PAGE);
    if (this.mm.pinned_vm + npages > lock_limit && !this.capable(CAP_IPC_LOCK))
      throw new ErrnoError('ENOMEM', 'ib_umem_get', undefined, 'RLIMIT_MEMLOCK exceeded (pinned_vm)');
    this.mm.pinned_vm += npages;
    try {
      const flags = FOLL_LONGTERM | (writable ? FOLL_WRITE : FOLL_FORCE);
      const umem = { pages: this.pin_user_pages(addr, length, flags), released: false };
      this.umems.add(umem);
      return umem;
    } catch (e) {
      this.mm.pinned_vm -= npages;
      throw e;
    }
  }

  /** ib_umem_release(): unpin the registration's pages and give back its pinned_vm. */
  ib_umem_release(umem: Umem): void {
    if (umem.released || !this.umems.delete(umem)) return;
    umem.released = true;
    unpin_user_pages(this.vm, umem.pages, this.cpu);
    this.mm.pinned_vm -= umem.pages.length;
  }

  /** RLIMIT_NOFILE (soft): descriptors this process may hold. */
  get nofile(): number {
    return this.rlimits.nofile;
  }

  // The file syscalls of read_write.ts. Files hold no data: reads and writes report byte counts
  // and move pages in and out of the page cache. Errors throw ErrnoError with Linux's errno.

  /**
   * open(2): open `path` with O_RDONLY / O_WRONLY / O_RDWR, creating it with O_CREAT (mode &
   * ~022), failing with O_EXCL if it exists, emptying it with O_TRUNC. Returns the descriptor.
   * Paths under /dev/shm and /run are tmpfs; everything else is on the disk.
   */
  open(path: string, flags = O_RDONLY, mode = 0o666): number {
    return this.file_syscall('open', () => sys_open(this.vm, this, path, flags, mode), path);
  }

  /** close(2) */
  close(fd: number): void {
    this.file_syscall('close', () => sys_close(this.vm, this, fd));
  }

  /** read(2): bytes read at the file position (0 at end of file), which advances. */
  read(fd: number, count: number): number {
    return this.file_syscall('read', () => sys_read(this.vm, this, fd, count));
  }

  /** pread(2): bytes read at `offset`; the file position stays. */
  pread(fd: number, count: number, offset: number): number {
    return this.file_syscall('pread64', () => sys_read(this.vm, this, fd, count, offset));
  }

  /** write(2): bytes written at the file position (the end with O_APPEND), which advances. */
  write(fd: number, count: number): number {
    return this.file_syscall('write', () => sys_write(this.vm, this, fd, count));
  }

  /** pwrite(2): bytes written at `offset`; the file position stays. */
  pwrite(fd: number, count: number, offset: number): number {
    return this.file_syscall('pwrite64', () => sys_write(this.vm, this, fd, count, offset));
  }

  /** lseek(2): move the file position; returns it. */
  lseek(fd: number, offset: number, whence: number): number {
    return this.file_syscall('lseek', () => sys_lseek(this, fd, offset, whence));
  }

  /** ftruncate(2): set the file's size; pages past a smaller size leave memory and mappings. */
  ftruncate(fd: number, length: number): void {
    this.file_syscall('ftruncate', () => sys_ftruncate(this.vm, this, fd, length));
  }

  /** fsync(2): write the file's dirty pages back now. */
  fsync(fd: number): void {
    this.file_syscall('fsync', () => sys_fsync(this.vm, this, fd));
  }

  /** posix_fadvise(2) (POSIX_FADV_*; `len` 0 is to the end of the file). */
  fadvise(fd: number, offset: number, len: number, advice: number): void {
    this.file_syscall('fadvise64', () => sys_fadvise(this.vm, this, fd, offset, len, advice));
  }

  /** unlink(2): remove the name; the file's memory goes with its last descriptor or mapping. */
  unlink(path: string): void {
    this.file_syscall('unlink', () => sys_unlink(this.vm, this, path), path);
  }

  /** memfd_create(2): an unnamed tmpfs file, open O_RDWR. Returns the descriptor. */
  memfd_create(name: string, flags = 0): number {
    return this.file_syscall('memfd_create', () => sys_memfd_create(this.vm, this, name, flags));
  }

  /**
   * ioctl(2): `request` (an _IOC number, e.g. DMA_HEAP_IOCTL_ALLOC) on `fd`, with `arg` the
   * user's struct as an object, which the driver fills in. Returns the driver's non-negative
   * result. EBADF for a closed descriptor, ENOTTY for a file whose driver has no such request
   * (every regular file), else the driver's errno (EINVAL, EFAULT for a missing struct, ENOMEM).
   */
  ioctl(fd: number, request: number, arg?: unknown): number {
    this.alive('ioctl');
    const file = Number.isInteger(fd) && fd >= 0 ? this.fdt.fds[fd] : undefined;
    if (!file) throw new ErrnoError('EBADF', 'ioctl', undefined, `fd ${fd} is not open`);
    if (!Number.isInteger(request) || request < 0 || request >= 2 ** 32)
      throw new ErrnoError('EINVAL', 'ioctl', undefined, 'request must be an unsigned 32-bit integer');
    // vfs_ioctl(): no ->unlocked_ioctl is -ENOTTY (regular files: ext4/shmem know none of these).
    const f_op = file.f_op;
    if (!f_op?.ioctl)
      throw new ErrnoError('ENOTTY', 'ioctl', undefined, `no ioctl 0x${request.toString(16)} for this file`);
    const r = this.syscall(() => f_op.ioctl!(this, file, request, arg));
    if (r < 0)
      throw new ErrnoError(ERRNO_CODES.get(r) ?? 'EINVAL', 'ioctl', undefined, f_op.refusal || f_op.name);
    return r;
  }

  /** The names of the open descriptors and their files' paths (as /proc/<pid>/fd would list them). */
  openFiles(): Array<{ fd: number; path: string; pos: number }> {
    return [...this.fdt.entries()].map(([fd, f]) => ({
      fd,
      path: f.inode.nlink ? f.inode.path : `${f.inode.path} (deleted)`,
      pos: f.pos,
    }));
  }

  /** Run a file syscall as this task, turning a FileError into the ErrnoError Linux would give. */
  private file_syscall<T>(syscall: string, fn: () => T, path?: string): T {
    this.alive(syscall);
    let r: T | undefined;
    try {
      this.asCurrent(() => {
        r = fn();
      });
    } catch (e) {
      if (e instanceof FileError) {
        const code = ERRNO_CODES.get(e.errno) ?? 'EINVAL';
        throw new ErrnoError(code, syscall, path, e.why);
      }
      throw e;
    }
    return r as T;
  }

  /**
   * Run `fn` as this task (current->mm is ours, so the OOM killer knows who is asking). If the
   * OOM killer chose this task meanwhile, it dies when `fn` unwinds: its memory is reaped and a
   * FaultError (SIGKILL) is thrown.
   */
  private asCurrent(fn: () => void, entry = this.vm.mm.cost.syscall): void {
    const vm = this.vm;
    const kmm = vm.mm;
    const previous = vm.current;
    const outer = previous !== this.mm.id;
    const t0 = kmm.kernel_ns;
    if (outer) kmm.kernel_ns += entry;
    vm.current = this.mm.id;
    vm.depth++;
    try {
      fn();
    } catch (e) {
      if (!this.killed) throw e;
    } finally {
      vm.current = previous;
      if (outer) this.kernel_ns += kmm.kernel_ns - t0;
      if (--vm.depth === 0) vm.task_done();
    }
    if (this.killed) {
      this.exit();
      throw new FaultError('SIGKILL', 'oom', 0);
    }
  }

  private alive(syscall: string): void {
    if (this.exited) throw new ErrnoError('ESRCH', syscall, undefined, `process ${this.pid} has exited`);
  }
}

/**
 * The PTE of `addr` is present and permits the access: no fault is taken, and the MMU sets the
 * entry's accessed bit (and dirty bit for a store), as reclaim and MADV_FREE later see them.
 */
function pte_allows(vm: Vm, mm: MmStruct, addr: number, write: boolean): boolean {
  const vpn = addr / PAGE;
  const table = walk_pte_table(vm, mm, vpn);
  // A huge PMD's bits stand for its whole 2 MiB.
  const e =
    table >= 0
      ? table * PTRS_PER_TABLE + pte_index(vpn)
      : vm.pt.deposit.size
        ? huge_pmd_entry(vm, mm, vpn)
        : -1;
  if (e < 0) return false;
  const bits = vm.pt.bits[e];
  if (!(bits & _PAGE_PRESENT) || (write && !(bits & _PAGE_RW))) return false;
  vm.pt.bits[e] = bits | _PAGE_ACCESSED | (write ? _PAGE_DIRTY : 0);
  return true;
}

function isWhole(x: number): boolean {
  return Number.isInteger(x) && x >= 0;
}

const MLOCK_ERRORS: Partial<Record<ErrnoCode, string>> = {
  EPERM: 'RLIMIT_MEMLOCK is 0 and no CAP_IPC_LOCK',
  ENOMEM: 'range not fully mapped, RLIMIT_MEMLOCK exceeded, or a PROT_NONE mapping',
  EINVAL: 'range wraps',
  EAGAIN: 'out of memory while faulting the range in',
};

/** The modelled RLIMIT_* resources and their Rlimits fields. */
const RLIMIT_KEYS: Partial<Record<number, keyof Rlimits>> = {
  [RLIMIT_AS]: 'as',
  [RLIMIT_DATA]: 'data',
  [RLIMIT_MEMLOCK]: 'memlock',
  [RLIMIT_NOFILE]: 'nofile',
};

function rlimit_key(syscall: string, resource: number): keyof Rlimits {
  if (!Number.isInteger(resource) || resource < 0 || resource >= RLIM_NLIMITS)
    throw new ErrnoError('EINVAL', syscall, undefined, `no resource ${resource}`);
  const key = RLIMIT_KEYS[resource];
  if (!key) throw new ErrnoError('ENOSYS', syscall, undefined, `resource ${resource} is not modelled`);
  return key;
}

function isRlim(x: number): boolean {
  return x === RLIM_INFINITY || isWhole(x);
}

const ERRNO_CODES = new Map<number, ErrnoCode>(
  (Object.entries(errnos) as Array<[ErrnoCode, number]>).map(([code, n]) => [-n, code]),
);

/** The ErrnoError for a kernel function's -errno result, with the usual causes for that errno. */
function syscall_error(syscall: string, r: number, why: Partial<Record<ErrnoCode, string>>): ErrnoError {
  const code = ERRNO_CODES.get(r) ?? 'EINVAL';
  return new ErrnoError(code, syscall, undefined, why[code]);
}
