/**
 * mm/hugetlb.c: the hugetlb pools. One hstate per huge page size (x86-64: 2 MiB = order 9 and
 * 1 GiB = order 18, "gigantic": above MAX_PAGE_ORDER), each with per-node free lists and the
 * counters nr/free/resv/surplus_huge_pages (global and per node). Pages enter a pool at boot
 * (hugepages= on the command line: gigantic ones from memblock before the buddy allocator exists,
 * 2 MiB ones from the buddy allocator), through nr_hugepages writes (set_max_huge_pages(), which
 * silently stops at the first allocation that fails), and as surplus pages when reservations or
 * faults need more than the pool has (nr_overcommit_hugepages). A pool page is an allocated
 * compound block with PG_hugetlb on every page (PageHuge() is true for tails too); free pool
 * pages sit on `hugepage_freelists`, never on the buddy lists.
 *
 * The address-space side (reservations of a mapping, faults, unmapping) is src/vm/hugetlb.ts;
 * the /proc and /sys files are src/fs/hugetlb.ts.
 */
import { errnos } from '../lib/errno.ts';
import { cma_alloc_folio, cma_by_name, cma_free_folio, cma_pages_valid } from './cma.ts';
import {
  __GFP_COMP,
  __GFP_NOWARN,
  __GFP_RETRY_MAYFAIL,
  __GFP_THISNODE,
  GFP_HIGHUSER,
  GFP_HIGHUSER_MOVABLE,
} from './gfp.ts';
import {
  available_huge_pages,
  type Hstate,
  HugetlbState,
  hstate_is_gigantic,
  hugepage_movable_supported,
  pages_per_huge_page,
  persistent_huge_pages,
} from './hstate.ts';
import type { MM } from './mm.ts';
import type { PfnRange, PhysLayout } from './mm_init.ts';
import { MAX_PAGE_ORDER, PAGE_SHIFT } from './mmzone.ts';
import { __alloc_pages, __free_pages, __free_pages_core } from './page_alloc/alloc_pages.ts';
import { alloc_contig_pages } from './page_alloc/contig.ts';
import { compound_head } from './page_isolation.ts';
import { PG_buddy, PG_head, PG_hugetlb, PG_reserved, PG_tail, PGI_alloc } from './page-flags.ts';
import { get_pageblock_isolate } from './pageblock.ts';
import { node_stat_index, vm_event_index } from './vmstat_items.ts';

const ENOMEM = -errnos.ENOMEM;
const EINVAL = -errnos.EINVAL;
const EBUSY = -errnos.EBUSY;
export const NUMA_NO_NODE = -1;
/** HUGETLB_PAGE_ORDER = HPAGE_PMD_ORDER on x86-64: 2 MiB. */
export const HUGETLB_PAGE_ORDER = 9;
/** PUD_SHIFT - PAGE_SHIFT: 1 GiB, registered by x86's gigantic_pages_init() (X86_FEATURE_GBPAGES). */
export const HUGETLB_PUD_ORDER = 18;
/** HUGE_MAX_HSTATE on x86-64. */
export const HUGE_MAX_HSTATE = 2;
const HTLB_BUDDY_PGALLOC = vm_event_index('htlb_buddy_alloc_success');
const HTLB_BUDDY_PGALLOC_FAIL = vm_event_index('htlb_buddy_alloc_fail');
const NR_HUGETLB = node_stat_index('nr_hugetlb');

/** htlb_alloc_mask(): __GFP_COMP|__GFP_NOWARN and movable only where the hstate may migrate. */
export function htlb_alloc_mask(h: Hstate): number {
  return __GFP_COMP | __GFP_NOWARN | (hugepage_movable_supported(h) ? GFP_HIGHUSER_MOVABLE : GFP_HIGHUSER);
}

/** htlb_modify_alloc_mask(): htlb_alloc_mask() keeping the caller's __GFP_THISNODE and __GFP_NOWARN. */
export function htlb_modify_alloc_mask(h: Hstate, gfp_mask: number): number {
  return htlb_alloc_mask(h) | (gfp_mask & (__GFP_THISNODE | __GFP_NOWARN));
}

// ---------------------------------------------------------------------------------------------
// Boot: the command line (hugepagesz=, hugepages=, default_hugepagesz=) and memblock.

/** arch_hugetlb_valid_size() on x86-64 with gbpages: PMD_SIZE or PUD_SIZE. */
function arch_hugetlb_valid_size(size: number): boolean {
  return size === 2 ** 21 || size === 2 ** 30;
}

/** memparse(): a number (decimal, 0x hex or 0 octal) with an optional K/M/G/T/P/E suffix. */
function memparse(s: string): number {
  const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([KkMmGgTtPpEe]?)/.exec(s);
  if (!m) return 0;
  let v = Number.parseInt(
    m[1],
    m[1].startsWith('0x') || m[1].startsWith('0X') ? 16 : m[1][0] === '0' ? 8 : 10,
  );
  const shift = { k: 10, m: 20, g: 30, t: 40, p: 50, e: 60 }[m[2].toLowerCase() as 'k'] ?? 0;
  v *= 2 ** shift;
  return v;
}

/** log2 of a power of two, else -1. */
function ilog2(v: number): number {
  const l = Math.log2(v);
  return Number.isInteger(l) ? l : -1;
}

// kernel: mm/hugetlb.c hugepages_setup()
function hugepages_setup(st: HugetlbState, s: string): void {
  if (!st.parsed_valid_hugepagesz) {
    st.bootlog.push(`HugeTLB: hugepages=${s} does not follow a valid hugepagesz, ignoring`);
    st.parsed_valid_hugepagesz = true;
    return;
  }
  const toDefault = st.hstates.length === 0;
  const mhp: unknown = toDefault ? 'default' : st.parsed_hstate;
  if (mhp === st.last_mhp) {
    st.bootlog.push(
      `HugeTLB: hugepages= specified twice without interleaving hugepagesz=, ignoring hugepages=${s}`,
    );
    return;
  }
  const add = (n: number): void => {
    if (toDefault) st.default_hstate_max_huge_pages += n;
    else st.parsed_hstate!.max_huge_pages += n;
  };
  const set = (n: number): void => {
    if (toDefault) st.default_hstate_max_huge_pages = n;
    else st.parsed_hstate!.max_huge_pages = n;
  };
  let p = 0;
  const invalid = (): void => {
    st.bootlog.push(`HugeTLB: Invalid hugepages parameter ${s.slice(p)}`);
    // hugepages_clear_pages_in_node()
    if (toDefault) st.default_hugepages_in_node.fill(0);
    else st.parsed_hstate!.max_huge_pages_node.fill(0);
  };
  while (p < s.length) {
    const m = /^\d+/.exec(s.slice(p));
    if (!m) {
      invalid();
      return;
    }
    const tmp = Number(m[0]);
    const count = m[0].length;
    if (s[p + count] === ':') {
      if (tmp >= st.nr_nodes) {
        invalid();
        return;
      }
      const node = tmp;
      p += count + 1;
      const n = /^\d+/.exec(s.slice(p));
      if (!n) {
        invalid();
        return;
      }
      const pages = Number(n[0]);
      if (toDefault) st.default_hugepages_in_node[node] = pages;
      else st.parsed_hstate!.max_huge_pages_node[node] = pages;
      add(pages);
      if (s[p + n[0].length] === ',') p += n[0].length + 1;
      else break;
    } else {
      if (p !== 0) {
        invalid();
        return;
      }
      set(tmp);
      break;
    }
  }
  st.last_mhp = mhp;
}

