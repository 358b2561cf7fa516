/**
 * The address-space files of /proc/<pid>/ (fs/proc/task_mmu.c, Linux 6.18): maps, the Vm* lines
 * of status (task_mem), statm, and the binary pagemap.
 *
 * A file mapping's maps line shows its offset, its file system's device, the inode number and the
 * path (" (deleted)" once unlinked; shared anonymous memory is "/dev/zero (deleted)", a memfd
 * "/memfd:<name> (deleted)"); anonymous mappings show offset 0, device 00:00 and inode 0, and a
 * name only for the heap ("[heap]", when the address space has a brk area) and the stack
 * ("[stack]"). Each file ends with the [vsyscall] gate VMA that every x86-64 process shows
 * (CONFIG_LEGACY_VSYSCALL_XONLY: `--xp`).
 */
import { ErrnoError } from '../../lib/errno.ts';
import { PG_anon } from '../../mm/page-flags.ts';
import { hugetlb_usage_kb } from '../../vm/hugetlb.ts';
import { walk_pte_table } from '../../vm/memory.ts';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, type MmStruct } from '../../vm/mm_struct.ts';
import { _PAGE_SPECIAL, _PAGE_SWP_ENTRY, PTRS_PER_TABLE } from '../../vm/pgtable.ts';
import { hiwater_rss, hiwater_vm, type Vm } from '../../vm/vm.ts';
import { VM_EXEC, VM_GROWSDOWN, VM_MAYSHARE, VM_READ, VM_SHARED, VM_WRITE } from '../../vm/vma.ts';
import { lu, lu_w } from '../seq_file.ts';

const PAGE_SIZE = 4096;
/** VM_STACK on x86-64 (CONFIG_STACK_GROWSUP unset). */
const VM_STACK = VM_GROWSDOWN;
/** The x86-64 vsyscall page (VSYSCALL_ADDR), the gate VMA every 64-bit task shows last. */
const VSYSCALL_START = 0xffffffffff600000n;
/** seq_setwidth(m, 25 + sizeof(void *) * 6 - 1): names start after column 72. */
const MAPS_NAME_COLUMN = 25 + 8 * 6 - 1;

/** The brk and stack fields of an mm_struct, where the model has them. */
interface MmLayout {
  start_brk?: number;
  brk?: number;
  start_stack?: number;
}

/** seq_put_hex_ll(m, delim, v, width): lowercase hex, at least `width` digits. */
function hex(v: number | bigint, width: number): string {
  return v.toString(16).padStart(width, '0');
}

/**
 * kernel: include/linux/mm.h vma_is_initial_heap()
 * The VMA overlaps [start_brk, brk); false when the model's mm has no brk fields.
 */
function vma_is_initial_heap(mm: MmStruct, start: number, end: number): boolean {
  const l = mm as MmLayout;
  if (l.brk === undefined || l.start_brk === undefined) return false;
  return start < l.brk && end > l.start_brk;
}

// kernel: include/linux/mm.h vma_is_initial_stack()
function vma_is_initial_stack(mm: MmStruct, start: number, end: number): boolean {
  const s = (mm as MmLayout).start_stack;
  return s !== undefined && start <= s && end >= s;
}

/**
 * kernel: fs/proc/task_mmu.c show_vma_header_prefix() + show_map_vma()
 * "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu ", then, if the VMA has a name, spaces up to
 * column 72, a space and the name; then a newline.
 */
function show_map_line(
  start: number | bigint,
  end: number | bigint,
  flags: number,
  name: string | null,
  file: { pgoff: number; dev: string; ino: number } | null = null,
): string {
  let line =
    `${hex(start, 8)}-${hex(end, 8)} ` +
    (flags & VM_READ ? 'r' : '-') +
    (flags & VM_WRITE ? 'w' : '-') +
    (flags & VM_EXEC ? 'x' : '-') +
    (flags & VM_MAYSHARE ? 's' : 'p') +
    (file
      ? ` ${hex(file.pgoff * PAGE_SIZE, 8)} ${file.dev} ${file.ino} `
      : ` ${hex(0, 8)} ${hex(0, 2)}:${hex(0, 2)} 0 `);
  if (name !== null) line = `${line.padEnd(MAPS_NAME_COLUMN)} ${name}`;
  return `${line}\n`;
}

/**
 * kernel: fs/proc/task_mmu.c show_map() over proc_pid_maps_op
 * The text of /proc/<pid>/maps: one line per VMA in address order, then the gate VMA.
 */
