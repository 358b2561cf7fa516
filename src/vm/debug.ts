/**
 * The VM half of the invariant checker: page tables, reverse map, LRU lists and counters must
 * agree. Walks every address space's page tables.
 *
 * Besides, per address space: locked_vm and data_vm equal the pages of its VM_LOCKED and data
 * VMAs, VM_LOCKONFAULT comes only with VM_LOCKED, the heap end is not below its start. Per PTE:
 * PROT_NONE entries exactly in PROT_NONE VMAs, writable entries only in writable VMAs and only
 * for pages mapped once (never the zero page) — copy-on-write holds. Per page: PG_mlocked exactly
 * when some VM_LOCKED VMA maps it, PG_mlocked with PG_unevictable and the other way round, no
 * unevictable or lazyfree (anonymous, not swap-backed) page on an active list, and NR_MLOCK per
 * zone equal to its PG_mlocked pages. The commit charge: VM_ACCOUNT only on private mappings
 * without VM_NORESERVE, and vm_committed_as equal to the sum of its sources (committed_sources()).
 */
import {
  folio_entire_mapcount,
  folio_head,
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  THP_ANON_MIN_ORDER,
  thp,
  thp_ptemapped_pages,
} from '../mm/huge_memory.ts';
import { LRU_INACTIVE_ANON, NR_LRU_LISTS } from '../mm/lru.ts';
import {
  PG_active,
  PG_anon,
  PG_head,
  PG_hugetlb,
  PG_lru,
  PG_mlocked,
  PG_swapbacked,
  PG_swapcache,
  PG_table,
  PG_tail,
  PG_unevictable,
  PGI_alloc,
} from '../mm/page-flags.ts';
import { swap_check } from '../mm/swapfile.ts';
import { NR_MLOCK, NR_ZONE_INACTIVE_ANON, node_stat_index } from '../mm/vmstat_items.ts';
import { anon_mapping } from './anon_vma.ts';
import { hugetlb_objects_check } from './hugetlb.ts';
import { walk_pte_table } from './memory.ts';
import { MM_ANONPAGES, MM_FILEPAGES, MM_SHMEMPAGES, MM_SWAPENTS, type MmStruct } from './mm_struct.ts';
import { is_data_mapping } from './mmap.ts';
import {
  _PAGE_PROTNONE,
  _PAGE_PSE,
  _PAGE_RW,
  _PAGE_SPECIAL,
  _PAGE_SWP_ENTRY,
  MAPPING_PGTABLE,
  PTRS_PER_TABLE,
  pte_index,
} from './pgtable.ts';
import type { Vm } from './vm.ts';
import {
  VM_ACCESS_FLAGS,
  VM_ACCOUNT,
  VM_CONTIG,
  VM_HUGETLB,
  VM_LOCKED,
  VM_LOCKONFAULT,
  VM_MIXEDMAP,
  VM_NORESERVE,
  VM_PFNMAP,
  VM_SHARED,
  VM_WRITE,
} from './vma.ts';

const MAX_REPORTS = 50;
const NR_PAGETABLE = node_stat_index('nr_page_table_pages');
const NR_ANON_MAPPED = node_stat_index('nr_anon_pages');
const NR_FILE_MAPPED = node_stat_index('nr_mapped');
const NR_ANON_THPS = node_stat_index('nr_anon_transparent_hugepages');

/**
 * What vm_committed_as is made of, each source with the pages it should hold now. Every charge in
 * the model is one of these, and each is given back by the same source:
 * - the pages of every VM_ACCOUNT VMA of every address space: __mmap_prepare() (private writable
 *   mappings), do_brk_flags(), mprotect_fixup() (turning writable), mremap (growth, moves,
 *   MREMAP_DONTUNMAP) and dup_mmap() charge exactly the pages they give VM_ACCOUNT, and unmapping
 *   (do_munmap(), exit_mmap()) or mprotect_fixup() dropping VM_ACCOUNT uncharges them;
 * - what the kernel leaks on its own error paths (Vm.vm_committed_leaked; see mremap.ts);
 * - tmpfs and shared memory (Files.committed(): shmem_acct_size() and shmem_acct_blocks()).
 * A new charge source (hugetlb, stack growth, …) adds an entry here with the pages it holds.
 */