// kernel: mm/hugetlb.c hugepagesz_setup()
function hugepagesz_setup(st: HugetlbState, s: string): void {
  st.parsed_valid_hugepagesz = false;
  const size = memparse(s);
  if (!arch_hugetlb_valid_size(size)) {
    st.bootlog.push(`HugeTLB: unsupported hugepagesz=${s}`);
    return;
  }
  const h = st.size_to_hstate(size);
  if (h) {
    if (!st.parsed_default_hugepagesz || h !== st.default_hstate || h.max_huge_pages) {
      st.bootlog.push(`HugeTLB: hugepagesz=${s} specified twice, ignoring`);
      return;
    }
    st.parsed_hstate = h;
    st.parsed_valid_hugepagesz = true;
    return;
  }
  st.hugetlb_add_hstate(ilog2(size) - PAGE_SHIFT);
  st.parsed_valid_hugepagesz = true;
}

// kernel: mm/hugetlb.c default_hugepagesz_setup()
function default_hugepagesz_setup(st: HugetlbState, s: string): void {
  st.parsed_valid_hugepagesz = false;
  if (st.parsed_default_hugepagesz) {
    st.bootlog.push(`HugeTLB: default_hugepagesz previously specified, ignoring ${s}`);
    return;
  }
  const size = memparse(s);
  if (!arch_hugetlb_valid_size(size)) {
    st.bootlog.push(`HugeTLB: unsupported default_hugepagesz=${s}`);
    return;
  }
  const h = st.hugetlb_add_hstate(ilog2(size) - PAGE_SHIFT);
  st.parsed_valid_hugepagesz = true;
  st.parsed_default_hugepagesz = true;
  st.default_hstate_idx = st.hstates.indexOf(h);
  if (st.default_hstate_max_huge_pages) {
    h.max_huge_pages = st.default_hstate_max_huge_pages;
    for (let i = 0; i < st.nr_nodes; i++)
      if (st.default_hugepages_in_node[i] !== 0) h.max_huge_pages_node[i] = st.default_hugepages_in_node[i];
    st.default_hstate_max_huge_pages = 0;
  }
}

/**
 * kernel: mm/hugetlb.c hugetlb_parse_params() (the hugetlb_early_param()s in command-line order)
 * Unknown words are other subsystems' parameters and are ignored, as here.
 */
export function hugetlb_parse_params(st: HugetlbState, cmdline: string): void {
  for (const word of cmdline.split(/\s+/)) {
    const eq = word.indexOf('=');
    if (eq < 0) continue;
    const key = word.slice(0, eq);
    const val = word.slice(eq + 1);
    if (key === 'hugepages') hugepages_setup(st, val);
    else if (key === 'hugepagesz') hugepagesz_setup(st, val);
    else if (key === 'default_hugepagesz') default_hugepagesz_setup(st, val);
  }
}

/**
 * memblock_alloc_{exact_nid,try_nid}_raw(size, align = size): the highest free aligned range of
 * `nid`'s RAM (top-down, as x86's memblock allocates), or of any node if `exact` is false and
 * the node has none. The range becomes a memblock reservation; -1 if there is none.
 */
function memblock_alloc_huge(layout: PhysLayout, nr: number, nid: number, exact: boolean): number {
  const tryNode = (n: number): number => {
    const node = layout.nodes[n];
    for (let i = layout.ram.length - 1; i >= 0; i--) {
      const r = layout.ram[i];
      const lo = Math.max(r.start, node.start);
      let top = Math.min(r.end, node.end);
      while (top - nr >= lo) {
        const start = Math.floor((top - nr) / nr) * nr;
        if (start < lo) break;
        const clash = layout.reserved.find((x) => x.start < start + nr && x.end > start);
        if (!clash) {
          layout.reserved.push({ start, end: start + nr, name: 'hugetlb' });
          return start;
        }
        top = clash.start;
      }
    }
    return -1;
  };
  const pfn = tryNode(nid);
  if (pfn >= 0 || exact) return pfn;
  for (let n = 0; n < layout.nodes.length; n++) {
    if (n === nid) continue;
    const p = tryNode(n);
    if (p >= 0) return p;
  }
  return -1;
}

function node_of(layout: PhysLayout, pfn: number): number {
  return Math.max(
    0,
    layout.nodes.findIndex((n) => pfn >= n.start && pfn < n.end),
  );
}

/** Nodes with memory (hugetlb_bootmem_nodes, node_states[N_MEMORY]). */
function memory_nodes(layout: PhysLayout): number[] {
  const out: number[] = [];
  layout.nodes.forEach((n, nid) => {
    if (layout.ram.some((r: PfnRange) => r.start < n.end && r.end > n.start)) out.push(nid);
  });
  return out;
}

/**
 * kernel: mm/hugetlb.c hugetlb_bootmem_alloc() → hugetlb_hstate_alloc_pages() for gigantic
 * hstates: parse the command line, then reserve each gigantic page from memblock (node-exact for
 * hugepages=N:C, else round-robin over the nodes with memory, stopping at the first failure) —
 * before the buddy allocator is up, so these pages never reach it. Adds the reservations to
 * `layout`; gather_bootmem_prealloc() turns them into pool pages after mm_init().
 */
export function hugetlb_bootmem_alloc(cmdline: string, layout: PhysLayout): HugetlbState {
  const st = new HugetlbState(layout.nodes.length);
  hugetlb_parse_params(st, cmdline);
  const nodes = memory_nodes(layout);
  const cma = (layout.cma ?? []).some((a) => a.name.startsWith('hugetlb'));
  for (const h of st.hstates) {
    h.next_nid_to_alloc = nodes[0] ?? 0;
    if (!hstate_is_gigantic(h) || !h.max_huge_pages) continue;
    if (cma) {
      st.bootlog.push('HugeTLB: hugetlb_cma is enabled, skip boot time allocation');
      continue;
    }
    const nr = pages_per_huge_page(h);
    let specific = false;
    for (let nid = 0; nid < st.nr_nodes; nid++) {
      if (h.max_huge_pages_node[nid] <= 0) continue;
      specific = true;
      // hugetlb_hstate_alloc_pages_onenode()
      let i = 0;
      for (; i < h.max_huge_pages_node[nid]; i++) {
        const pfn = memblock_alloc_huge(layout, nr, nid, true);
        if (pfn < 0) break;
        st.huge_boot_pages.push({ h, pfn, nid });
      }
      if (i < h.max_huge_pages_node[nid]) {
        st.bootlog.push(
          `HugeTLB: allocating ${h.max_huge_pages_node[nid]} of page size ${size_string(h)} failed node${nid}.  Only allocated ${i} hugepages.`,
        );
        h.max_huge_pages -= h.max_huge_pages_node[nid] - i;
        h.max_huge_pages_node[nid] = i;
      }
    }
    if (specific) continue;
    // hugetlb_gigantic_pages_alloc_boot() → __alloc_bootmem_huge_page(h, NUMA_NO_NODE)
    let i = 0;
    for (; i < h.max_huge_pages; i++) {
      const nid = hstate_next_node_to_alloc(h, 'next_nid_to_alloc', nodes);
      const pfn = memblock_alloc_huge(layout, nr, nid, false);
      if (pfn < 0) break;
      st.huge_boot_pages.push({ h, pfn, nid: node_of(layout, pfn) });
    }
    hugetlb_hstate_alloc_pages_errcheck(st, i, h);
  }
  return st;
}