export function proc_pid_maps(vm: Vm, mm: MmStruct): string {
  const v = vm.vmas;
  const lines: string[] = [];
  mm.mt.iterate(0, Number.POSITIVE_INFINITY, (start, end, id) => {
    // kernel: get_vma_name(): the file's path, else [heap] / [stack] (no vdso in the model).
    if (v.vm_file[id]) {
      const inode = vm.files.file(v.vm_file[id]).inode;
      // d_path(): a pseudo file's d_dname() name (a dma-buf's "/dmabuf:") is never "(deleted)".
      const name = inode.nlink || inode.pseudo ? inode.path : `${inode.path} (deleted)`;
      const file = { pgoff: v.vm_pgoff[id], dev: inode.mount.dev, ino: inode.ino };
      lines.push(show_map_line(start, end, v.vm_flags[id], name, file));
      return;
    }
    let name: string | null = null;
    if (vma_is_initial_heap(mm, start, end)) name = '[heap]';
    else if (vma_is_initial_stack(mm, start, end)) name = '[stack]';
    lines.push(show_map_line(start, end, v.vm_flags[id], name));
  });
  // get_gate_vma(): gate_vma_name() "[vsyscall]", VM_EXEC only (vsyscall=xonly).
  lines.push(show_map_line(VSYSCALL_START, VSYSCALL_START + 4096n, VM_EXEC, '[vsyscall]'));
  return lines.join('');
}

/** mm->data_vm, stack_vm and exec_vm, as vm_stat_account() keeps them, from the VMAs. */
export function mm_vm_counts(vm: Vm, mm: MmStruct): { data_vm: number; stack_vm: number; exec_vm: number } {
  const flags = vm.vmas.vm_flags;
  let data_vm = 0;
  let stack_vm = 0;
  let exec_vm = 0;
  mm.mt.iterate(0, Number.POSITIVE_INFINITY, (start, end, id) => {
    const f = flags[id];
    const pages = (end - start) / PAGE_SIZE;
    // is_exec_mapping(), is_stack_mapping(), is_data_mapping()
    if ((f & (VM_EXEC | VM_WRITE | VM_STACK)) === VM_EXEC) exec_vm += pages;
    else if (f & VM_STACK) stack_vm += pages;
    else if ((f & (VM_WRITE | VM_SHARED | VM_STACK)) === VM_WRITE) data_vm += pages;
  });
  return { data_vm, stack_vm, exec_vm };
}

/**
 * mm_pgtables_bytes() / PAGE_SIZE: the PUD, PMD and PTE tables of the address space (the PGD
 * is not counted), found by walking its page tables.
 */
export function mm_pgtables_pages(vm: Vm, mm: MmStruct): number {
  if (mm.pgd < 0) return 0;
  const pt = vm.pt;
  const count = (table: number, level: number): number => {
    if (level === 3 || pt.used[table] === 0) return 0;
    let n = 0;
    for (let i = 0; i < PTRS_PER_TABLE; i++) {
      const child = pt.child(table, i);
      if (child >= 0) n += 1 + count(child, level + 1);
    }
    return n;
  };
  return count(mm.pgd, 0);
}

/**
 * kernel: fs/proc/task_mmu.c task_mem()
 * The Vm*, Rss* and HugetlbPages lines of /proc/<pid>/status. VmPeak and VmHWM are the larger of
 * the current values and mm->hiwater_vm / hiwater_rss (src/vm/vm.ts).
 */