function committed_sources(vm: Vm, vm_account_pages: number): Array<[string, number]> {
  return [
    ['VM_ACCOUNT VMAs', vm_account_pages],
    ['leaked', vm.vm_committed_leaked],
    ['shmem', vm.files.committed()],
  ];
}

export function vm_check(vm: Vm): string[] {
  const errors: string[] = [];
  const report = (msg: string): void => {
    if (errors.length < MAX_REPORTS) errors.push(msg);
  };
  const mm = vm.mm;
  const f = mm.frames;
  const refs = new Int32Array(f.nr_frames);
  /** Per frame: PTEs of VM_LOCKED VMAs that map it. */
  const lockedRefs = new Int32Array(f.nr_frames);
  let tables = 0;
  /** Per swap slot: the swap PTEs that refer to it. */
  const swapRefs = mm.swap ? new Int32Array(mm.swap.pages) : null;
  /** Pages of VM_ACCOUNT VMAs, over every address space. */
  let accounted = 0;
  /** Per 2 MiB frame: huge PMDs (and those of VM_LOCKED VMAs) mapping the THP there. */
  const huge = new Int32Array((f.nr_frames >> HPAGE_PMD_ORDER) + 1);
  const hugeLocked = new Int32Array(huge.length);

  for (const as of vm.mms) {
    if (!as) continue;
    for (const v of as.mt.check()) report(`mm ${as.id} maple tree: ${v}`);
    let vmas = 0;
    let total = 0;
    let locked = 0;
    let data = 0;
    as.mt.iterate(0, Number.POSITIVE_INFINITY, (start, end, id) => {
      vmas++;
      total += (end - start) / 4096;
      const flags = vm.vmas.vm_flags[id];
      if (flags & VM_LOCKED) locked += (end - start) / 4096;
      else if (flags & VM_LOCKONFAULT) report(`mm ${as.id}: VMA ${id} has VM_LOCKONFAULT without VM_LOCKED`);
      if (is_data_mapping(flags)) data += (end - start) / 4096;
      if (flags & VM_ACCOUNT) {
        accounted += (end - start) / 4096;
        if (flags & (VM_SHARED | VM_NORESERVE))
          report(`mm ${as.id}: VMA ${id} is VM_ACCOUNT but shared or VM_NORESERVE`);
      }
      if (vm.vmas.vm_start[id] !== start || vm.vmas.vm_end[id] !== end || vm.vmas.vm_mm[id] !== as.id) {
        report(
          `mm ${as.id}: VMA ${id} fields disagree with the tree [0x${start.toString(16)}, 0x${end.toString(16)})`,
        );
      }
    });
    if (vmas !== as.map_count) report(`mm ${as.id}: map_count ${as.map_count} but ${vmas} VMAs`);
    if (total !== as.total_vm) report(`mm ${as.id}: total_vm ${as.total_vm} but VMAs span ${total} pages`);
    if (locked !== as.locked_vm)
      report(`mm ${as.id}: locked_vm ${as.locked_vm} but VM_LOCKED VMAs span ${locked}`);
    if (data !== as.data_vm) report(`mm ${as.id}: data_vm ${as.data_vm} but data VMAs span ${data}`);
    if (as.brk < as.start_brk) report(`mm ${as.id}: brk 0x${as.brk.toString(16)} below start_brk`);
    const counts = { rss: new Float64Array(4), swap: swapRefs, huge, hugeLocked };
    tables += walk(vm, as, as.pgd, 0, 0, refs, lockedRefs, counts, report);
    for (const [i, name] of [
      [MM_ANONPAGES, 'MM_ANONPAGES'],
      [MM_FILEPAGES, 'MM_FILEPAGES'],
      [MM_SHMEMPAGES, 'MM_SHMEMPAGES'],
      [MM_SWAPENTS, 'MM_SWAPENTS'],
    ] as const) {
      if (counts.rss[i] !== as.rss[i]) report(`mm ${as.id}: ${name} ${as.rss[i]} but ${counts.rss[i]} PTEs`);
    }
  }
  if (tables !== vm.pt.count) report(`${vm.pt.count} page tables allocated but ${tables} reachable`);
  for (const v of swap_check(mm, swapRefs)) report(v);
  // hugetlb: the objects' outstanding reservations are resv_huge_pages.
  for (const v of hugetlb_objects_check(vm)) report(v);
  const sources = committed_sources(vm, accounted);
  let committed = 0;
  for (const [, pages] of sources) committed += pages;
  if (committed !== vm.vm_committed_as || vm.vm_committed_leaked < 0) {
    const parts = sources.map(([name, pages]) => `${name} ${pages}`).join(', ');
    report(`vm_committed_as ${vm.vm_committed_as} but its sources hold ${committed} (${parts})`);
  }

  // Every frame: mapcount equals the PTEs found; page-table frames are accounted.
  const mlocked = new Float64Array(mm.zones.length);
  let pagetables = 0;
  let anonMapped = 0;
  let anonThps = 0;
  let fileMapped = 0;
  /** Per order: the anonymous large folios (heads) found. */
  const nrAnon = new Int32Array(HPAGE_PMD_ORDER + 1);
  for (let pfn = 0; pfn < f.nr_frames; pfn++) {
    const fl = f.flags[pfn];
    if (fl & PG_table) pagetables++;
    if (f.mapcount[pfn] !== refs[pfn])
      report(`pfn ${pfn}: mapcount ${f.mapcount[pfn]} but ${refs[pfn]} PTEs map it`);
    if (fl & PG_anon && fl & (PG_head | PG_tail)) {
      const head = folio_head(mm, pfn);
      const order = f.order[head];
      const pmd = order === HPAGE_PMD_ORDER;
      const entire = pmd ? huge[head >> HPAGE_PMD_ORDER] : 0;
      if (f.mapcount[pfn] > 0 || entire > 0) anonMapped++;
      if (!(f.flags[head] & PG_head) || !(f.flags[head] & PGI_alloc) || !(f.flags[head] & PG_lru))
        report(`pfn ${pfn}: THP page whose head ${head} is not an allocated LRU folio`);
      if (pfn === head) {
        nrAnon[order]++;
        if (order < THP_ANON_MIN_ORDER || (head & ((1 << order) - 1)) !== 0)
          report(`THP ${pfn}: order ${order} is not an aligned anonymous THP order`);
        if (pmd && thp(mm).entire_mapcount[pfn >> HPAGE_PMD_ORDER] !== entire)
          report(
            `THP ${pfn}: entire mapcount ${thp(mm).entire_mapcount[pfn >> HPAGE_PMD_ORDER]} but ${entire} PMDs`,
          );
        if (entire > 0) anonThps += HPAGE_PMD_NR;
        let locked = pmd ? hugeLocked[pfn >> HPAGE_PMD_ORDER] : 0;
        let mapped = entire;
        const nr = 1 << order;
        for (let i = 0; i < nr; i++) {
          locked += lockedRefs[pfn + i];
          mapped += refs[pfn + i];
        }
        if (mapped === 0) report(`THP ${pfn}: no mapping left but not freed`);
        if (((fl & PG_mlocked) !== 0) !== locked > 0)
          report(`THP ${pfn}: PG_mlocked ${(fl & PG_mlocked) !== 0} but ${locked} VM_LOCKED mappings`);
        if (((fl & PG_mlocked) !== 0) !== ((fl & PG_unevictable) !== 0))
          report(`THP ${pfn}: PG_mlocked and PG_unevictable disagree`);
        if (fl & PG_mlocked) mlocked[mm.page_zone(pfn)!.id] += nr;
      }
      continue;
    }
    if (fl & PG_anon) {
      if (f.mapcount[pfn] > 0) anonMapped++;
      else if (!(fl & PG_swapcache)) report(`pfn ${pfn}: unmapped anonymous page outside the swap cache`);
      if (!(fl & PGI_alloc) || !(fl & PG_lru))
        report(`pfn ${pfn}: anonymous page not allocated or not on an LRU list`);
      if (((fl & PG_mlocked) !== 0) !== lockedRefs[pfn] > 0)
        report(`pfn ${pfn}: PG_mlocked ${(fl & PG_mlocked) !== 0} but ${lockedRefs[pfn]} VM_LOCKED mappings`);
      if (((fl & PG_mlocked) !== 0) !== ((fl & PG_unevictable) !== 0))
        report(`pfn ${pfn}: PG_mlocked and PG_unevictable disagree`);
      if (fl & PG_active && (fl & PG_unevictable || !(fl & PG_swapbacked)))
        report(`pfn ${pfn}: unevictable or lazyfree page marked active`);
    } else if (f.mapping[pfn] !== 0 && (f.mapping[pfn] & 3) === 0) {
      if (refs[pfn] > 0) fileMapped++;
      if (((fl & PG_mlocked) !== 0) !== lockedRefs[pfn] > 0)
        report(
          `pfn ${pfn}: page-cache page PG_mlocked ${(fl & PG_mlocked) !== 0} but ${lockedRefs[pfn]} VM_LOCKED mappings`,
        );
    }
    if (fl & PG_mlocked) mlocked[mm.page_zone(pfn)!.id]++;
  }
  for (const zone of mm.zones) {
    const n = mlocked[zone.id];
    if (zone.vm_stat[NR_MLOCK] !== n)
      report(`zone ${zone.name}: nr_mlock ${zone.vm_stat[NR_MLOCK]} but ${n} PG_mlocked pages`);
  }
  let nodeTables = 0;
  let nodeAnon = 0;
  for (const node of mm.nodes) {
    nodeTables += node.vm_stat[NR_PAGETABLE];
    nodeAnon += node.vm_stat[NR_ANON_MAPPED];
  }
  if (nodeTables !== pagetables)
    report(`nr_page_table_pages ${nodeTables} but ${pagetables} PG_table frames`);
  if (nodeAnon !== anonMapped) report(`nr_anon_pages ${nodeAnon} but ${anonMapped} anonymous pages`);
  // MTHP_STAT_NR_ANON per size; partially mapped folios are queued large anon heads.
  const ts = thp(mm);
  for (let o = 0; o <= HPAGE_PMD_ORDER; o++)
    if (ts.nr_anon[o] !== nrAnon[o])
      report(`order ${o}: nr_anon ${ts.nr_anon[o]} but ${nrAnon[o]} anon folios`);
  for (const head of ts.partially_mapped) {
    const q = ts.split_queue[mm.page_zone(head)!.nid];
    if ((f.flags[head] & (PG_head | PG_anon)) !== (PG_head | PG_anon) || !q.has(head))
      report(`partially mapped ${head}: not a queued anonymous large folio`);
  }
  let nodeThps = 0;
  for (const node of mm.nodes) nodeThps += node.vm_stat[NR_ANON_THPS];
  if (nodeThps !== anonThps)
    report(`nr_anon_transparent_hugepages ${nodeThps} but ${anonThps} PMD-mapped pages`);
  let nodeFileMapped = 0;
  for (const node of mm.nodes) nodeFileMapped += node.vm_stat[NR_FILE_MAPPED];
  if (nodeFileMapped !== fileMapped)
    report(`nr_mapped ${nodeFileMapped} but ${fileMapped} mapped page-cache pages`);
  // i_mmap: exactly the VMAs with a file, under their file's mapping.
  let linked = 0;
  for (const [mapping, set] of vm.vmas.i_mmap) {
    for (const vma of set) {
      linked++;
      if (vm.vmas.vm_mapping[vma] !== mapping || vm.vmas.vm_mm[vma] < 0)
        report(`i_mmap of mapping ${mapping} lists VMA ${vma}, which does not map it`);
    }
  }
  let fileVmas = 0;
  for (const as of vm.mms) {
    if (!as) continue;
    as.mt.iterate(0, Number.POSITIVE_INFINITY, (_s, _e, id) => {
      if (vm.vmas.vm_file[id]) fileVmas++;
    });
  }
  if (linked !== fileVmas) report(`i_mmap lists ${linked} VMAs but ${fileVmas} VMAs map files`);

  // LRU lists: members carry PG_lru and sit on their node's list; counts match the stats.
  for (const node of mm.nodes) {
    for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
      const list = node.lru_base + lru;
      let n = 0;
      let pages = 0;
      for (let p = f.list_first(list); p >= 0 && n <= f.list_count[list]; p = f.list_next(p)) {
        n++;
        pages += f.flags[p] & PG_head ? 1 << f.order[p] : 1;
        if (!(f.flags[p] & PG_lru))
          report(`pfn ${p} on LRU list ${lru} of node ${node.node_id} lacks PG_lru`);
        if (mm.page_zone(p)?.nid !== node.node_id)
          report(`pfn ${p} on node ${node.node_id}'s LRU belongs to another node`);
      }
      if (n !== f.list_count[list] || pages !== node.vm_stat[LRU_INACTIVE_ANON + lru]) {
        report(
          `node ${node.node_id} LRU list ${lru}: ${n} entries, count ${f.list_count[list]}, stat ${node.vm_stat[lru]}`,
        );
      }
    }
  }
  for (const zone of mm.zones) {
    let sum = 0;
    for (let lru = 0; lru < NR_LRU_LISTS; lru++) sum += zone.vm_stat[NR_ZONE_INACTIVE_ANON + lru];
    if (sum < 0) report(`zone ${zone.name}: negative LRU counters`);
  }
  for (const e of map_contig_check(vm)) report(e);
  return errors;
}