function size_string(h: Hstate): string {
  return h.order >= 18 ? `${2 ** (h.order - 18)}.00 GiB` : `${2 ** (h.order - 8)}.00 MiB`;
}

// kernel: mm/hugetlb.c hugetlb_hstate_alloc_pages_errcheck()
function hugetlb_hstate_alloc_pages_errcheck(st: HugetlbState, allocated: number, h: Hstate): void {
  if (allocated < h.max_huge_pages) {
    st.bootlog.push(
      `HugeTLB: allocating ${h.max_huge_pages} of page size ${size_string(h)} failed.  Only allocated ${allocated} hugepages.`,
    );
    h.max_huge_pages = allocated;
  }
}

/**
 * kernel: mm/hugetlb.c hugetlb_init() (subsys_initcall), with x86's gigantic_pages_init()
 * The 1 GiB and 2 MiB hstates exist; hugepages= before any hugepagesz= goes to the default
 * (2 MiB unless default_hugepagesz=); 2 MiB boot pages come from the buddy allocator; the
 * memblock-reserved gigantic pages join their pools (gather_bootmem_prealloc()), their pages
 * now counted as managed.
 */
export function hugetlb_init(mm: MM, st: HugetlbState): void {
  mm.hugetlb = st;
  st.hugetlb_add_hstate(HUGETLB_PUD_ORDER); // arch_initcall gigantic_pages_init()
  st.hugetlb_add_hstate(HUGETLB_PAGE_ORDER);
  if (!st.parsed_default_hugepagesz) {
    st.default_hstate_idx = st.hstates.findIndex((h) => h.order === HUGETLB_PAGE_ORDER);
    const h = st.default_hstate;
    if (st.default_hstate_max_huge_pages) {
      if (h.max_huge_pages) {
        st.bootlog.push(
          `HugeTLB: Ignoring hugepages=${h.max_huge_pages} associated with ${size_string(h)} page size`,
        );
        st.bootlog.push(
          `HugeTLB: Using hugepages=${st.default_hstate_max_huge_pages} for number of default huge pages`,
        );
      }
      h.max_huge_pages = st.default_hstate_max_huge_pages;
      h.max_huge_pages_node.set(st.default_hugepages_in_node);
    }
  }
  const nodes = mm.nodes.filter((n) => n.node_zones.some((z) => z.managed_pages > 0)).map((n) => n.node_id);
  for (const h of st.hstates) {
    h.next_nid_to_alloc = nodes[0] ?? 0;
    h.next_nid_to_free = nodes[0] ?? 0;
    if (!hstate_is_gigantic(h)) hugetlb_hstate_alloc_pages(mm, h, nodes);
  }
  // gather_bootmem_prealloc()
  for (const m of st.huge_boot_pages) {
    const nr = pages_per_huge_page(m.h);
    const zone = mm.page_zone(m.pfn);
    if (!zone || mm.page_zone(m.pfn + nr - 1) !== zone) {
      // hugetlb_bootmem_free_invalid_page(): a page spanning zones goes to the buddy allocator.
      mm.frames.flags.fill(0, m.pfn, m.pfn + nr);
      for (let p = m.pfn; p < m.pfn + nr; p += 1 << MAX_PAGE_ORDER) __free_pages_core(mm, p, MAX_PAGE_ORDER);
      m.h.max_huge_pages--;
      continue;
    }
    const f = mm.frames;
    for (let p = m.pfn; p < m.pfn + nr; p++) f.flags[p] = (f.flags[p] & ~PG_reserved) | PG_hugetlb | PG_tail;
    f.flags[m.pfn] = (f.flags[m.pfn] & ~PG_tail) | PG_head | PGI_alloc;
    f.order[m.pfn] = m.h.order;
    // adjust_managed_page_count()
    zone.managed_pages += nr;
    mm.totalram_pages += nr;
    account_new_hugetlb_folio(m.h, zone.nid);
    enqueue_hugetlb_folio(m.h, m.pfn, zone.nid);
  }
  st.huge_boot_pages.length = 0;
  // report_hugepages(): printed only when the command line asked for hugetlb pages or
  // something went wrong, to keep the model's kernel log free of boot noise otherwise.
  if (st.bootlog.length || st.hstates.some((h) => h.nr_huge_pages))
    for (const h of st.hstates)
      st.bootlog.push(
        `HugeTLB: registered ${size_string(h)} page size, pre-allocated ${h.nr_huge_pages} pages`,
      );
  mm.klog.push(...st.bootlog);
  st.bootlog.length = 0;
}

// kernel: mm/hugetlb.c hugetlb_hstate_alloc_pages() for a non-gigantic hstate
function hugetlb_hstate_alloc_pages(mm: MM, h: Hstate, nodes: number[]): void {
  if (!h.max_huge_pages) return;
  let specific = false;
  for (const nid of nodes) {
    if (h.max_huge_pages_node[nid] <= 0) continue;
    specific = true;
    let i = 0;
    for (; i < h.max_huge_pages_node[nid]; i++) {
      const pfn = only_alloc_fresh_hugetlb_folio(mm, h, htlb_alloc_mask(h) | __GFP_THISNODE, nid, null);
      if (pfn < 0) break;
      prep_and_add_allocated_folio(mm, h, pfn);
    }
    if (i < h.max_huge_pages_node[nid]) {
      mm.hugetlb.bootlog.push(
        `HugeTLB: allocating ${h.max_huge_pages_node[nid]} of page size ${size_string(h)} failed node${nid}.  Only allocated ${i} hugepages.`,
      );
      h.max_huge_pages -= h.max_huge_pages_node[nid] - i;
      h.max_huge_pages_node[nid] = i;
    }
  }
  if (specific) return;
  // hugetlb_pages_alloc_boot(): one pass (no vmemmap optimisation to retry for).
  const noretry = new Uint8Array(mm.nodes.length);
  const next = { nid: nodes[0] ?? 0 };
  while (h.nr_huge_pages < h.max_huge_pages) {
    const pfn = alloc_pool_huge_folio(mm, h, nodes, noretry, next);
    if (pfn < 0) break;
    prep_and_add_allocated_folio(mm, h, pfn);
  }
  hugetlb_hstate_alloc_pages_errcheck(mm.hugetlb, h.nr_huge_pages, h);
}

// ---------------------------------------------------------------------------------------------
// Allocating and freeing pool pages.

/** hstate_next_node_to_alloc()/_free(): the saved node if allowed, advancing round-robin. */
function hstate_next_node_to_alloc(
  h: Hstate | { nid: number },
  key: 'next_nid_to_alloc' | 'next_nid_to_free' | 'nid',
  allowed: readonly number[],
): number {
  const o = h as Record<string, number>;
  let nid = o[key];
  // get_valid_node_allowed(), next_node_allowed(): next_node_in() wraps around the mask.
  if (!allowed.includes(nid)) nid = allowed.find((n) => n > nid) ?? allowed[0];
  o[key] = allowed.find((n) => n > nid) ?? allowed[0];
  return nid;
}

