/**
 * Parsers of the text files a snapshot holds, as the kernel prints them (mm/vmstat.c, fs/proc,
 * mm/slub.c, mm/hugetlb_sysfs.c). Each takes the file's text and the file's path in the snapshot,
 * and throws one SnapshotError naming the file and line for anything it does not understand.
 * Formats older than 6.18 (no promo/cma lines, no pagesets high_min/high_max, 4.x zoneinfo) parse
 * too: absent fields are undefined.
 */
import { SnapshotError } from './manifest.ts';

/** Lines of a file, without a trailing empty line. */
function lines(text: string): string[] {
  const ls = text.split('\n');
  if (ls.length > 0 && ls[ls.length - 1] === '') ls.pop();
  return ls;
}

function num(file: string, line: number, s: string, what: string): number {
  if (!/^-?\d+$/.test(s)) throw new SnapshotError(file, `line ${line}: ${what} is not a number: ${clip(s)}`);
  const n = Number(s);
  if (!Number.isSafeInteger(n))
    throw new SnapshotError(file, `line ${line}: ${what} out of range: ${clip(s)}`);
  return n;
}

/** Quote at most 60 characters of hostile input in a message. */
export function clip(s: string): string {
  return JSON.stringify(s.length > 60 ? `${s.slice(0, 60)}…` : s);
}

/** "Node 0, zone Normal" as a key. */
export function zoneKey(node: number, zone: string): string {
  return `${node}:${zone}`;
}

// ---------------------------------------------------------------------------------------------
// /proc/buddyinfo (frag_show_print): "Node %d, zone %8s " then "%6lu " per order.

/** One line of /proc/buddyinfo: free blocks per order of a populated zone. */
export interface BuddyinfoZone {
  node: number;
  zone: string;
  /** nr_free[order], blocks (all migratetypes, including Isolate). */
  nr_free: number[];
}

export function parseBuddyinfo(text: string, file = 'proc/buddyinfo'): BuddyinfoZone[] {
  const out: BuddyinfoZone[] = [];
  let orders = -1;
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i];
    if (l.trim() === '') continue;
    const m = /^Node\s+(\d+),\s+zone\s+(\S+)\s+([\d\s]*)$/.exec(l);
    if (!m) throw new SnapshotError(file, `line ${i + 1}: not a buddyinfo line: ${clip(l)}`);
    const counts = m[3].trim().split(/\s+/);
    if (orders < 0) orders = counts.length;
    if (counts.length !== orders || orders < 1 || orders > 16)
      throw new SnapshotError(file, `line ${i + 1}: ${counts.length} orders where ${orders} were expected`);
    out.push({
      node: num(file, i + 1, m[1], 'node'),
      zone: m[2],
      nr_free: counts.map((c, o) => num(file, i + 1, c, `order ${o}`)),
    });
  }
  if (out.length === 0) throw new SnapshotError(file, 'no zones');
  return out;
}

// ---------------------------------------------------------------------------------------------
// /proc/pagetypeinfo (pagetypeinfo_show).

/** Free blocks per order of one migratetype of one zone; `capped[o]` where the kernel printed ">100000". */
export interface PagetypeFree {
  node: number;
  zone: string;
  type: string;
  nr_free: number[];
  capped: boolean[];
}

export interface Pagetypeinfo {
  pageblock_order: number;
  pages_per_block: number;
  free: PagetypeFree[];
  /** Migratetype names in the order of the block-count table. */
  types: string[];
  /** Pageblocks per migratetype, per zone (indexed like `types`). */
  blocks: { node: number; zone: string; count: number[] }[];
  /** Only with CONFIG_PAGE_OWNER and page_owner=on. */
  mixed?: { node: number; zone: string; count: number[] }[];
}