export function task_mem(vm: Vm, mm: MmStruct): string {
  const anon = mm.rss[MM_ANONPAGES];
  const file = mm.rss[MM_FILEPAGES];
  const shmem = mm.rss[MM_SHMEMPAGES];
  const total_vm = mm.total_vm;
  const hw_vm = Math.max(total_vm, hiwater_vm(vm, mm));
  const total_rss = anon + file + shmem;
  const hw_rss = Math.max(total_rss, hiwater_rss(vm, mm));
  const { data_vm, stack_vm, exec_vm } = mm_vm_counts(vm, mm);
  // No executable image: end_code == start_code, so every executable mapping counts as a library.
  const text = 0;
  const lib = exec_vm * PAGE_SIZE - text;
  const kb = (pages: number): string => lu_w(pages * (PAGE_SIZE / 1024), 8);
  return (
    `VmPeak:\t${kb(hw_vm)} kB\n` +
    `VmSize:\t${kb(total_vm)} kB\n` +
    `VmLck:\t${kb(mm.locked_vm)} kB\n` +
    `VmPin:\t${kb(mm.pinned_vm)} kB\n` +
    `VmHWM:\t${kb(hw_rss)} kB\n` +
    `VmRSS:\t${kb(total_rss)} kB\n` +
    `RssAnon:\t${kb(anon)} kB\n` +
    `RssFile:\t${kb(file)} kB\n` +
    `RssShmem:\t${kb(shmem)} kB\n` +
    `VmData:\t${kb(data_vm)} kB\n` +
    `VmStk:\t${kb(stack_vm)} kB\n` +
    `VmExe:\t${lu_w(text / 1024, 8)} kB\n` +
    `VmLib:\t${lu_w(lib / 1024, 8)} kB\n` +
    `VmPTE:\t${lu_w((mm_pgtables_pages(vm, mm) * PAGE_SIZE) / 1024, 8)} kB\n` +
    `VmSwap:\t${kb(mm.rss[MM_SWAPENTS])} kB\n` +
    // hugetlb_report_usage(): mm->hugetlb_usage.
    `HugetlbPages:\t${lu_w(hugetlb_usage_kb(mm), 8)} kB\n`
  );
}

/**
 * kernel: fs/proc/array.c proc_pid_statm() + task_statm()
 * "size resident shared text lib data dt" in pages; lib and dt are always 0.
 */
export function proc_pid_statm(vm: Vm, mm: MmStruct): string {
  const shared = mm.rss[MM_FILEPAGES] + mm.rss[MM_SHMEMPAGES];
  const resident = shared + mm.rss[MM_ANONPAGES];
  const { data_vm, stack_vm } = mm_vm_counts(vm, mm);
  return `${lu(mm.total_vm)} ${lu(resident)} ${lu(shared)} 0 0 ${lu(data_vm + stack_vm)} 0\n`;
}

// pagemap entry bits (fs/proc/task_mmu.c), in the high u32 of each entry
const PM_ENTRY_BYTES = 8;
/** Bit 55: the PTE is soft-dirty. */
export const PM_SOFT_DIRTY = 2n ** 55n;
/** Bit 56: the page is mapped exclusively (by this address space only). */
export const PM_MMAP_EXCLUSIVE = 2n ** 56n;
/** Bit 61: a file page or shared anonymous memory. */
export const PM_FILE = 2n ** 61n;
/** Bit 62: swapped out. */
export const PM_SWAP = 2n ** 62n;
/** Bit 63: present. */
export const PM_PRESENT = 2n ** 63n;
/** Bits 0-54: the PFN. */
export const PM_PFRAME_MASK = 2n ** 55n - 1n;
const HI_SOFT_DIRTY = 1 << 23;
const HI_MMAP_EXCLUSIVE = 1 << 24;
const HI_FILE = 1 << 29;
const HI_SWAP = 1 << 30;
const HI_PRESENT = 1 << 31;
/** ULONG_MAX >> PAGE_SHIFT: the largest vpn pagemap_read() shifts without wrapping. */
const MAX_SVPFN = 2 ** 52 - 1;

export interface PagemapOptions {
  /** The reader holds CAP_SYS_ADMIN (file_ns_capable at open): PFNs are shown, else zeroed. */
  show_pfn: boolean;
  /**
   * CONFIG_MEM_SOFT_DIRTY. Our machines' 6.18 kernel is built without it (bit 55 is never
   * set); distribution kernels have it, and then every VMA is VM_SOFTDIRTY from its creation
   * until clear_refs (which the model lacks), so every entry inside a VMA has bit 55.
   */
  soft_dirty?: boolean;
}

/**
 * kernel: fs/proc/task_mmu.c pagemap_read() with pagemap_pmd_range(), pte_to_pagemap_entry()
 * and pagemap_pte_hole()
 * `count` bytes at `offset` of /proc/<pid>/pagemap: one u64 per virtual page, the entry of
 * vpn n at offset 8n. Offset and count must be multiples of 8 (else EINVAL). The file ends at
 * task_size; reads past it return nothing.
 */