/**
 * kernel: mm/hugetlb.c alloc_buddy_hugetlb_folio()
 * Try hard (__GFP_RETRY_MAYFAIL) unless an earlier try-hard attempt on this node failed during
 * this resize (node_alloc_noretry); update that bitmap; count htlb_buddy_alloc_success/fail.
 */
function alloc_buddy_hugetlb_folio(
  mm: MM,
  order: number,
  gfp: number,
  nid: number,
  noretry: Uint8Array | null,
): number {
  const try_hard = !noretry?.[nid];
  if (try_hard) gfp |= __GFP_RETRY_MAYFAIL;
  const cpu = mm.nodes[nid].cpus[0] ?? 0;
  const pfn = __alloc_pages(mm, gfp, order, nid, cpu);
  if (noretry && pfn >= 0 && !try_hard) noretry[nid] = 0;
  if (noretry && pfn < 0 && try_hard) noretry[nid] = 1;
  if (pfn < 0) {
    mm.vm_events[HTLB_BUDDY_PGALLOC_FAIL]++;
    return -1;
  }
  mm.vm_events[HTLB_BUDDY_PGALLOC]++;
  return pfn;
}

/** The "hugetlb<nid>" CMA area of hugetlb_cma=, if the machine has one (mm.cma_areas). */
function hugetlb_cma_area(mm: MM, nid: number): ReturnType<typeof cma_by_name> {
  return (mm as { cma_areas?: unknown[] }).cma_areas ? cma_by_name(mm, `hugetlb${nid}`) : undefined;
}

/** hugetlb_cma_total_size() != 0: some node has a hugetlb CMA area. */
export function hugetlb_cma_enabled(mm: MM): boolean {
  return mm.nodes.some((n) => hugetlb_cma_area(mm, n.node_id) !== undefined);
}

/**
 * kernel: mm/hugetlb_cma.c hugetlb_cma_alloc_folio()
 * From node `nid`'s hugetlb CMA area, then (without __GFP_THISNODE) the other allowed nodes'.
 */
function hugetlb_cma_alloc_folio(
  mm: MM,
  order: number,
  gfp: number,
  nid: number,
  nodemask: readonly number[] | null,
): number {
  let pfn = cma_alloc_folio_quiet(mm, hugetlb_cma_area(mm, nid), order, gfp);
  if (pfn >= 0 || gfp & __GFP_THISNODE) return pfn;
  for (const n of mm.nodes) {
    if (n.node_id === nid || (nodemask && !nodemask.includes(n.node_id))) continue;
    pfn = cma_alloc_folio_quiet(mm, hugetlb_cma_area(mm, n.node_id), order, gfp);
    if (pfn >= 0) return pfn;
  }
  return -1;
}

function cma_alloc_folio_quiet(
  mm: MM,
  cma: ReturnType<typeof cma_by_name>,
  order: number,
  gfp: number,
): number {
  return cma ? cma_alloc_folio(mm, cma, order, gfp) : -1;
}

/**
 * kernel: mm/hugetlb.c alloc_gigantic_folio()
 * hugetlb_cma first where configured, then (unless hugetlb_cma_only, not modelled: off)
 * folio_alloc_gigantic() = alloc_contig_pages(1 << order, gfp | __GFP_COMP, nid, nodemask).
 */
function alloc_gigantic_folio(
  mm: MM,
  order: number,
  gfp: number,
  nid: number,
  nodemask: readonly number[] | null,
): number {
  const pfn = hugetlb_cma_alloc_folio(mm, order, gfp | __GFP_COMP, nid, nodemask);
  if (pfn >= 0) return pfn;
  return alloc_contig_pages(mm, 2 ** order, gfp | __GFP_COMP, nid, nodemask);
}

/**
 * kernel: mm/hugetlb.c only_alloc_fresh_hugetlb_folio() + init_new_hugetlb_folio()
 * A new compound page of the hstate's order with PG_hugetlb on every page; -1 if none.
 */
export function only_alloc_fresh_hugetlb_folio(
  mm: MM,
  h: Hstate,
  gfp: number,
  nid: number,
  nodemask: readonly number[] | null,
  noretry: Uint8Array | null = null,
): number {
  const pfn = hstate_is_gigantic(h)
    ? alloc_gigantic_folio(mm, h.order, gfp, nid, nodemask)
    : alloc_buddy_hugetlb_folio(mm, h.order, gfp, nid, noretry);
  if (pfn < 0) return -1;
  const f = mm.frames;
  const end = pfn + pages_per_huge_page(h);
  for (let p = pfn; p < end; p++) f.flags[p] |= PG_hugetlb;
  return pfn;
}

/** prep_and_add_allocated_folios() for one folio: count it and put it on its node's free list. */
function prep_and_add_allocated_folio(mm: MM, h: Hstate, pfn: number): void {
  const nid = mm.page_zone(pfn)!.nid;
  account_new_hugetlb_folio(h, nid);
  enqueue_hugetlb_folio(h, pfn, nid);
}

/**
 * A hugetlb folio found already in place (a snapshot's import): `pfn` heads an allocated compound
 * page of h's order with PG_hugetlb on every page; it joins the pool, free.
 */
export function hugetlb_adopt_folio(mm: MM, h: Hstate, pfn: number): void {
  prep_and_add_allocated_folio(mm, h, pfn);
}

// kernel: mm/hugetlb.c account_new_hugetlb_folio()
function account_new_hugetlb_folio(h: Hstate, nid: number): void {
  h.nr_huge_pages++;
  h.nr_huge_pages_node[nid]++;
}

// kernel: mm/hugetlb.c enqueue_hugetlb_folio()
function enqueue_hugetlb_folio(h: Hstate, pfn: number, nid: number): void {
  h.hugepage_freelists[nid].push(pfn);
  h.freed.add(pfn);
  h.free_huge_pages++;
  h.free_huge_pages_node[nid]++;
}

/**
 * kernel: mm/hugetlb.c alloc_pool_huge_folio()
 * A fresh page for the pool, trying the allowed nodes round-robin from *next_node with
 * __GFP_THISNODE; the first success wins.
 */
export function alloc_pool_huge_folio(
  mm: MM,
  h: Hstate,
  nodes_allowed: readonly number[],
  noretry: Uint8Array,
  next_node: { nid: number },
): number {
  const gfp = htlb_alloc_mask(h) | __GFP_THISNODE;
  for (let n = nodes_allowed.length; n > 0; n--) {
    const node = hstate_next_node_to_alloc(next_node, 'nid', nodes_allowed);
    const pfn = only_alloc_fresh_hugetlb_folio(mm, h, gfp, node, nodes_allowed, noretry);
    if (pfn >= 0) return pfn;
  }
  return -1;
}

/**
 * kernel: mm/hugetlb.c remove_hugetlb_folio(): out of the pool's counts (and its free list if
 * it is free); surplus counts drop too with `adjust_surplus`.
 */
