/**
 * machine.kernel: the in-kernel API that tests, benchmarks, later layers and kernel developers
 * call, with the kernel's names and return conventions (a pfn, or -1 where the kernel returns
 * NULL). Allocations and frees run on a CPU the caller names.
 */

import type { MM } from '../mm/mm.ts';
import { __alloc_pages, __free_pages } from '../mm/page_alloc/alloc_pages.ts';
import { drain_all_pages } from '../mm/page_alloc/pcp.ts';

export interface AllocWhere {
  /** Preferred node; defaults to the node of `cpu`. */
  nid?: number;
  /** The CPU the allocation runs on (its per-cpu lists); defaults to 0. */
  cpu?: number;
}

export class KernelApi {
  constructor(readonly mm: MM) {}

  /** alloc_pages(): the first pfn of a free 2^order block, or -1. */
  alloc_pages(gfp: number, order: number, where: AllocWhere = {}): number {
    if (!Number.isInteger(gfp) || gfp < 0) throw new RangeError(`alloc_pages: gfp ${gfp} is not a GFP mask`);
    if (!Number.isInteger(order)) throw new RangeError(`alloc_pages: order ${order} is not an integer`);
    const cpu = this.cpu(where.cpu);
    const nid = where.nid ?? this.mm.cpu_to_node[cpu];
    if (!Number.isInteger(nid) || nid < 0 || nid >= this.mm.nodes.length)
      throw new RangeError(`alloc_pages: no node ${nid}`);
    return __alloc_pages(this.mm, gfp, order, nid, cpu);
  }

  /** free_pages(): give back a block alloc_pages() returned, with its order. */
  free_pages(pfn: number, order: number, where: { cpu?: number } = {}): void {
    __free_pages(this.mm, pfn, order, this.cpu(where.cpu));
  }

  /** drain_all_pages(): flush every CPU's per-cpu lists to the buddy lists. */
  drain_all_pages(): void {
    drain_all_pages(this.mm, null);
  }

  private cpu(cpu = 0): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.mm.nr_cpus)
      throw new RangeError(`no cpu ${cpu} (the machine has ${this.mm.nr_cpus})`);
    return cpu;
  }
}
