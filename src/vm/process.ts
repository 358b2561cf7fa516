/**
 * A process as user space sees it: credentials, resource limits, a CPU, and an address space,
 * with the memory syscalls. Arguments are checked as Linux checks them and failures throw an
 * ErrnoError carrying the errno the syscall would return; touching memory runs page faults and
 * throws a FaultError where the process would get SIGSEGV or be killed for lack of memory.
 */
import { ErrnoError, type errnos } from '../lib/errno.ts';
import { vm_event_index } from '../mm/vmstat_items.ts';
import { dup_mmap } from './fork.ts';
import { handle_mm_fault, VM_FAULT_OK, walk_pte_table } from './memory.ts';
import type { MmStruct } from './mm_struct.ts';
import {
  do_munmap,
  exit_mmap,
  get_unmapped_area,
  mmap_region,
  populate_vma_page_range,
  range_is_free,
} from './mmap.ts';
import { _PAGE_RW, PTRS_PER_TABLE, pte_index } from './pgtable.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_FIXED_NOREPLACE,
  MAP_GROWSDOWN,
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
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from './uapi.ts';
import type { Vm } from './vm.ts';
import {
  VM_ACCOUNT,
  VM_EXEC,
  VM_LOCKED,
  VM_MAYEXEC,
  VM_MAYREAD,
  VM_MAYWRITE,
  VM_NORESERVE,
  VM_READ,
  VM_WRITE,
} from './vma.ts';

const PAGE = 4096;
export const RLIM_INFINITY = Number.POSITIVE_INFINITY;
/** Capabilities the memory syscalls consult. */
export const CAP_IPC_LOCK = 14;
export const CAP_SYS_ADMIN = 21;
export const CAP_SYS_RAWIO = 17;

export interface Rlimits {
  /** RLIMIT_AS, bytes. */
  as: number;
  /** RLIMIT_MEMLOCK, bytes (MLOCK_LIMIT: 8 MiB by default). */
  memlock: number;
}

export interface SpawnOptions {
  uid?: number;
  gid?: number;
  /** Capability numbers held (CAP_IPC_LOCK, …); root (uid 0) holds all by default. */
  caps?: number[];
  rlimits?: Partial<Rlimits>;
  cpu?: number;
  nid?: number;
}

/** What a process gets instead of a page: SIGSEGV (no mapping, or not allowed) or an OOM kill. */
export class FaultError extends Error {
  constructor(
    readonly signal: 'SIGSEGV' | 'SIGKILL',
    /** SEGV_MAPERR (no VMA), SEGV_ACCERR (protection), or 'oom'. */
    readonly code: 'SEGV_MAPERR' | 'SEGV_ACCERR' | 'oom',
    readonly address: number,
  ) {
    super(`${signal} (${code}) at 0x${address.toString(16)}`);
    this.name = 'FaultError';
  }
}

export class Process {
  readonly uid: number;
  readonly gid: number;
  readonly caps: ReadonlySet<number>;
  readonly rlimits: Rlimits;
  readonly cpu: number;
  readonly nid: number;
  exited = false;
  /** What a fork() child inherits. */
  readonly options: SpawnOptions;

  constructor(
    private readonly vm: Vm,
    readonly pid: number,
    readonly mm: MmStruct,
    opts: SpawnOptions,
    /** Registers a new process (the machine's process table); used by fork(). */
    private readonly spawner: (parent: Process, mm: (cpu: number, nid: number) => MmStruct | null) => Process,
  ) {
    this.uid = opts.uid ?? 0;
    this.gid = opts.gid ?? 0;
    this.caps = new Set(opts.caps ?? (this.uid === 0 ? [CAP_IPC_LOCK, CAP_SYS_ADMIN, CAP_SYS_RAWIO] : []));
    this.rlimits = { as: RLIM_INFINITY, memlock: 8 * 2 ** 20, ...opts.rlimits };
    this.options = {
      uid: this.uid,
      gid: this.gid,
      caps: [...this.caps],
      rlimits: { ...this.rlimits },
      cpu: mm.cpu,
      nid: mm.nid,
    };
    this.cpu = mm.cpu;
    this.nid = mm.nid;
  }

  capable(cap: number): boolean {
    return this.caps.has(cap);
  }