/**
 * A huge PMD: it maps the head of an order-9 anonymous folio in an anonymous VMA covering the
 * 2 MiB, at the folio's index, with a deposited table; counts 512 pages of rss and one entire
 * mapping (counts.huge). Returns 1 for the deposited table.
 */
function huge_pmd_check(
  vm: Vm,
  as: MmStruct,
  e: number,
  vpn: number,
  counts: { rss: Float64Array; huge: Int32Array; hugeLocked: Int32Array },
  report: (m: string) => void,
): number {
  const f = vm.mm.frames;
  const v = vm.vmas;
  const head = vm.pt.pfn[e];
  const addr = vpn * 4096;
  const vma = as.mt.walk(addr);
  if (vma < 0 || v.vm_end[vma] < addr + HPAGE_PMD_NR * 4096 || v.vm_start[vma] > addr)
    report(`mm ${as.id}: huge PMD at 0x${addr.toString(16)} not inside one VMA`);
  if (!(f.flags[head] & PG_head) || f.order[head] !== HPAGE_PMD_ORDER || !(f.flags[head] & PG_anon))
    report(`mm ${as.id}: huge PMD at 0x${addr.toString(16)} maps pfn ${head}, not an anonymous THP head`);
  else if (vma >= 0 && f.index[head] !== v.linear_page_index(vma, addr))
    report(`mm ${as.id}: THP ${head} at 0x${addr.toString(16)} has index ${f.index[head]}`);
  const slot = vm.pt.deposit.get(e);
  if (slot === undefined || vm.pt.used[slot] !== 0)
    report(`mm ${as.id}: huge PMD at 0x${addr.toString(16)} has no empty deposited table`);
  counts.rss[MM_ANONPAGES] += HPAGE_PMD_NR;
  counts.huge[head >> HPAGE_PMD_ORDER]++;
  if (vma >= 0 && v.vm_flags[vma] & VM_LOCKED) counts.hugeLocked[head >> HPAGE_PMD_ORDER]++;
  if (
    vm.pt.bits[e] & _PAGE_RW &&
    (vma < 0 ||
      !(v.vm_flags[vma] & VM_WRITE) ||
      folio_entire_mapcount(vm.mm, head) !== 1 ||
      thp_ptemapped_pages(vm.mm, head) > 0)
  )
    report(`mm ${as.id}: writable huge PMD at 0x${addr.toString(16)} of a shared THP`);
  return 1;
}