export function parsePagetypeinfo(text: string, file = 'proc/pagetypeinfo'): Pagetypeinfo {
  const ls = lines(text);
  let i = 0;
  const need = (re: RegExp, what: string): RegExpExecArray => {
    while (i < ls.length && ls[i].trim() === '') i++;
    const m = i < ls.length ? re.exec(ls[i]) : null;
    if (!m) throw new SnapshotError(file, `line ${i + 1}: expected ${what}, found ${clip(ls[i] ?? '<end>')}`);
    i++;
    return m;
  };
  const pageblock_order = num(
    file,
    i + 1,
    need(/^Page block order:\s*(\d+)\s*$/, 'Page block order')[1],
    'order',
  );
  const pages_per_block = num(file, i, need(/^Pages per block:\s*(\d+)\s*$/, 'Pages per block')[1], 'pages');
  if (pageblock_order > 20 || pages_per_block !== 2 ** pageblock_order)
    throw new SnapshotError(file, `pages per block ${pages_per_block} is not 2^${pageblock_order}`);
  const hdr = need(/^Free pages count per migrate type at order\s+([\d\s]+)$/, 'the free-count header');
  const orders = hdr[1].trim().split(/\s+/).length;
  const free: PagetypeFree[] = [];
  while (i < ls.length && ls[i].trim() !== '') {
    const m = /^Node\s+(\d+),\s+zone\s+(\S+),\s+type\s+(\S+)\s+(.*)$/.exec(ls[i]);
    if (!m) throw new SnapshotError(file, `line ${i + 1}: not a free-count line: ${clip(ls[i])}`);
    const cells = m[4].trim().split(/\s+/);
    if (cells.length !== orders)
      throw new SnapshotError(file, `line ${i + 1}: ${cells.length} orders where ${orders} were expected`);
    const capped = cells.map((c) => c.startsWith('>'));
    const nr_free = cells.map((c, o) => num(file, i + 1, c.replace(/^>/, ''), `order ${o}`));
    free.push({ node: num(file, i + 1, m[1], 'node'), zone: m[2], type: m[3], nr_free, capped });
    i++;
  }
  const table = (title: string) => {
    const h = need(new RegExp(`^${title}\\s+(.*)$`), `"${title}"`);
    const types = h[1].trim().split(/\s+/);
    const rows: { node: number; zone: string; count: number[] }[] = [];
    while (i < ls.length && ls[i].trim() !== '') {
      const m = /^Node\s+(\d+),\s+zone\s+(\S+)\s+([\d\s]+)$/.exec(ls[i]);
      if (!m) throw new SnapshotError(file, `line ${i + 1}: not a block-count line: ${clip(ls[i])}`);
      const cells = m[3].trim().split(/\s+/);
      if (cells.length !== types.length)
        throw new SnapshotError(file, `line ${i + 1}: ${cells.length} counts for ${types.length} types`);
      rows.push({
        node: num(file, i + 1, m[1], 'node'),
        zone: m[2],
        count: cells.map((c) => num(file, i + 1, c, 'count')),
      });
      i++;
    }
    return { types, rows };
  };
  const blocks = table('Number of blocks type');
  let mixed: Pagetypeinfo['mixed'];
  while (i < ls.length && ls[i].trim() === '') i++;
  if (i < ls.length) mixed = table('Number of mixed blocks').rows;
  return { pageblock_order, pages_per_block, free, types: blocks.types, blocks: blocks.rows, mixed };
}

// ---------------------------------------------------------------------------------------------
// /proc/zoneinfo (zoneinfo_show_print).

/** One CPU's per-cpu page list of a zone. */
export interface Pageset {
  cpu: number;
  count: number;
  high: number;
  batch: number;
  high_min?: number;
  high_max?: number;
  vm_stats_threshold?: number;
}

/** One zone record of /proc/zoneinfo; fields the kernel did not print are undefined. */
export interface ZoneinfoZone {
  node: number;
  zone: string;
  /** Node stats, printed with the node's first populated zone only (THP items in THPs). */
  node_stats?: Record<string, number>;
  pages_free: number;
  boost?: number;
  min: number;
  low: number;
  high: number;
  promo?: number;
  spanned: number;
  present: number;
  managed: number;
  cma?: number;
  /** lowmem_reserve[0..MAX_NR_ZONES-1]. */
  protection: number[];
  /** Zone stats and NUMA events (nr_free_pages, nr_zone_*, numa_hit, …). */
  stats: Record<string, number>;
  pagesets: Pageset[];
  node_unreclaimable?: number;
  /** Printed for populated zones only. */
  start_pfn?: number;
  reserved_highatomic?: number;
  free_highatomic?: number;
}

const ZONE_FIELDS = new Set(['boost', 'min', 'low', 'high', 'promo', 'spanned', 'present', 'managed', 'cma']);