  /**
   * mmap(2), anonymous private mappings: returns the address. MAP_SHARED anonymous memory
   * (shmem) and file mappings need the page cache, which the model does not have yet.
   */
  mmap(addr: number, length: number, prot: number, flags: number, fd = -1, offset = 0): number {
    this.alive('mmap');
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
    if (type === MAP_SHARED_VALIDATE && flags & ~MAP_KNOWN_FLAGS)
      fail('EOPNOTSUPP', 'unknown flags with MAP_SHARED_VALIDATE');
    if (offset % PAGE) fail('EINVAL', 'offset is not page aligned');
    if (flags & MAP_GROWSDOWN) fail('EINVAL', 'MAP_GROWSDOWN is not supported by this model');
    if (!(flags & MAP_ANONYMOUS)) fail('EBADF', `fd ${fd} is not an open file`);
    if (type !== MAP_PRIVATE) fail('ENOSYS', 'shared anonymous memory (shmem) is not modelled yet');
    if (flags & MAP_HUGETLB) fail('ENOMEM', 'no hugetlb pages are reserved');
    const len = Math.ceil(length / PAGE) * PAGE;
    if (len > mm.task_size) fail('ENOMEM', 'length exceeds the address space');
    if (flags & MAP_FIXED_NOREPLACE) flags |= MAP_FIXED;
    if (flags & MAP_FIXED) {
      if (addr % PAGE) fail('EINVAL', 'MAP_FIXED address is not page aligned');
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
    if (flags & MAP_NORESERVE) vm_flags |= VM_NORESERVE;
    else if (vm_flags & VM_WRITE) vm_flags |= VM_ACCOUNT;
    if (
      vm_flags & VM_LOCKED &&
      !this.capable(CAP_IPC_LOCK) &&
      mm.locked_vm * PAGE + len > this.rlimits.memlock
    ) {
      fail('EAGAIN', 'RLIMIT_MEMLOCK exceeded');
    }
    // may_expand_vm(): RLIMIT_AS, counting what a MAP_FIXED mapping replaces as freed.
    if (mm.total_vm * PAGE + len > this.rlimits.as && !(flags & MAP_FIXED))
      fail('ENOMEM', 'RLIMIT_AS exceeded');
    if (mm.map_count >= vm.sysctl.max_map_count) fail('ENOMEM', 'vm.max_map_count reached');
    let start: number;
    if (flags & MAP_FIXED) {
      start = addr;
      const r = do_munmap(vm, mm, start, start + len);
      if (r < 0) fail('ENOMEM', 'vm.max_map_count reached while replacing a mapping');
    } else {
      start = get_unmapped_area(vm, mm, addr, len);
      if (start < 0) fail('ENOMEM', 'no free range of that size');
    }
    const vma = mmap_region(vm, mm, start, len, vm_flags, start / PAGE);
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
    if (do_munmap(this.vm, this.mm, addr, addr + len) < 0)
      throw new ErrnoError('ENOMEM', 'munmap', undefined, 'vm.max_map_count reached');
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
    for (let page = addr - (addr % PAGE); page < end; page += PAGE) {
      const vma = mm.mt.walk(page);
      if (vma < 0) throw new FaultError('SIGSEGV', 'SEGV_MAPERR', Math.max(page, addr));
      const f = v.vm_flags[vma];
      if (write ? !(f & VM_WRITE) : !(f & (VM_READ | VM_WRITE | VM_EXEC)))
        throw new FaultError('SIGSEGV', 'SEGV_ACCERR', Math.max(page, addr));
      if (pte_allows(vm, mm, page, write)) continue;
      vm.mm.vm_events[PGFAULT]++;
      faults++;
      if (handle_mm_fault(vm, mm, vma, page, write) !== VM_FAULT_OK)
        throw new FaultError('SIGKILL', 'oom', page);
    }
    return faults;
  }

  /**
   * fork(2): a child with a copy-on-write copy of this address space (less VM_DONTCOPY
   * mappings), the same credentials and limits, on the same CPU.
   */
  fork(): Process {
    this.alive('fork');
    return this.spawner(this, (cpu, nid) => dup_mmap(this.vm, this.mm, cpu, nid));
  }

  /** exit(2): the address space goes away and every page it alone mapped is freed. */
  exit(): void {
    if (this.exited) return;
    exit_mmap(this.vm, this.mm);
    this.exited = true;
  }

  private alive(syscall: string): void {
    if (this.exited) throw new ErrnoError('ESRCH', syscall, undefined, `process ${this.pid} has exited`);
  }
}

const PGFAULT = vm_event_index('pgfault');

/** The PTE of `addr` is present and permits the access: no fault is taken. */
function pte_allows(vm: Vm, mm: MmStruct, addr: number, write: boolean): boolean {
  const vpn = addr / PAGE;
  const table = walk_pte_table(vm, mm, vpn);
  if (table < 0) return false;
  const bits = vm.pt.bits[table * PTRS_PER_TABLE + pte_index(vpn)];
  return bits !== 0 && (!write || (bits & _PAGE_RW) !== 0);
}

function isWhole(x: number): boolean {
  return Number.isInteger(x) && x >= 0;
}
