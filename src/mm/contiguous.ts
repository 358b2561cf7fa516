/**
 * The boot parameters that declare CMA areas and the code that reserves them (Linux 6.18):
 * kernel/dma/contiguous.c (`cma=`, and with CONFIG_DMA_NUMA_CMA `cma_pernuma=` and `numa_cma=`:
 * dma_contiguous_reserve()) and mm/hugetlb_cma.c (`hugetlb_cma=`: hugetlb_cma_reserve()). x86
 * calls dma_contiguous_reserve(max_pfn_mapped << PAGE_SHIFT) right after initmem_init(), then,
 * with GB pages, hugetlb_cma_reserve(PUD_SHIFT - PAGE_SHIFT).
 *
 * The parsers take the parameter's value as written on the command line and throw a RangeError
 * on text memparse() would stop at (the kernel ignores the rest; a configuration should not).
 */
import { NUMA_NO_NODE } from './cma.ts';
import { cma_declare_contiguous_multi, cma_declare_contiguous_nid, type Memblock } from './cma_reserve.ts';

const PAGE_SIZE = 4096;
const SZ_1M = 2 ** 20;
/** PUD_SHIFT - PAGE_SHIFT on x86-64: gigantic pages are 1 GiB. */
export const HUGETLB_CMA_ORDER = 18;
/** HUGETLB_PAGE_ORDER (PMD): the order per bit of the hugetlb areas (demotion to 2 MiB). */
const HUGETLB_PAGE_ORDER = 9;
/** MAX_NUMNODES with CONFIG_NODES_SHIFT=10 (x86-64 defconfig with NUMA). */
const MAX_NUMNODES = 1024;

const SUFFIX: Record<string, number> = {
  k: 2 ** 10,
  m: 2 ** 20,
  g: 2 ** 30,
  t: 2 ** 40,
  p: 2 ** 50,
  e: 2 ** 60,
};