export function parseZoneinfo(text: string, file = 'proc/zoneinfo'): ZoneinfoZone[] {
  const out: ZoneinfoZone[] = [];
  let z: ZoneinfoZone | null = null;
  let section: 'node' | 'zone' | 'pagesets' = 'zone';
  let pcp: Pageset | null = null;
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    const l = ls[i];
    const ln = i + 1;
    let m = /^Node\s+(\d+),\s+zone\s+(\S+)\s*$/.exec(l);
    if (m) {
      z = {
        node: num(file, ln, m[1], 'node'),
        zone: m[2],
        pages_free: Number.NaN,
        min: Number.NaN,
        low: Number.NaN,
        high: Number.NaN,
        spanned: Number.NaN,
        present: Number.NaN,
        managed: Number.NaN,
        protection: [],
        stats: {},
        pagesets: [],
      };
      out.push(z);
      section = 'zone';
      pcp = null;
      continue;
    }
    if (l.trim() === '') continue;
    if (!z)
      throw new SnapshotError(file, `line ${ln}: data before the first "Node N, zone" line: ${clip(l)}`);
    const t = l.trim();
    if (t === 'per-node stats') {
      section = 'node';
      z.node_stats = {};
      continue;
    }
    if (t === 'pagesets') {
      section = 'pagesets';
      continue;
    }
    m = /^pages free\s+(\d+)$/.exec(t);
    if (m) {
      z.pages_free = num(file, ln, m[1], 'pages free');
      section = 'zone';
      continue;
    }
    m = /^protection:\s*\(([-\d,\s]*)\)$/.exec(t);
    if (m) {
      z.protection = m[1].split(',').map((s) => num(file, ln, s.trim(), 'protection'));
      continue;
    }
    m = /^cpu:\s*(\d+)$/.exec(t);
    if (m) {
      pcp = { cpu: num(file, ln, m[1], 'cpu'), count: Number.NaN, high: Number.NaN, batch: Number.NaN };
      z.pagesets.push(pcp);
      section = 'pagesets';
      continue;
    }
    m = /^vm stats threshold:\s*(-?\d+)$/.exec(t);
    if (m) {
      if (pcp) pcp.vm_stats_threshold = num(file, ln, m[1], 'threshold');
      continue;
    }
    m = /^(count|high|batch|high_min|high_max):\s*(-?\d+)$/.exec(t);
    if (m) {
      if (!pcp) throw new SnapshotError(file, `line ${ln}: "${m[1]}:" outside a "cpu:" record`);
      pcp[m[1] as 'count'] = num(file, ln, m[2], m[1]);
      continue;
    }
    m = /^(node_unreclaimable|start_pfn|reserved_highatomic|free_highatomic):\s*(\d+)$/.exec(t);
    if (m) {
      z[m[1] as 'start_pfn'] = num(file, ln, m[2], m[1]);
      continue;
    }
    // Older kernels print a few "name: value" lines too (inactive_ratio: in 3.x).
    m = /^(\w+):?\s+(-?\d+)$/.exec(t);
    if (m) {
      const v = num(file, ln, m[2], m[1]);
      if (section === 'node' && z.node_stats) z.node_stats[m[1]] = v;
      else if (
        ZONE_FIELDS.has(m[1]) &&
        section === 'zone' &&
        !(m[1] in z.stats) &&
        Object.keys(z.stats).length === 0
      )
        (z as unknown as Record<string, number>)[m[1]] = v;
      else z.stats[m[1]] = v;
      continue;
    }
    throw new SnapshotError(file, `line ${ln}: not a zoneinfo line: ${clip(l)}`);
  }
  if (out.length === 0) throw new SnapshotError(file, 'no zones');
  for (const zz of out) {
    for (const f of ['pages_free', 'min', 'low', 'high', 'spanned', 'present', 'managed'] as const)
      if (Number.isNaN(zz[f]))
        throw new SnapshotError(
          file,
          `zone ${zz.zone} of node ${zz.node} has no "${f.replace('_', ' ')}" line`,
        );
    if (zz.present > zz.spanned || zz.managed > zz.present)
      throw new SnapshotError(
        file,
        `zone ${zz.zone} of node ${zz.node}: managed ${zz.managed} ≤ present ${zz.present} ≤ spanned ${zz.spanned} does not hold`,
      );
    if (zz.present > 0 && zz.start_pfn === undefined)
      throw new SnapshotError(file, `populated zone ${zz.zone} of node ${zz.node} has no start_pfn`);
    for (const p of zz.pagesets)
      if (Number.isNaN(p.count) || Number.isNaN(p.high) || Number.isNaN(p.batch))
        throw new SnapshotError(file, `zone ${zz.zone} cpu ${p.cpu}: incomplete pageset`);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// "name value" files: /proc/vmstat; "Name:  value kB" files: /proc/meminfo, node meminfo.

export function parseVmstat(text: string, file = 'proc/vmstat'): Record<string, number> {
  const out: Record<string, number> = {};
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    if (ls[i].trim() === '') continue;
    const m = /^(\w+)\s+(-?\d+)$/.exec(ls[i]);
    if (!m) throw new SnapshotError(file, `line ${i + 1}: not a "name value" line: ${clip(ls[i])}`);
    // Event counters are u64; beyond 2^53 they lose units, which no import depends on.
    out[m[1]] = Number(m[2]);
  }
  return out;
}