function remove_hugetlb_folio(mm: MM, h: Hstate, pfn: number, adjust_surplus: boolean, free: boolean): void {
  const nid = mm.page_zone(pfn)!.nid;
  if (free) {
    const list = h.hugepage_freelists[nid];
    const i = list.lastIndexOf(pfn);
    if (i < 0) throw new Error(`BUG: hugetlb page ${pfn} is not on its node's free list`);
    list.splice(i, 1);
    h.freed.delete(pfn);
    h.free_huge_pages--;
    h.free_huge_pages_node[nid]--;
  }
  if (adjust_surplus) {
    h.surplus_huge_pages--;
    h.surplus_huge_pages_node[nid]--;
  }
  h.nr_huge_pages--;
  h.nr_huge_pages_node[nid]--;
}

/**
 * kernel: mm/hugetlb.c update_and_free_hugetlb_folio()
 * Back to the page allocator: PG_hugetlb cleared, the compound page freed whole (a gigantic one
 * is split into MAX_PAGE_ORDER blocks by the buddy's free path).
 */
function update_and_free_hugetlb_folio(mm: MM, h: Hstate, pfn: number, cpu: number): void {
  const f = mm.frames;
  const end = pfn + pages_per_huge_page(h);
  for (let p = pfn; p < end; p++) f.flags[p] &= ~PG_hugetlb;
  f.mapping[pfn] = 0;
  f.index[pfn] = 0;
  // hugetlb_free_folio(): a page from hugetlb CMA goes back to its area.
  if (hstate_is_gigantic(h)) {
    const cma = hugetlb_cma_area(mm, mm.page_zone(pfn)!.nid);
    if (cma && cma_pages_valid(cma, pfn, pages_per_huge_page(h))) {
      cma_free_folio(mm, cma, pfn, h.order, cpu);
      return;
    }
  }
  __free_pages(mm, pfn, h.order, cpu);
}

/** The hstate a hugetlb head belongs to (folio_hstate()). */
export function folio_hstate(mm: MM, pfn: number): Hstate {
  const order = mm.frames.order[pfn];
  return mm.hugetlb.hstates.find((h) => h.order === order)!;
}

/**
 * kernel: mm/hugetlb.c free_huge_folio()
 * The last user let go: `restore_reserve` gives back the reservation it consumed (a page that
 * was never instantiated); then a page of a node with surplus pages leaves the pool for the
 * page allocator, any other goes back on its node's free list.
 */
export function free_huge_folio(mm: MM, pfn: number, cpu: number, restore_reserve = false): void {
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_HUGETLB] -= pages_per_huge_page(folio_hstate(mm, pfn));
  __free_huge_folio(mm, pfn, cpu, restore_reserve);
}

/** free_huge_folio() of a page never counted in NR_HUGETLB (gather_surplus_pages()'s extras). */
function __free_huge_folio(mm: MM, pfn: number, cpu: number, restore_reserve: boolean): void {
  const h = folio_hstate(mm, pfn);
  const nid = mm.page_zone(pfn)!.nid;
  const f = mm.frames;
  f.mapping[pfn] = 0;
  f.index[pfn] = 0;
  if (restore_reserve) h.resv_huge_pages++;
  if (mm.hugetlb.temporary.delete(pfn)) {
    // A migration's temporary page (now the source it replaced) leaves the pool at once.
    remove_hugetlb_folio(mm, h, pfn, false, false);
    update_and_free_hugetlb_folio(mm, h, pfn, cpu);
  } else if (h.surplus_huge_pages_node[nid]) {
    remove_hugetlb_folio(mm, h, pfn, true, false);
    update_and_free_hugetlb_folio(mm, h, pfn, cpu);
  } else {
    enqueue_hugetlb_folio(h, pfn, nid);
  }
}

/**
 * kernel: mm/hugetlb.c dequeue_hugetlb_folio_node_exact() over the node's zonelist
 * (dequeue_hugetlb_folio_nodemask()): the first free page, head of the list first, skipping pages
 * in isolated pageblocks.
 */
function dequeue_hugetlb_folio_nodemask(mm: MM, h: Hstate, nid: number): number {
  const seen = new Set<number>();
  for (const id of mm.nodes[nid].zonelist_fallback) {
    const node = mm.zones[id].nid;
    if (seen.has(node)) continue;
    seen.add(node);
    const list = h.hugepage_freelists[node];
    for (let i = list.length - 1; i >= 0; i--) {
      const pfn = list[i];
      if (get_pageblock_isolate(mm, pfn)) continue; // is_migrate_isolate_page()
      list.splice(i, 1);
      h.freed.delete(pfn);
      h.free_huge_pages--;
      h.free_huge_pages_node[node]--;
      return pfn;
    }
  }
  return -1;
}

/**
 * kernel: mm/hugetlb.c alloc_surplus_hugetlb_folio()
 * A page beyond the persistent pool, while surplus_huge_pages < nr_overcommit_hugepages (never
 * for gigantic hstates); it is counted in the pool and as surplus, and is in use (not free).
 */
export function alloc_surplus_hugetlb_folio(mm: MM, h: Hstate, nid: number): number {
  if (hstate_is_gigantic(h)) return -1;
  if (h.surplus_huge_pages >= h.nr_overcommit_huge_pages) return -1;
  const pfn = only_alloc_fresh_hugetlb_folio(mm, h, htlb_alloc_mask(h), nid, null);
  if (pfn < 0) return -1;
  const node = mm.page_zone(pfn)!.nid;
  account_new_hugetlb_folio(h, node);
  h.surplus_huge_pages++;
  h.surplus_huge_pages_node[node]++;
  return pfn;
}

/**
 * kernel: mm/hugetlb.c alloc_hugetlb_folio(), the pool part
 * A page for a fault at node `nid`: from the free pool (with `gbl_chg` — no reservation — only
 * while free pages exceed reservations), else a surplus page; a reserved allocation consumes
 * its reservation. Counted in NR_HUGETLB while in use. -1 (the kernel's -ENOSPC) if none.
 */
export function alloc_hugetlb_folio(mm: MM, h: Hstate, gbl_chg: boolean, nid: number): number {
  let pfn = -1;
  if (!gbl_chg || available_huge_pages(h) > 0) pfn = dequeue_hugetlb_folio_nodemask(mm, h, nid);
  if (pfn < 0) pfn = alloc_surplus_hugetlb_folio(mm, h, nid);
  if (pfn < 0) return -1;
  if (!gbl_chg) h.resv_huge_pages--;
  mm.nodes[mm.page_zone(pfn)!.nid].vm_stat[NR_HUGETLB] += pages_per_huge_page(h);
  return pfn;
}

/**
 * kernel: mm/hugetlb.c gather_surplus_pages()
 * Reserve `delta` more pages: when free pages do not cover resv + delta, allocate the shortfall
 * as surplus pages (current node first) and put them in the pool; all or nothing (-ENOMEM).
 */
