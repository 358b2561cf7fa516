/**
 * The VM half of the invariant checker: page tables, reverse map, LRU lists and counters must
 * agree. Walks every address space's page tables.
 */
import { LRU_INACTIVE_ANON, NR_LRU_LISTS } from '../mm/lru.ts';
import { PG_anon, PG_lru, PG_table, PGI_alloc } from '../mm/page-flags.ts';
import { NR_ZONE_INACTIVE_ANON, node_stat_index } from '../mm/vmstat_items.ts';
import { anon_mapping } from './anon_vma.ts';
import { MM_ANONPAGES, type MmStruct } from './mm_struct.ts';
import { MAPPING_PGTABLE, PTRS_PER_TABLE } from './pgtable.ts';
import type { Vm } from './vm.ts';

const MAX_REPORTS = 50;
const NR_PAGETABLE = node_stat_index('nr_page_table_pages');
const NR_ANON_MAPPED = node_stat_index('nr_anon_pages');

export function vm_check(vm: Vm): string[] {
  const errors: string[] = [];
  const report = (msg: string): void => {
    if (errors.length < MAX_REPORTS) errors.push(msg);
  };
  const mm = vm.mm;
  const f = mm.frames;
  const refs = new Int32Array(f.nr_frames);
  let tables = 0;

  for (const as of vm.mms) {
    if (!as) continue;
    for (const v of as.mt.check()) report(`mm ${as.id} maple tree: ${v}`);
    let vmas = 0;
    let total = 0;
    as.mt.iterate(0, Number.POSITIVE_INFINITY, (start, end, id) => {
      vmas++;
      total += (end - start) / 4096;
      if (vm.vmas.vm_start[id] !== start || vm.vmas.vm_end[id] !== end || vm.vmas.vm_mm[id] !== as.id) {
        report(
          `mm ${as.id}: VMA ${id} fields disagree with the tree [0x${start.toString(16)}, 0x${end.toString(16)})`,
        );
      }
    });
    if (vmas !== as.map_count) report(`mm ${as.id}: map_count ${as.map_count} but ${vmas} VMAs`);
    if (total !== as.total_vm) report(`mm ${as.id}: total_vm ${as.total_vm} but VMAs span ${total} pages`);
    const anon = { ptes: 0 };
    tables += walk(vm, as, as.pgd, 0, 0, refs, anon, report);
    if (anon.ptes !== as.rss[MM_ANONPAGES])
      report(`mm ${as.id}: MM_ANONPAGES ${as.rss[MM_ANONPAGES]} but ${anon.ptes} anonymous PTEs`);
  }
  if (tables !== vm.pt.count) report(`${vm.pt.count} page tables allocated but ${tables} reachable`);

  // Every frame: mapcount equals the PTEs found; page-table frames are accounted.
  let pagetables = 0;
  let anonMapped = 0;
  for (let pfn = 0; pfn < f.nr_frames; pfn++) {
    const fl = f.flags[pfn];
    if (fl & PG_table) pagetables++;
    if (f.mapcount[pfn] !== refs[pfn])
      report(`pfn ${pfn}: mapcount ${f.mapcount[pfn]} but ${refs[pfn]} PTEs map it`);
    if (fl & PG_anon) {
      anonMapped++;
      if (!(fl & PGI_alloc) || !(fl & PG_lru))
        report(`pfn ${pfn}: anonymous page not allocated or not on an LRU list`);
    }
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

  // LRU lists: members carry PG_lru and sit on their node's list; counts match the stats.
  for (const node of mm.nodes) {
    for (let lru = 0; lru < NR_LRU_LISTS; lru++) {
      const list = node.lru_base + lru;
      let n = 0;
      for (let p = f.list_first(list); p >= 0 && n <= f.list_count[list]; p = f.list_next(p)) {
        n++;
        if (!(f.flags[p] & PG_lru))
          report(`pfn ${p} on LRU list ${lru} of node ${node.node_id} lacks PG_lru`);
        if (mm.page_zone(p)?.nid !== node.node_id)
          report(`pfn ${p} on node ${node.node_id}'s LRU belongs to another node`);
      }
      if (n !== f.list_count[list] || n !== node.vm_stat[LRU_INACTIVE_ANON + lru]) {
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
  return errors;
}

/** Walk one table (level 0 = PGD), counting tables and leaf references; returns tables seen. */
function walk(
  vm: Vm,
  as: MmStruct,
  slot: number,
  level: number,
  base: number,
  refs: Int32Array,
  anon: { ptes: number },
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
    if (level < 3) {
      tables += walk(vm, as, f.index[pt.pfn[e]], level + 1, vpn, refs, anon, report);
      continue;
    }
    const addr = vpn * 4096;
    const pfn = pt.pfn[e];
    const vma = as.mt.walk(addr);
    if (vma < 0) {
      report(`mm ${as.id}: PTE at 0x${addr.toString(16)} outside every VMA`);
      continue;
    }
    if (pfn === vm.mm.zero_pfn) continue;
    refs[pfn]++;
    anon.ptes++;
    const v = vm.vmas;
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