export function pagemap_read(
  vm: Vm,
  mm: MmStruct,
  path: string,
  offset: number,
  count: number,
  opts: PagemapOptions,
): Uint8Array {
  if (offset % PM_ENTRY_BYTES || count % PM_ENTRY_BYTES) throw new ErrnoError('EINVAL', 'read', path);
  if (!count) return new Uint8Array(0);
  const svpfn = offset / PM_ENTRY_BYTES;
  let end_vaddr = mm.task_size;
  let start_vaddr = end_vaddr;
  if (svpfn <= MAX_SVPFN) {
    start_vaddr = svpfn * PAGE_SIZE;
    const end = start_vaddr + (count / PM_ENTRY_BYTES) * PAGE_SIZE;
    if (end < mm.task_size) end_vaddr = end;
  }
  if (start_vaddr > mm.task_size) start_vaddr = end_vaddr;
  const n = Math.max(0, (end_vaddr - start_vaddr) / PAGE_SIZE);
  const out = new Uint32Array(n * 2);
  if (n) pagemap_fill(vm, mm, start_vaddr / PAGE_SIZE, n, out, opts);
  const bytes = new Uint8Array(out.buffer);
  if (new Uint8Array(new Uint32Array([1]).buffer)[0] === 1) return bytes;
  const le = new Uint8Array(bytes.length);
  const view = new DataView(le.buffer);
  for (let i = 0; i < out.length; i++) view.setUint32(i * 4, out[i], true);
  return le;
}

/** Fill `n` entries from virtual page `first` (zeroed `out`, (low, high) u32 pairs). */
function pagemap_fill(
  vm: Vm,
  mm: MmStruct,
  first: number,
  n: number,
  out: Uint32Array,
  opts: PagemapOptions,
): void {
  const pt = vm.pt;
  const f = vm.mm.frames;
  const zero_pfn = vm.mm.zero_pfn;
  const show_pfn = opts.show_pfn;
  // Without CONFIG_MEM_SOFT_DIRTY VM_SOFTDIRTY is 0; with it every model VMA carries it.
  const sd = opts.soft_dirty ? HI_SOFT_DIRTY : 0;
  const last = first + n;
  mm.mt.iterate(first * PAGE_SIZE, last * PAGE_SIZE, (s, e) => {
    const lo = Math.max(first, s / PAGE_SIZE);
    const hi = Math.min(last, e / PAGE_SIZE);
    // pagemap_pte_hole() inside a VMA: make_pme(0, VM_SOFTDIRTY ? PM_SOFT_DIRTY : 0).
    if (sd) for (let vpn = lo; vpn < hi; vpn++) out[(vpn - first) * 2 + 1] = sd;
    let vpn = lo;
    while (vpn < hi) {
      const next = Math.min(hi, (Math.floor(vpn / PTRS_PER_TABLE) + 1) * PTRS_PER_TABLE);
      const table = walk_pte_table(vm, mm, vpn);
      if (table < 0 || pt.used[table] === 0) {
        vpn = next;
        continue;
      }
      for (; vpn < next; vpn++) {
        const e = table * PTRS_PER_TABLE + (vpn % PTRS_PER_TABLE);
        if (pt.bits[e] === 0) continue; // pte_none()
        const pfn = pt.pfn[e];
        if (pt.bits[e] & _PAGE_SWP_ENTRY) {
          // A swap entry: PM_SWAP, and swp_type | swp_offset << MAX_SWAPFILES_SHIFT as the frame.
          const j = (vpn - first) * 2;
          let swapHi = HI_SWAP | sd;
          if (show_pfn) {
            const frame = pfn * 32;
            out[j] = frame >>> 0;
            swapHi |= Math.floor(frame / 2 ** 32);
          }
          out[j + 1] = swapHi >>> 0;
          continue;
        }
        let hiBits = HI_PRESENT | sd;
        // vm_normal_page() is NULL for the zero page and special PTEs: no FILE, no EXCLUSIVE.
        if (pfn !== zero_pfn && !(pt.bits[e] & _PAGE_SPECIAL)) {
          if (!(f.flags[pfn] & PG_anon)) hiBits |= HI_FILE;
          // !folio_maybe_mapped_shared(): a small folio mapped at most once.
          if (f.mapcount[pfn] <= 1) hiBits |= HI_MMAP_EXCLUSIVE;
        }
        const j = (vpn - first) * 2;
        if (show_pfn) {
          out[j] = pfn >>> 0;
          hiBits |= Math.floor(pfn / 2 ** 32);
        }
        out[j + 1] = hiBits >>> 0;
      }
    }
  });
}
