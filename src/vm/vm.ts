/**
 * The virtual-memory side of a machine: every address space, VMA, anon_vma and page table, and
 * the vm sysctls that govern them.
 */
import type { AddressSpace } from '../mm/filemap.ts';
import type { ThpVmOps } from '../mm/huge_memory.ts';
import type { MM } from '../mm/mm.ts';
import type { OomKiller } from '../mm/mm_init.ts';
import type { RmapOps } from '../mm/rmap.ts';
import { AnonVmas } from './anon_vma.ts';
import { DEFAULT_DISK, type DiskConfig, Files, type FilesOwner, type Inode } from './files.ts';
import { split_folio, thp_shrinker_init } from './huge_memory.ts';
import { type HugetlbObject, hugetlb_migrate_mapping, hugetlb_vm_op_open } from './hugetlb.ts';
import { hugetlbfs_evict_inode } from './hugetlbfs.ts';
import { type Khugepaged, khugepaged_wakeup, start_stop_khugepaged } from './khugepaged.ts';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MmStruct } from './mm_struct.ts';
import { type OomTask, out_of_memory } from './oom_kill.ts';
import { PageTables } from './pgtable.ts';
import { folio_mkclean, folio_referenced, install_rmap, remap, try_to_unmap } from './rmap.ts';
import { __vm_enough_memory, vm_unacct_memory } from './util.ts';
import { type VmaOps, VmaTable } from './vma.ts';

export interface VmSysctls {
  /** vm.max_map_count: DEFAULT_MAX_MAP_COUNT = 65530. */
  max_map_count: number;
  /**
   * The effective mmap_min_addr: the larger of dac_mmap_min_addr and CONFIG_LSM_MMAP_MIN_ADDR
   * (65536 on our machines and x86-64 distributions), as security/min_addr.c computes it.
   */
  mmap_min_addr: number;
  /** vm.mmap_min_addr as read and written: dac_mmap_min_addr (CONFIG_DEFAULT_MMAP_MIN_ADDR = 4096). */
  dac_mmap_min_addr: number;
  /**
   * vm.overcommit_memory (0 heuristic, 1 always, 2 never), overcommit_ratio (percent of RAM,
   * 50), overcommit_kbytes (0: use the ratio), user_reserve_kbytes and admin_reserve_kbytes
   * (mm/util.c): __vm_enough_memory() (util.ts) applies them to every charge of
   * vm_committed_as; CommitLimit in /proc/meminfo follows them.
   */
  overcommit_memory: number;
  overcommit_ratio: number;
  overcommit_kbytes: number;
  user_reserve_kbytes: number;
  admin_reserve_kbytes: number;
  /** vm.min_unmapped_ratio (CONFIG_NUMA; 0..100, default 1): see Vm.min_unmapped_pages. */
  min_unmapped_ratio: number;
}

/**
 * The pages behind a MAP_CONTIG mapping (its vm_private_data is the backing's id): `pfns[i]` backs
 * page offset i (the mapping's offsets count from 0, so splits and moves keep the arithmetic).
 * One physically contiguous run unless the request was best effort.
 */
export interface ContigBacking {
  /** The policy that gave the pages (a sysctl may change the machine's since). */
  readonly policy: MapContigPolicy;
  /** Per page offset, the page it gave, -1 once that page has left the mapping. */
  readonly pfns: Int32Array;
  /** The user charged for it (admin bounds, src/contig/). */
  readonly uid: number;
  /** Pages still mapped: the backing goes when the last one leaves. */
  mapped: number;
}

/** Who asks for a MAP_CONTIG mapping: the calling task's ids and capabilities (admin bounds). */
export interface ContigCaller {
  readonly uid: number;
  readonly gid: number;
  capable(cap: number): boolean;
}

/** What a MAP_CONTIG policy provides to mmap(), the fault path and zap (src/contig/). */
export interface MapContigPolicy {
  readonly name: string;
  /** The mapping's pages stay put: locked for real (not VM_SPECIAL) and pinned while mapped. */
  readonly holds_pages: boolean;
  /** The mapping is not copied into a fork child (as if MADV_DONTFORK, which cannot be undone). */
  readonly dontfork: boolean;
  /**
   * The pages of a new mapping of `pages` pages (`best_effort`: MAP_CONTIG_BEST_EFFORT), zeroed
   * and allocated, or -errno.
   */
  alloc(mm: MmStruct, caller: ContigCaller, pages: number, best_effort: boolean): ContigBacking | number;
  /** Why the last alloc() failed, for the error message. */
  readonly refusal: string;
  /** Page `pfn` of `backing` left its mapping (its PTE is gone): the policy lets it go. */
  unmapped(backing: ContigBacking, pfn: number, cpu: number): void;
}