/** Values of /proc/meminfo in the file's unit (kB for sizes, pages for the HugePages_* counts). */
export function parseMeminfo(text: string, file = 'proc/meminfo'): Record<string, number> {
  const out: Record<string, number> = {};
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    if (ls[i].trim() === '') continue;
    // Node meminfo prefixes "Node 0 ".
    const m = /^(?:Node\s+\d+\s+)?([\w()]+):\s+(\d+)(?:\s+kB)?\s*$/.exec(ls[i]);
    if (!m) throw new SnapshotError(file, `line ${i + 1}: not a meminfo line: ${clip(ls[i])}`);
    out[m[1]] = num(file, i + 1, m[2], m[1]);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// /proc/slabinfo, version 2.1 (mm/slab_common.c cache_show).

export interface SlabinfoCache {
  name: string;
  active_objs: number;
  num_objs: number;
  objsize: number;
  objperslab: number;
  pagesperslab: number;
  active_slabs: number;
  num_slabs: number;
}

export function parseSlabinfo(text: string, file = 'proc/slabinfo'): SlabinfoCache[] {
  const ls = lines(text);
  if (!/^slabinfo - version: 2\.\d+/.test(ls[0] ?? ''))
    throw new SnapshotError(file, `line 1: not a slabinfo 2.x header: ${clip(ls[0] ?? '<empty>')}`);
  const out: SlabinfoCache[] = [];
  for (let i = 1; i < ls.length; i++) {
    const l = ls[i];
    if (l.startsWith('#') || l.trim() === '') continue;
    const m =
      /^(\S+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*:\s*tunables\s+\d+\s+\d+\s+\d+\s*:\s*slabdata\s+(\d+)\s+(\d+)\s+\d+\s*$/.exec(
        l,
      );
    if (!m) throw new SnapshotError(file, `line ${i + 1}: not a slabinfo line: ${clip(l)}`);
    const n = (k: number, what: string) => num(file, i + 1, m[k], what);
    out.push({
      name: m[1],
      active_objs: n(2, 'active_objs'),
      num_objs: n(3, 'num_objs'),
      objsize: n(4, 'objsize'),
      objperslab: n(5, 'objperslab'),
      pagesperslab: n(6, 'pagesperslab'),
      active_slabs: n(7, 'active_slabs'),
      num_slabs: n(8, 'num_slabs'),
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// /proc/iomem: "start-end : name", nested by two-space indent. Unprivileged readers see zeros.

export interface IomemRange {
  start: number;
  end: number;
  name: string;
  depth: number;
}

export function parseIomem(text: string, file = 'proc/iomem'): IomemRange[] {
  const out: IomemRange[] = [];
  const ls = lines(text);
  for (let i = 0; i < ls.length; i++) {
    if (ls[i].trim() === '') continue;
    const m = /^(\s*)([0-9a-fA-F]+)-([0-9a-fA-F]+) : (.*)$/.exec(ls[i]);
    if (!m) throw new SnapshotError(file, `line ${i + 1}: not an iomem line: ${clip(ls[i])}`);
    const start = Number.parseInt(m[2], 16);
    const end = Number.parseInt(m[3], 16);
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || end < start)
      throw new SnapshotError(file, `line ${i + 1}: bad range ${m[2]}-${m[3]}`);
    out.push({ start, end, name: m[4], depth: m[1].length / 2 });
  }
  return out;
}

/** PFN ranges [start, end) of the top-level "System RAM" resources; empty when addresses are zeroed. */
export function systemRamPfns(iomem: IomemRange[], page_size = 4096): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  for (const r of iomem) {
    if (r.depth !== 0 || r.name !== 'System RAM' || r.end === 0) continue;
    const start = Math.ceil(r.start / page_size);
    const end = Math.floor((r.end + 1) / page_size);
    if (end > start) out.push({ start, end });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// sysfs choice files ("always [madvise] never").

/** The bracketed choice of a sysfs mode file, or the trimmed text when there are no brackets. */
export function selectedChoice(text: string): string {
  const m = /\[([^\]]+)\]/.exec(text);
  return m ? m[1] : text.trim();
}