function gather_surplus_pages(mm: MM, h: Hstate, delta: number, nid: number): number {
  let needed = h.resv_huge_pages + delta - h.free_huge_pages;
  if (needed <= 0) {
    h.resv_huge_pages += delta;
    return 0;
  }
  const surplus: number[] = [];
  let alloc_ok = true;
  for (;;) {
    for (let i = 0; i < needed; i++) {
      const pfn = alloc_surplus_hugetlb_folio(mm, h, nid);
      if (pfn < 0) {
        alloc_ok = false;
        break;
      }
      surplus.push(pfn);
    }
    needed = h.resv_huge_pages + delta - (h.free_huge_pages + surplus.length);
    if (needed > 0 && alloc_ok) continue;
    break;
  }
  let ret = ENOMEM;
  let keep = 0;
  if (needed <= 0) {
    needed += surplus.length;
    h.resv_huge_pages += delta;
    ret = 0;
    keep = Math.min(needed, surplus.length);
    for (let i = 0; i < keep; i++) enqueue_hugetlb_folio(h, surplus[i], mm.page_zone(surplus[i])!.nid);
  }
  // The rest go back: free_huge_folio() on a surplus node frees them to the buddy allocator.
  for (let i = keep; i < surplus.length; i++)
    __free_huge_folio(mm, surplus[i], mm.nodes[nid].cpus[0] ?? 0, false);
  return ret;
}

/**
 * kernel: mm/hugetlb.c return_unused_surplus_pages()
 * Drop `unused` reservations and free up to as many free surplus pages.
 */
function return_unused_surplus_pages(mm: MM, h: Hstate, unused: number, cpu: number): void {
  h.resv_huge_pages -= unused;
  let nr = Math.min(unused, h.surplus_huge_pages);
  const nodes = mm.nodes.map((n) => n.node_id);
  while (nr-- > 0) {
    const pfn = remove_pool_hugetlb_folio(mm, h, nodes, true);
    if (pfn < 0) break;
    update_and_free_hugetlb_folio(mm, h, pfn, cpu);
  }
}

/**
 * kernel: mm/hugetlb.c hugetlb_acct_memory()
 * Reserve (delta > 0: gather_surplus_pages(), then the pages must fit the free pages of the
 * allowed nodes) or unreserve (delta < 0). 0 or -ENOMEM.
 */
export function hugetlb_acct_memory(mm: MM, h: Hstate, delta: number, nid: number, cpu: number): number {
  if (!delta) return 0;
  if (delta > 0) {
    if (gather_surplus_pages(mm, h, delta, nid) < 0) return ENOMEM;
    // allowed_mems_nr(): no cpusets or mbind policies, so every node's free pages.
    if (delta > h.free_huge_pages) {
      return_unused_surplus_pages(mm, h, delta, cpu);
      return ENOMEM;
    }
    return 0;
  }
  return_unused_surplus_pages(mm, h, -delta, cpu);
  return 0;
}

/**
 * kernel: mm/hugetlb.c remove_pool_hugetlb_folio()
 * Take a free page off the next node (round-robin from next_nid_to_free) that has one — with
 * `acct_surplus` only from nodes with surplus pages — out of the pool; -1 if none.
 */
function remove_pool_hugetlb_folio(
  mm: MM,
  h: Hstate,
  nodes_allowed: readonly number[],
  acct_surplus: boolean,
): number {
  for (let n = nodes_allowed.length; n > 0; n--) {
    const node = hstate_next_node_to_alloc(h, 'next_nid_to_free', nodes_allowed);
    const list = h.hugepage_freelists[node];
    if ((!acct_surplus || h.surplus_huge_pages_node[node]) && list.length) {
      const pfn = list[list.length - 1];
      remove_hugetlb_folio(mm, h, pfn, acct_surplus, true);
      return pfn;
    }
  }
  return -1;
}

// kernel: mm/hugetlb.c adjust_pool_surplus()
function adjust_pool_surplus(h: Hstate, nodes_allowed: readonly number[], delta: number): boolean {
  for (let n = nodes_allowed.length; n > 0; n--) {
    const node =
      delta < 0
        ? hstate_next_node_to_alloc(h, 'next_nid_to_alloc', nodes_allowed)
        : hstate_next_node_to_alloc(h, 'next_nid_to_free', nodes_allowed);
    if (
      delta < 0
        ? h.surplus_huge_pages_node[node] > 0
        : h.surplus_huge_pages_node[node] < h.nr_huge_pages_node[node]
    ) {
      h.surplus_huge_pages += delta;
      h.surplus_huge_pages_node[node] += delta;
      return true;
    }
  }
  return false;
}

/**
 * kernel: mm/hugetlb.c set_max_huge_pages()
 * Resize the persistent pool to `count` (for node `nid` only, if not NUMA_NO_NODE): surplus
 * pages become persistent first, then fresh pages are allocated node by node until one cannot
 * be had (no error: the pool is simply smaller, as on Linux); shrinking frees free pages down
 * to what reservations and in-use pages allow and marks the rest surplus. Returns 0 or -errno;
 * `signal_pending` is asked after each page, as the kernel checks for a ctrl-C.
 */
export function set_max_huge_pages(
  mm: MM,
  h: Hstate,
  count: number,
  nid: number,
  nodes_allowed: readonly number[],
  cpu = 0,
  signal_pending: (() => boolean) | null = null,
): number {
  const noretry = new Uint8Array(mm.nodes.length);
  if (nid !== NUMA_NO_NODE) {
    const old = count;
    count += persistent_huge_pages(h) - (h.nr_huge_pages_node[nid] - h.surplus_huge_pages_node[nid]);
    if (count < old || count > Number.MAX_SAFE_INTEGER) count = Number.MAX_SAFE_INTEGER;
  }
  while (h.surplus_huge_pages && count > persistent_huge_pages(h)) {
    if (!adjust_pool_surplus(h, nodes_allowed, -1)) break;
  }
  const next = { nid: h.next_nid_to_alloc };
  const allocated: number[] = [];
  let out = false;
  while (count > persistent_huge_pages(h) + allocated.length) {
    // The kernel drops its locks and cond_resched()s here: kswapd and kcompactd run meanwhile,
    // and the pool may change under it.
    mm.sched?.cond_resched();
    const pfn = alloc_pool_huge_folio(mm, h, nodes_allowed, noretry, next);
    h.next_nid_to_alloc = next.nid;
    if (pfn < 0) {
      out = true;
      break;
    }
    allocated.push(pfn);
    if (signal_pending?.()) {
      out = true;
      break;
    }
  }
  for (const pfn of allocated) prep_and_add_allocated_folio(mm, h, pfn);
  if (!out) {
    let persistent_free_count = h.free_huge_pages;
    if (h.free_huge_pages > persistent_huge_pages(h)) {
      if (h.free_huge_pages > h.surplus_huge_pages) persistent_free_count -= h.surplus_huge_pages;
      else persistent_free_count = 0;
    }
    let min_count = h.resv_huge_pages + persistent_huge_pages(h) - persistent_free_count;
    min_count = Math.max(count, min_count);
    const freeing: number[] = [];
    while (min_count < persistent_huge_pages(h)) {
      const pfn = remove_pool_hugetlb_folio(mm, h, nodes_allowed, false);
      if (pfn < 0) break;
      freeing.push(pfn);
    }
    for (const pfn of freeing) update_and_free_hugetlb_folio(mm, h, pfn, cpu);
    while (count < persistent_huge_pages(h)) {
      if (!adjust_pool_surplus(h, nodes_allowed, 1)) break;
    }
  }
  h.max_huge_pages = persistent_huge_pages(h);
  return 0;
}