/** Walk one table (level 0 = PGD), counting tables and leaf references; returns tables seen. */
function walk(
  vm: Vm,
  as: MmStruct,
  slot: number,
  level: number,
  base: number,
  refs: Int32Array,
  lockedRefs: Int32Array,
  counts: { rss: Float64Array; swap: Int32Array | null; huge: Int32Array; hugeLocked: Int32Array },
  report: (m: string) => void,
): number {
  const pt = vm.pt;
  const f = vm.mm.frames;
  const tpfn = pt.frame[slot];
  if (
    !(f.flags[tpfn] & PG_table) ||
    f.mapping[tpfn] !== ((as.id << 2) | MAPPING_PGTABLE) ||
    f.index[tpfn] !== slot
  ) {
    report(`mm ${as.id}: page table slot ${slot} (pfn ${tpfn}) is not marked as its table`);
  }
  let used = 0;
  let tables = 1;
  const span = 2 ** (9 * (3 - level)); // pages under one entry
  for (let i = 0; i < PTRS_PER_TABLE; i++) {
    const e = slot * PTRS_PER_TABLE + i;
    if (pt.bits[e] === 0) continue;
    used++;
    const vpn = base + i * span;
    // A hugetlb page mapped by a PMD or PUD leaf (_PAGE_PSE) in a hugetlb VMA.
    if (level < 3 && pt.bits[e] & _PAGE_PSE && f.flags[pt.pfn[e]] & PG_hugetlb) {
      const hv = as.mt.walk(vpn * 4096);
      if (hv < 0 || !(vm.vmas.vm_flags[hv] & VM_HUGETLB))
        report(`mm ${as.id}: hugetlb leaf at 0x${(vpn * 4096).toString(16)} outside a hugetlb VMA`);
      refs[pt.pfn[e]]++;
      continue;
    }
    if (level === 2 && pt.bits[e] & _PAGE_PSE) {
      tables += huge_pmd_check(vm, as, e, vpn, counts, report);
      continue;
    }
    if (level < 3) {
      tables += walk(vm, as, f.index[pt.pfn[e]], level + 1, vpn, refs, lockedRefs, counts, report);
      continue;
    }
    const addr = vpn * 4096;
    const pfn = pt.pfn[e];
    const vma = as.mt.walk(addr);
    if (vma < 0) {
      report(`mm ${as.id}: PTE at 0x${addr.toString(16)} outside every VMA`);
      continue;
    }
    const v = vm.vmas;
    const vflags = v.vm_flags[vma];
    const bits = pt.bits[e];
    if (bits & _PAGE_SWP_ENTRY) {
      // A swap entry: counted against its slot (swap_check) and in MM_SWAPENTS.
      counts.rss[MM_SWAPENTS]++;
      if (counts.swap && pfn > 0 && pfn < counts.swap.length) counts.swap[pfn]++;
      else report(`mm ${as.id}: swap PTE at 0x${addr.toString(16)} points at slot ${pfn}`);
      if (vflags & VM_SHARED) report(`mm ${as.id}: swap PTE in the shared VMA at 0x${addr.toString(16)}`);
      continue;
    }
    // A special PTE (remap_pfn_range(), vmf_insert_pfn()): only in a VM_PFNMAP mapping, mapping a
    // page its driver allocated and holds (never anonymous, cached or on the LRU); no rmap,
    // mapcount or RSS to agree with.
    if (bits & _PAGE_SPECIAL) {
      const fl = f.flags[pfn];
      if (!(vflags & (VM_PFNMAP | VM_MIXEDMAP)))
        report(`mm ${as.id}: special PTE at 0x${addr.toString(16)} outside a VM_PFNMAP mapping`);
      if (!(fl & (PGI_alloc | PG_tail)) || fl & (PG_anon | PG_lru) || f.mapcount[pfn] !== 0)
        report(`mm ${as.id}: special PTE at 0x${addr.toString(16)} maps pfn ${pfn}, not a driver's page`);
      if (bits & _PAGE_RW && !(vflags & VM_WRITE))
        report(`mm ${as.id}: writable special PTE at 0x${addr.toString(16)} in a read-only VMA`);
      continue;
    }
    if (vflags & VM_PFNMAP)
      report(`mm ${as.id}: PTE at 0x${addr.toString(16)} of a VM_PFNMAP mapping is not special`);
    if (((bits & _PAGE_PROTNONE) !== 0) !== !(vflags & VM_ACCESS_FLAGS))
      report(`mm ${as.id}: PTE at 0x${addr.toString(16)} is${bits & _PAGE_PROTNONE ? '' : ' not'} PROT_NONE`);
    const shared = (vflags & VM_SHARED) !== 0;
    if (
      bits & _PAGE_RW &&
      (!(vflags & VM_WRITE) || pfn === vm.mm.zero_pfn || (!shared && f.mapcount[pfn] !== 1))
    )
      report(`mm ${as.id}: writable PTE at 0x${addr.toString(16)} (read-only VMA, zero page or shared page)`);
    if (pfn === vm.mm.zero_pfn) continue;
    refs[pfn]++;
    if (vflags & VM_LOCKED) lockedRefs[pfn]++;
    if (!(f.flags[pfn] & PG_anon)) {
      // A page-cache page: mapped only by a VMA of its own file, at its file offset.
      const mapping = f.mapping[pfn];
      if ((mapping & 3) !== 0 || mapping >> 2 !== v.vm_mapping[vma])
        report(`mm ${as.id}: page ${pfn} at 0x${addr.toString(16)} is not a page of the VMA's file`);
      else counts.rss[vm.mm.page_cache.of(mapping).shmem ? MM_SHMEMPAGES : MM_FILEPAGES]++;
      if (f.index[pfn] !== v.linear_page_index(vma, addr))
        report(`mm ${as.id}: page ${pfn} at 0x${addr.toString(16)} has index ${f.index[pfn]}`);
      continue;
    }
    if (shared) report(`mm ${as.id}: anonymous page ${pfn} in the shared VMA at 0x${addr.toString(16)}`);
    counts.rss[MM_ANONPAGES]++;
    if (
      f.mapping[pfn] !== anon_mapping(v.anon_vma[vma]) &&
      !vm.anon.linked(f.mapping[pfn] >> 2).includes(vma)
    ) {
      report(`mm ${as.id}: page ${pfn} at 0x${addr.toString(16)} is not in the VMA's anon_vma`);
    }
    if (f.index[pfn] !== v.linear_page_index(vma, addr))
      report(`mm ${as.id}: page ${pfn} at 0x${addr.toString(16)} has index ${f.index[pfn]}`);
  }
  if (used !== pt.used[slot])
    report(`mm ${as.id}: table slot ${slot} counts ${pt.used[slot]} entries but holds ${used}`);
  return tables;
}