/**
 * The address-space layer. The layers below reach it through its methods (RmapOps for reclaim
 * and migration, ThpVmOps, OomKiller, VmaOps, FilesOwner), never through closures, so a cloned
 * machine's mm calls into the cloned Vm (src/sim/clone.ts).
 */
export class Vm implements RmapOps, ThpVmOps, OomKiller, VmaOps, FilesOwner {
  readonly vmas = new VmaTable();
  readonly anon = new AnonVmas();
  readonly pt: PageTables;
  readonly mms: Array<MmStruct | undefined> = [];
  readonly sysctl: VmSysctls = {
    max_map_count: 65530,
    mmap_min_addr: 65536,
    dac_mmap_min_addr: 4096,
    overcommit_memory: 0,
    overcommit_ratio: 50,
    overcommit_kbytes: 0,
    user_reserve_kbytes: 131072,
    admin_reserve_kbytes: 8192,
    min_unmapped_ratio: 1,
  };
  /**
   * Per node, pgdat->min_unmapped_pages: min_unmapped_ratio percent of the node's managed pages,
   * the unmapped page cache node reclaim leaves alone (set by the sysctl handler).
   */
  readonly min_unmapped_pages: number[] = [];
  /** Per mm id, mm->hiwater_rss and mm->hiwater_vm (see update_hiwater_rss()). */
  readonly hiwater: Array<{ rss: number; vm: number } | undefined> = [];
  /** The task owning each address space, by mm id, for the OOM killer. */
  readonly tasks: Array<OomTask | undefined> = [];
  /** The address space whose fault or syscall is running (the kernel's current->mm), or -1. */
  current = -1;
  /** MAP_CONTIG's policy (src/contig/), or null: the flag is ignored, as Linux 6.18 ignores it. */
  map_contig: MapContigPolicy | null = null;
  /** MAP_CONTIG backings by id (vm_private_data of a VM_CONTIG VMA); slot 0 is unused. */
  readonly contig_backings: Array<ContigBacking | undefined> = [undefined];
  /** Syscalls and faults in progress (nested: mmap's populate, an OOM kill's exit). */
  depth = 0;
  /** The machine, told by task_done() when the outermost syscall or fault returns. */
  host: { task_done(): void } | null = null;
  /** khugepaged (khugepaged.ts), created at first use. */
  khugepaged: Khugepaged | null = null;
  /** The hugetlb objects by id (hugetlb.ts), slot 0 unused; null until the first one. */
  hugetlb_objects: Array<HugetlbObject | undefined> | null = null;
  /**
   * vm_committed_as (mm/util.c), in pages: address space charged by vm_acct_memory() and
   * __vm_enough_memory() (util.ts): every VM_ACCOUNT VMA's pages, plus vm_committed_leaked.
   * /proc/meminfo shows it as Committed_AS.
   */
  vm_committed_as = 0;
  /**
   * Pages 6.18 charges and never gives back (mremap.ts: a MREMAP_FIXED move that also shrinks
   * charges the shrink again; a move whose page tables cannot all be moved keeps its charge),
   * so the invariant checker can still account for every charged page.
   */
  vm_committed_leaked = 0;

  /** Regular files, their inodes and open files (files.ts). */
  readonly files: Files;

  constructor(
    readonly mm: MM,
    disk: DiskConfig = DEFAULT_DISK,
  ) {
    this.pt = new PageTables(mm);
    this.files = new Files(mm, this, disk);
    this.vmas.ops = this;
    install_rmap(this, mm);
    thp_shrinker_init(this);
  }

  /**
   * The outermost syscall or fault returned: the machine lets its clock catch up with the CPU
   * time it used (mm.kernel_ns), running the kernel's background work due meanwhile.
   */
  task_done(): void {
    this.host?.task_done();
  }

  // VmaOps: a VMA's file reference and vm_ops->open.
  file_get(file: number): void {
    this.files.get_file(this.files.file(file));
  }

  file_put(file: number): void {
    this.files.fput(this.files.file(file), 0);
  }