/**
 * kernel: mm/hugetlb.c __nr_hugepages_store_common()
 * A write of `count` to nr_hugepages (node `nid`'s file, or the global one): every node with
 * memory, or just `nid`. mempolicies are not modelled, so obey_mempolicy changes nothing.
 */
export function __nr_hugepages_store_common(
  mm: MM,
  _obey_mempolicy: boolean,
  h: Hstate,
  nid: number,
  count: number,
): number {
  const nodes =
    nid === NUMA_NO_NODE
      ? mm.nodes.filter((n) => n.node_zones.some((z) => z.present_pages > 0)).map((n) => n.node_id)
      : [nid];
  if (!nodes.length) return EINVAL;
  return set_max_huge_pages(mm, h, count, nid, nodes);
}

// ---------------------------------------------------------------------------------------------
// Migration and dissolving: what alloc_contig_range() does to pool pages in its range.

/** folio_test_hugetlb_freed(): a free pool page (on its node's free list, refcount 0). */
function folio_test_hugetlb_freed(h: Hstate, pfn: number): boolean {
  return h.freed.has(pfn);
}

/**
 * kernel: mm/hugetlb.c folio_isolate_hugetlb()
 * Take an in-use pool page for migration (it loses hugetlb_migratable until put back). False for
 * a page that is not hugetlb, is free (folio_try_get() fails on refcount 0) or is isolated.
 */
export function folio_isolate_hugetlb(mm: MM, pfn: number): boolean {
  const fl = mm.frames.flags[pfn];
  if (!(fl & PG_hugetlb) || !(fl & PG_head) || mm.hugetlb.isolated.has(pfn)) return false;
  if (folio_test_hugetlb_freed(folio_hstate(mm, pfn), pfn)) return false;
  mm.hugetlb.isolated.add(pfn);
  return true;
}

/** kernel: mm/hugetlb.c folio_putback_hugetlb(): migratable again (the isolation reference put). */
export function folio_putback_hugetlb(mm: MM, pfn: number): void {
  mm.hugetlb.isolated.delete(pfn);
}

/**
 * kernel: mm/hugetlb.c alloc_and_dissolve_hugetlb_folio()
 * Replace the free pool page `old` with a fresh one of the same node (__GFP_THISNODE) and give
 * `old` back to the page allocator, so that the pool keeps its size; -ENOMEM if no fresh page.
 * A page in use meanwhile is isolated instead (0), or -EBUSY if it cannot be; one no longer
 * hugetlb needs nothing (0).
 */
function alloc_and_dissolve_hugetlb_folio(mm: MM, old: number, cpu: number): number {
  if (!(mm.frames.flags[old] & PG_hugetlb)) return 0;
  const h = folio_hstate(mm, old);
  if (!folio_test_hugetlb_freed(h, old)) return folio_isolate_hugetlb(mm, old) ? 0 : EBUSY;
  const nid = mm.page_zone(old)!.nid;
  const dst = only_alloc_fresh_hugetlb_folio(mm, h, htlb_alloc_mask(h) | __GFP_THISNODE, nid, null);
  if (dst < 0) return ENOMEM;
  // The allocation may have reclaimed or compacted: the kernel rechecks under the lock (retry:).
  if (!(mm.frames.flags[old] & PG_hugetlb) || !folio_test_hugetlb_freed(h, old)) {
    update_and_free_hugetlb_folio(mm, h, dst, cpu);
    return alloc_and_dissolve_hugetlb_folio(mm, old, cpu);
  }
  remove_hugetlb_folio(mm, h, old, false, true);
  const dnid = mm.page_zone(dst)!.nid;
  account_new_hugetlb_folio(h, dnid);
  enqueue_hugetlb_folio(h, dst, dnid);
  update_and_free_hugetlb_folio(mm, h, old, cpu);
  return 0;
}

/**
 * kernel: mm/hugetlb.c isolate_or_dissolve_huge_folio()
 * For alloc_contig_range()'s scanner, a hugetlb head `pfn`: -ENOMEM for a gigantic page (the
 * kernel fences them off so that the caller bails out at once: alloc_contig_range would need
 * another gigantic page to replace it), an in-use page isolated for migration (0; the caller
 * lists it while it is still PageHuge), a free one dissolved (0, its pages now free buddy pages
 * in the isolated range), -EBUSY when it is already isolated, -ENOMEM if no replacement exists.
 */
export function isolate_or_dissolve_huge_folio(mm: MM, pfn: number, cpu: number): number {
  if (!(mm.frames.flags[pfn] & PG_hugetlb)) return 0;
  const h = folio_hstate(mm, pfn);
  if (hstate_is_gigantic(h)) return ENOMEM;
  if (!folio_test_hugetlb_freed(h, pfn)) return folio_isolate_hugetlb(mm, pfn) ? 0 : EBUSY;
  return alloc_and_dissolve_hugetlb_folio(mm, pfn, cpu);
}

/**
 * kernel: mm/hugetlb.c replace_free_hugepage_folios()
 * After migration, the free pool pages in [start_pfn, end_pfn) (migrated pages went back to the
 * pool there) are dissolved and replaced from outside the range. 0 or the first error.
 */
export function replace_free_hugepage_folios(
  mm: MM,
  start_pfn: number,
  end_pfn: number,
  cpu: number,
): number {
  const f = mm.frames;
  while (start_pfn < end_pfn) {
    if (f.flags[start_pfn] & PG_hugetlb) {
      const head = compound_head(mm, start_pfn);
      const h = folio_hstate(mm, head);
      if (folio_test_hugetlb_freed(h, head)) {
        const ret = alloc_and_dissolve_hugetlb_folio(mm, head, cpu);
        if (ret) return ret;
        continue;
      }
      // In use: nothing to do for any of its pages.
      start_pfn = head + pages_per_huge_page(h);
      continue;
    }
    start_pfn++;
  }
  return 0;
}

/**
 * kernel: mm/hugetlb.c alloc_migrate_hugetlb_folio()
 * A fresh page that joins the pool only while the migration needs it (hugetlb_temporary, never
 * counted as surplus); never gigantic.
 */
function alloc_migrate_hugetlb_folio(mm: MM, h: Hstate, gfp: number, nid: number): number {
  if (hstate_is_gigantic(h)) return -1;
  const pfn = only_alloc_fresh_hugetlb_folio(mm, h, gfp, nid, null);
  if (pfn < 0) return -1;
  account_new_hugetlb_folio(h, mm.page_zone(pfn)!.nid);
  mm.hugetlb.temporary.add(pfn);
  return pfn;
}

/**
 * kernel: mm/hugetlb.c alloc_hugetlb_folio_nodemask() (the migration target callback)
 * A free pool page beyond the reservations (outside isolated pageblocks), else a temporary fresh
 * one; __GFP_THISNODE unless `allow_alloc_fallback` (htlb_allow_alloc_fallback(): memory
 * hotplug, memory failure, move_pages/mbind; not MR_CONTIG_RANGE). -1 if none.
 */