/**
 * MAP_CONTIG backings: each counts exactly the offsets it still holds; a mapping that holds its
 * pages maps every one of them where its offset says, pinned (they never move or go until munmap).
 */
export function map_contig_check(vm: Vm): string[] {
  const errors: string[] = [];
  const pins = vm.mm.pincount;
  const seen = new Map<number, number>();
  for (const as of vm.mms) {
    if (!as) continue;
    as.mt.iterate(0, Number.POSITIVE_INFINITY, (start, end, vma) => {
      if (!(vm.vmas.vm_flags[vma] & VM_CONTIG)) return;
      const id = vm.vmas.vm_private_data[vma];
      const backing = vm.contig_backings[id];
      if (!backing) return;
      const held = backing.policy.holds_pages;
      for (let addr = start; addr < end; addr += 4096) {
        const idx = vm.vmas.linear_page_index(vma, addr);
        const want = backing.pfns[idx];
        if (want < 0) continue;
        seen.set(id, (seen.get(id) ?? 0) + 1);
        if (!held) continue;
        const table = walk_pte_table(vm, as, addr / 4096);
        const e = table < 0 ? -1 : table * PTRS_PER_TABLE + pte_index(addr / 4096);
        if (e < 0 || vm.pt.bits[e] === 0 || vm.pt.pfn[e] !== want)
          errors.push(`MAP_CONTIG mm ${as.id} 0x${addr.toString(16)}: offset ${idx} should map pfn ${want}`);
        else if (!pins || pins[want] === 0) errors.push(`MAP_CONTIG pfn ${want} is held but not pinned`);
      }
    });
  }
  for (let id = 1; id < vm.contig_backings.length; id++) {
    const b = vm.contig_backings[id];
    if (!b) continue;
    let live = 0;
    for (let i = 0; i < b.pfns.length; i++) if (b.pfns[i] >= 0) live++;
    if (live !== b.mapped) errors.push(`MAP_CONTIG backing ${id}: ${b.mapped} mapped, ${live} offsets held`);
    if (b.policy.holds_pages && (seen.get(id) ?? 0) !== live)
      errors.push(`MAP_CONTIG backing ${id}: ${live} pages held, ${seen.get(id) ?? 0} within its VMAs`);
    if (live === 0) errors.push(`MAP_CONTIG backing ${id} holds nothing but was not freed`);
  }
  return errors;
}