  private_get(data: number): void {
    hugetlb_vm_op_open(this, data);
  }

  // FilesOwner
  i_mmap_mapped(as: AddressSpace): boolean {
    return this.vmas.i_mmap.has(as.id);
  }

  evict_inode(inode: Inode, cpu: number): void {
    hugetlbfs_evict_inode(this, inode, cpu);
  }

  // RmapOps (rmap.ts)
  folio_referenced(pfn: number, out: { vm_flags: number }): number {
    return folio_referenced(this, pfn, out);
  }

  try_to_unmap(pfn: number): boolean {
    return try_to_unmap(this, pfn);
  }

  remap(old: number, new_pfn: number): void {
    remap(this, old, new_pfn);
  }

  folio_mkclean(pfn: number): number {
    return folio_mkclean(this, pfn);
  }

  // ThpVmOps
  split_folio(head: number, isolated: boolean): number {
    return split_folio(this, head, isolated);
  }

  start_stop_khugepaged(): void {
    start_stop_khugepaged(this);
  }

  khugepaged_wakeup(): void {
    khugepaged_wakeup(this);
  }

  /** mm.hugetlb.vm: migrating an in-use hugetlb page (hugetlb.ts). */
  hugetlb_migrate_mapping(old: number, dst: number): void {
    hugetlb_migrate_mapping(this, old, dst);
  }

  /** OomKiller: out_of_memory() (oom_kill.ts). */
  out_of_memory(gfp: number, order: number): boolean {
    return out_of_memory(this, gfp, order);
  }

  /**
   * kernel: mm/shmem.c shmem_acct_blocks() / shmem_unacct_blocks(): charge tmpfs pages to the
   * commit count on behalf of the running task (current->mm and its CAP_SYS_ADMIN), or give them
   * back (negative `pages`).
   */
  shmem_acct(pages: number): boolean {
    if (pages < 0) {
      vm_unacct_memory(this, -pages);
      return true;
    }
    const mm = this.current >= 0 ? (this.mms[this.current] ?? null) : null;
    const task = this.current >= 0 ? this.tasks[this.current] : undefined;
    return __vm_enough_memory(this, mm, pages, task?.cap_sys_admin ?? true) === 0;
  }

  /** mm_alloc() + pgd_alloc(): a new, empty address space; null if no page for the PGD. */
  mm_alloc(nid: number, cpu: number): MmStruct | null {
    const id = this.mms.length;
    const mm = new MmStruct(id, nid, cpu);
    mm.pgd = this.pt.alloc(id, nid, cpu);
    if (mm.pgd < 0) return null;
    this.mms.push(mm);
    return mm;
  }
}

/** get_mm_rss(): resident pages of an address space. */
function get_mm_rss(mm: MmStruct): number {
  return mm.rss[MM_FILEPAGES] + mm.rss[MM_ANONPAGES] + mm.rss[MM_SHMEMPAGES];
}

/** vm.hiwater[mm.id], created at first use. */
function hiwater_of(vm: Vm, mm: MmStruct): { rss: number; vm: number } {
  const h = vm.hiwater[mm.id] ?? { rss: 0, vm: 0 };
  vm.hiwater[mm.id] = h;
  return h;
}

/**
 * kernel: include/linux/mm.h update_hiwater_rss()
 * Remember the RSS peak before it drops. The kernel calls this (and update_hiwater_vm) right
 * before unmapping; /proc/<pid>/status shows max(current, hiwater).
 */
export function update_hiwater_rss(vm: Vm, mm: MmStruct): void {
  const h = hiwater_of(vm, mm);
  h.rss = Math.max(h.rss, get_mm_rss(mm));
}

/** kernel: include/linux/mm.h update_hiwater_vm(): remember the total_vm peak before it drops. */
export function update_hiwater_vm(vm: Vm, mm: MmStruct): void {
  const h = hiwater_of(vm, mm);
  h.vm = Math.max(h.vm, mm.total_vm);
}

/** mm->hiwater_rss in pages (0 until update_hiwater_rss() runs). */
export function hiwater_rss(vm: Vm, mm: MmStruct): number {
  return vm.hiwater[mm.id]?.rss ?? 0;
}

/** mm->hiwater_vm in pages. */
export function hiwater_vm(vm: Vm, mm: MmStruct): number {
  return vm.hiwater[mm.id]?.vm ?? 0;
}