export function alloc_hugetlb_folio_nodemask(
  mm: MM,
  h: Hstate,
  preferred_nid: number,
  gfp_mask: number,
  allow_alloc_fallback: boolean,
): number {
  if (available_huge_pages(h)) {
    const pfn = dequeue_hugetlb_folio_nodemask(mm, h, preferred_nid);
    if (pfn >= 0) return pfn;
  }
  if (!allow_alloc_fallback) gfp_mask |= __GFP_THISNODE;
  return alloc_migrate_hugetlb_folio(mm, h, gfp_mask, preferred_nid);
}

/**
 * kernel: mm/hugetlb.c move_hugetlb_state()
 * After a migration: a temporary target hands its temporary state to the source (which will be
 * freed, and then leaves the pool), with a node's surplus count when they cross nodes.
 */
export function move_hugetlb_state(mm: MM, old: number, dst: number): void {
  const st = mm.hugetlb;
  if (!st.temporary.delete(dst)) return;
  st.temporary.add(old);
  const h = folio_hstate(mm, old);
  const old_nid = mm.page_zone(old)!.nid;
  const new_nid = mm.page_zone(dst)!.nid;
  if (new_nid === old_nid) return;
  if (h.surplus_huge_pages_node[old_nid]) {
    h.surplus_huge_pages_node[old_nid]--;
    h.surplus_huge_pages_node[new_nid]++;
  }
}

/**
 * The last reference to a migration source or an unused migration target: free_huge_folio()
 * without the NR_HUGETLB update. The kernel's free_huge_folio() subtracts the page from
 * NR_HUGETLB although alloc_hugetlb_folio_nodemask() never added the target; the model moves the
 * in-use count from source to target instead (docs/decisions.md).
 */
export function folio_put_hugetlb_migrated(mm: MM, pfn: number, cpu: number): void {
  __free_huge_folio(mm, pfn, cpu, false);
}

/** The in-use page count NR_HUGETLB follows a migrated page from `old`'s node to `dst`'s. */
export function hugetlb_migrate_nr_hugetlb(mm: MM, old: number, dst: number): void {
  const nr = pages_per_huge_page(folio_hstate(mm, old));
  mm.nodes[mm.page_zone(old)!.nid].vm_stat[NR_HUGETLB] -= nr;
  mm.nodes[mm.page_zone(dst)!.nid].vm_stat[NR_HUGETLB] += nr;
}

/** kernel: mm/hugetlb.c hugetlb_total_pages(): pages in all pools. */
export function hugetlb_total_pages(mm: MM): number {
  let n = 0;
  for (const h of mm.hugetlb.hstates) n += h.nr_huge_pages * pages_per_huge_page(h);
  return n;
}

/**
 * The pools agree with the frame table: per hstate and node, nr/free/surplus counts equal the
 * PG_hugetlb heads of that order, the free-list entries, and at most the pool; free pool pages
 * are allocated blocks (never on buddy lists), flagged hugetlb on every page, unmapped;
 * resv <= free; surplus <= nr.
 */
export function hugetlb_check(mm: MM): string[] {
  const errors: string[] = [];
  const st = mm.hugetlb;
  const f = mm.frames;
  const heads = new Map<number, Int32Array>();
  for (const h of st.hstates) heads.set(h.order, new Int32Array(mm.nodes.length));
  for (let pfn = 0; pfn < f.nr_frames; pfn++) {
    const fl = f.flags[pfn];
    if (!(fl & PG_hugetlb)) continue;
    if (!(fl & PG_head) || !(fl & PGI_alloc)) {
      if (!(fl & PG_tail)) errors.push(`pfn ${pfn}: PG_hugetlb on a page outside a compound page`);
      continue;
    }
    const per = heads.get(f.order[pfn]);
    if (!per) {
      errors.push(`pfn ${pfn}: hugetlb page of order ${f.order[pfn]} has no hstate`);
      continue;
    }
    per[mm.page_zone(pfn)!.nid]++;
    const end = pfn + 2 ** f.order[pfn];
    for (let p = pfn + 1; p < end; p++)
      if (!(f.flags[p] & PG_hugetlb) || f.flags[p] & PG_buddy) {
        errors.push(`pfn ${p}: tail of hugetlb page ${pfn} lacks PG_hugetlb or is free`);
        break;
      }
    pfn = end - 1;
  }
  for (const pfn of st.isolated)
    if (!(f.flags[pfn] & PG_hugetlb) || !(f.flags[pfn] & PG_head) || f.flags[pfn] & PG_buddy)
      errors.push(`pfn ${pfn}: isolated for migration but not an in-use hugetlb page`);
  for (const pfn of st.temporary)
    if (!(f.flags[pfn] & PG_hugetlb) || !(f.flags[pfn] & PG_head))
      errors.push(`pfn ${pfn}: hugetlb_temporary but not a hugetlb page`);
  for (const h of st.hstates) {
    const per = heads.get(h.order)!;
    let nr = 0;
    let free = 0;
    let surplus = 0;
    for (let nid = 0; nid < mm.nodes.length; nid++) {
      const list = h.hugepage_freelists[nid];
      if (per[nid] !== h.nr_huge_pages_node[nid])
        errors.push(
          `${h.name} node ${nid}: nr_huge_pages ${h.nr_huge_pages_node[nid]} but ${per[nid]} pages`,
        );
      if (list.length !== h.free_huge_pages_node[nid])
        errors.push(
          `${h.name} node ${nid}: free_huge_pages ${h.free_huge_pages_node[nid]} but ${list.length} listed`,
        );
      for (const pfn of list) {
        if (!(f.flags[pfn] & PG_hugetlb) || !(f.flags[pfn] & PGI_alloc) || f.order[pfn] !== h.order)
          errors.push(`${h.name}: free pool entry ${pfn} is not a hugetlb page of order ${h.order}`);
        else if (mm.page_zone(pfn)!.nid !== nid)
          errors.push(`${h.name}: pfn ${pfn} on node ${nid}'s free list`);
        if (f.mapcount[pfn] !== 0) errors.push(`${h.name}: free pool page ${pfn} is mapped`);
        if (!h.freed.has(pfn)) errors.push(`${h.name}: free pool page ${pfn} not marked freed`);
      }
      if (h.surplus_huge_pages_node[nid] < 0 || h.surplus_huge_pages_node[nid] > h.nr_huge_pages_node[nid])
        errors.push(
          `${h.name} node ${nid}: surplus ${h.surplus_huge_pages_node[nid]} of ${h.nr_huge_pages_node[nid]}`,
        );
      nr += h.nr_huge_pages_node[nid];
      free += h.free_huge_pages_node[nid];
      surplus += h.surplus_huge_pages_node[nid];
    }
    if (h.freed.size !== free) errors.push(`${h.name}: ${h.freed.size} pages marked freed, ${free} listed`);
    if (nr !== h.nr_huge_pages || free !== h.free_huge_pages || surplus !== h.surplus_huge_pages)
      errors.push(
        `${h.name}: global counts ${h.nr_huge_pages}/${h.free_huge_pages}/${h.surplus_huge_pages} but nodes sum to ${nr}/${free}/${surplus}`,
      );
    if (h.resv_huge_pages < 0 || h.resv_huge_pages > h.free_huge_pages)
      errors.push(`${h.name}: resv_huge_pages ${h.resv_huge_pages} with ${h.free_huge_pages} free`);
  }
  return errors;
}