/** lib/cmdline.c memparse() at `pos`: [bytes, next position]; base 0 (0x hex, 0 octal). */
function memparse(s: string, pos: number, what: string): [number, number] {
  const m = /^(0[xX][0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)([kKmMgGtTpPeE]?)/.exec(s.slice(pos));
  if (!m) throw new RangeError(`${what}: '${s}' has no size at column ${pos + 1}`);
  const digits = m[1];
  const v =
    digits.startsWith('0x') || digits.startsWith('0X')
      ? Number.parseInt(digits.slice(2), 16)
      : digits.length > 1 && digits[0] === '0'
        ? Number.parseInt(digits, 8)
        : Number(digits);
  return [v * (m[2] ? SUFFIX[m[2].toLowerCase()] : 1), pos + m[0].length];
}

function expectEnd(s: string, pos: number, what: string): void {
  if (pos !== s.length) throw new RangeError(`${what}: unexpected '${s.slice(pos)}' in '${s}'`);
}

/** `cma=`: size[@base[-limit]] (bytes; limit 0 = none). */
export interface CmaCmdline {
  size: number;
  base: number;
  limit: number;
}

/** kernel: kernel/dma/contiguous.c early_cma() */
export function early_cma(p: string): CmaCmdline {
  let [size, pos] = memparse(p, 0, 'cma');
  let base = 0;
  let limit = 0;
  if (p[pos] === '@') {
    [base, pos] = memparse(p, pos + 1, 'cma');
    if (p[pos] !== '-') limit = base + size;
    else [limit, pos] = memparse(p, pos + 1, 'cma');
  }
  expectEnd(p, pos, 'cma');
  return { size, base, limit };
}

/**
 * `numa_cma=` and `hugetlb_cma=`: <node>:size[,<node>:size] (per node sizes), or for hugetlb_cma
 * a plain size. Returns the per-node sizes, or the plain size as `total`.
 */
export interface NodeSizes {
  total: number;
  per_node: Map<number, number>;
}

function parse_node_sizes(p: string, what: string, plain_ok: boolean): NodeSizes {
  const per_node = new Map<number, number>();
  if (plain_ok && !/^\d+:/.test(p)) {
    const [total, pos] = memparse(p, 0, what);
    expectEnd(p, pos, what);
    return { total, per_node };
  }
  let total = 0;
  let pos = 0;
  for (;;) {
    const m = /^(\d+):/.exec(p.slice(pos));
    if (!m) throw new RangeError(`${what}: expected <node>:<size> at column ${pos + 1} of '${p}'`);
    const nid = Number(m[1]);
    if (nid >= MAX_NUMNODES)
      throw new RangeError(`${what}: node ${nid} is >= MAX_NUMNODES (${MAX_NUMNODES})`);
    let size: number;
    [size, pos] = memparse(p, pos + m[0].length, what);
    // A node given twice keeps the last size; hugetlb_cma adds both to its total.
    per_node.set(nid, size);
    total += size;
    if (p[pos] !== ',') break;
    pos++;
  }
  expectEnd(p, pos, what);
  return { total, per_node };
}

/** kernel: kernel/dma/contiguous.c early_numa_cma() */
export function early_numa_cma(p: string): Map<number, number> {
  return parse_node_sizes(p, 'numa_cma', false).per_node;
}

/** kernel: kernel/dma/contiguous.c early_cma_pernuma() */
export function early_cma_pernuma(p: string): number {
  const [v, pos] = memparse(p, 0, 'cma_pernuma');
  expectEnd(p, pos, 'cma_pernuma');
  return v;
}

/** kernel: mm/hugetlb_cma.c cmdline_parse_hugetlb_cma() */
export function cmdline_parse_hugetlb_cma(p: string): NodeSizes {
  return parse_node_sizes(p, 'hugetlb_cma', true);
}

/** The CMA parameters of a kernel command line. */
export interface CmaParams {
  cma?: CmaCmdline;
  cma_pernuma?: number;
  numa_cma?: Map<number, number>;
  hugetlb_cma?: NodeSizes;
}

/**
 * kernel: kernel/dma/contiguous.c dma_numa_cma_reserve(), per online node: "pernuma<nid>" of
 * cma_pernuma= bytes, then "numa<nid>" of its numa_cma= size, each on that node.
 */
function dma_numa_cma_reserve(mb: Memblock, p: CmaParams): void {
  if (!mb.numa) return; // CONFIG_DMA_NUMA_CMA depends on NUMA
  const pernuma = p.cma_pernuma ?? 0;
  const numa = p.numa_cma ?? new Map<number, number>();
  // Nodes that do not exist are never looked at (for_each_node(); every node is online here).
  for (let nid = 0; nid < mb.nodes.length; nid++) {
    if (pernuma) {
      const ret = cma_declare_contiguous_nid(mb, 0, pernuma, 0, 0, 0, false, `pernuma${nid}`, nid);
      if (ret) mb.log.push(`cma: dma_numa_cma_reserve: reservation failed: err ${ret}, node ${nid}`);
    }
    const size = numa.get(nid) ?? 0;
    if (size) {
      const ret = cma_declare_contiguous_nid(mb, 0, size, 0, 0, 0, false, `numa${nid}`, nid);
      if (ret) mb.log.push(`cma: dma_numa_cma_reserve: reservation failed: err ${ret}, node ${nid}`);
    }
  }
}

/**
 * kernel: kernel/dma/contiguous.c dma_contiguous_reserve()
 * The NUMA areas, then the default area "reserved" from cma= (no CONFIG_CMA_SIZE_MBYTES default:
 * without cma= there is none). A base with the implied limit base + size is a fixed placement.
 */
export function dma_contiguous_reserve(mb: Memblock, p: CmaParams, limit: number): void {
  dma_numa_cma_reserve(mb, p);
  const c = p.cma;
  if (!c?.size) return;
  const fixed = c.base + c.size === c.limit;
  // dma_contiguous_reserve_area() -> cma_declare_contiguous(): NUMA_NO_NODE
  cma_declare_contiguous_nid(mb, c.base, c.size, c.limit || limit, 0, 0, fixed, 'reserved', NUMA_NO_NODE);
}

/**
 * kernel: mm/hugetlb_cma.c hugetlb_cma_reserve(order)
 * Per node "hugetlb<nid>" areas of 1 GiB multiples (order per bit 9) declared with
 * cma_declare_contiguous_multi(): the per-node sizes given, or the total spread over the nodes
 * (rounded up to a gigantic page per node, nodes taken in order until the total is reached).
 */
export function hugetlb_cma_reserve(mb: Memblock, p: CmaParams, order = HUGETLB_CMA_ORDER): void {
  const h = p.hugetlb_cma;
  if (!h) return;
  let hugetlb_cma_size = h.total;
  if (!hugetlb_cma_size) return;
  const gig = PAGE_SIZE * 2 ** order;
  // hugetlb_bootmem_set_nodes(): every node has memory.
  const nodes = mb.nodes.map((_, nid) => nid);
  const size_in_node = new Map(h.per_node);
  let node_specific = false;
  for (const [nid, size] of [...size_in_node].sort((a, b) => a[0] - b[0])) {
    if (size === 0) continue;
    if (nid >= nodes.length) {
      mb.log.push(`hugetlb_cma: invalid node ${nid} specified`);
      hugetlb_cma_size -= size;
      size_in_node.set(nid, 0);
      continue;
    }
    if (size < gig) {
      mb.log.push(`hugetlb_cma: cma area of node ${nid} should be at least ${gig / SZ_1M} MiB`);
      hugetlb_cma_size -= size;
      size_in_node.set(nid, 0);
    } else node_specific = true;
  }
  if (!hugetlb_cma_size) return;
  if (hugetlb_cma_size < gig) {
    mb.log.push(`hugetlb_cma: cma area should be at least ${gig / SZ_1M} MiB`);
    return;
  }
  let per_node = 0;
  if (!node_specific) {
    per_node = Math.ceil(Math.ceil(hugetlb_cma_size / nodes.length) / gig) * gig;
    mb.log.push(
      `hugetlb_cma: reserve ${Math.floor(hugetlb_cma_size / SZ_1M)} MiB, up to ${per_node / SZ_1M} MiB per node`,
    );
  }
  let reserved = 0;
  for (const nid of nodes) {
    let size: number;
    if (node_specific) {
      size = size_in_node.get(nid) ?? 0;
      if (size === 0) continue;
    } else size = Math.min(per_node, hugetlb_cma_size - reserved);
    size = Math.ceil(size / gig) * gig;
    const res = cma_declare_contiguous_multi(mb, size, gig, HUGETLB_PAGE_ORDER, `hugetlb${nid}`, nid);
    if (res) {
      mb.log.push(`hugetlb_cma: reservation failed: err ${res}, node ${nid}`);
      continue;
    }
    reserved += size;
    mb.log.push(`hugetlb_cma: reserved ${size / SZ_1M} MiB on node ${nid}`);
    if (reserved >= hugetlb_cma_size) break;
  }
}
