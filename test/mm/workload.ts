/**
 * The random workload the allocator property tests share: a process whose anonymous chunks are
 * touched and partly dropped, kernel allocations of several orders and both mobilities, short-
 * and long-term pins, and mlock. Each test adds its own operations (compaction, contiguous
 * allocation, CMA) and checks to these.
 */
import { fc } from '@fast-check/vitest';
import { ErrnoError } from '../../src/lib/errno.ts';
import {
  __GFP_COMP,
  __GFP_NOWARN,
  __GFP_RETRY_MAYFAIL,
  GFP_HIGHUSER_MOVABLE,
  GFP_KERNEL,
  GFP_TRANSHUGE,
} from '../../src/mm/gfp.ts';
import { PGI_alloc } from '../../src/mm/page-flags.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { FOLL_LONGTERM, FOLL_WRITE } from '../../src/vm/gup.ts';
import { FaultError, type Process } from '../../src/vm/process.ts';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { pte } from '../vm/helpers.ts';

const PAGE = 4096;

export interface WorkloadShape {
  chunks: number;
  chunkPages: number;
  /** Orders of kernel allocations (repeat one to make it likelier); 9 and up are THP-like. */
  orders: number[];
}

export type WorkloadOp =
  | { kind: 'touch'; chunk: number }
  | { kind: 'drop'; chunk: number; page: number; pages: number; stride: number }
  | { kind: 'kalloc'; order: number; movable: boolean }
  | { kind: 'kfree'; index: number }
  | { kind: 'pin'; chunk: number; page: number; longterm: boolean }
  | { kind: 'unpin'; index: number }
  | { kind: 'mlock'; chunk: number; unlock: boolean };

/** The workload's operations with their weights, for fc.oneof(). */
export function workloadOps(
  shape: WorkloadShape,
  weights: Partial<Record<WorkloadOp['kind'], number>> = {},
): Array<fc.WeightedArbitrary<WorkloadOp>> {
  const chunk = fc.nat(shape.chunks - 1);
  const page = fc.nat(shape.chunkPages - 1);
  const w = { touch: 3, drop: 3, kalloc: 3, kfree: 2, pin: 1, unpin: 1, mlock: 1, ...weights };
  const k = <K extends string>(kind: K) => fc.constant(kind);
  return [
    { weight: w.touch, arbitrary: fc.record({ kind: k('touch'), chunk }) },
    {
      weight: w.drop,
      arbitrary: fc.record({
        kind: k('drop'),
        chunk,
        page,
        pages: fc.integer({ min: 1, max: shape.chunkPages }),
        stride: fc.integer({ min: 1, max: 5 }),
      }),
    },
    {
      weight: w.kalloc,
      arbitrary: fc.record({
        kind: k('kalloc'),
        order: fc.constantFrom(...shape.orders),
        movable: fc.boolean(),
      }),
    },
    { weight: w.kfree, arbitrary: fc.record({ kind: k('kfree'), index: fc.nat() }) },
    { weight: w.pin, arbitrary: fc.record({ kind: k('pin'), chunk, page, longterm: fc.boolean() }) },
    { weight: w.unpin, arbitrary: fc.record({ kind: k('unpin'), index: fc.nat() }) },
    { weight: w.mlock, arbitrary: fc.record({ kind: k('mlock'), chunk, unlock: fc.boolean() }) },
  ].filter((o) => o.weight > 0) as Array<fc.WeightedArbitrary<WorkloadOp>>;
}

/** Run `fn`, letting the errors a process may get (errnos, signals) pass. */
export function tolerate(fn: () => unknown): void {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof ErrnoError) && !(e instanceof FaultError)) throw e;
  }
}

export class Workload {
  readonly p: Process;
  readonly base: number;
  /** Kernel allocations held: first pfn, order, and whether the page is movable. */
  readonly blocks: Array<{ pfn: number; order: number; movable: boolean }> = [];
  /** Pinned pages and whether the pin is long-term. */
  readonly pins: Array<{ pfn: number; longterm: boolean }> = [];

  constructor(
    readonly m: Machine,
    readonly shape: WorkloadShape,
  ) {
    this.p = m.spawn();
    const bytes = shape.chunks * shape.chunkPages * PAGE;
    this.base = this.p.mmap(0, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  }

  addr(chunk: number, page = 0): number {
    return this.base + (chunk * this.shape.chunkPages + page) * PAGE;
  }

  /** The pages of the mapping that are mapped, by index. */
  mapped(): number[] {
    const out: number[] = [];
    for (let i = 0; i < this.shape.chunks * this.shape.chunkPages; i++)
      if (pte(this.m, this.p, this.base + i * PAGE)) out.push(i);
    return out;
  }

  /** What identifies each pinned page: allocated, owner, index, mappings. A pinned page never moves. */
  pinned(): number[][] {
    const f = this.m.mm.frames;
    return this.pins.map(({ pfn }) => [
      pfn,
      f.flags[pfn] & PGI_alloc,
      f.mapping[pfn],
      f.index[pfn],
      f.mapcount[pfn],
    ]);
  }

  apply(o: WorkloadOp): void {
    const { m, p, shape } = this;
    if (o.kind === 'touch')
      tolerate(() => p.touch(this.addr(o.chunk), shape.chunkPages * PAGE, { write: true }));
    else if (o.kind === 'drop') {
      for (let i = o.page; i < Math.min(shape.chunkPages, o.page + o.pages); i += o.stride)
        tolerate(() => p.madvise(this.addr(o.chunk, i), PAGE, MADV_DONTNEED));
    } else if (o.kind === 'kalloc') {
      const thp = o.order >= 9;
      const gfp = thp
        ? GFP_TRANSHUGE | __GFP_COMP
        : (o.movable ? GFP_HIGHUSER_MOVABLE : GFP_KERNEL) | __GFP_RETRY_MAYFAIL | __GFP_NOWARN;
      const pfn = m.kernel.alloc_pages(gfp, o.order, { cpu: o.order & 1 });
      if (pfn >= 0) this.blocks.push({ pfn, order: o.order, movable: thp || o.movable });
    } else if (o.kind === 'kfree') {
      if (this.blocks.length) {
        const { pfn, order } = this.blocks.splice(o.index % this.blocks.length, 1)[0];
        m.kernel.free_pages(pfn, order);
      }
    } else if (o.kind === 'pin') {
      const at = this.addr(o.chunk, o.page);
      if (!pte(m, p, at)) return;
      const gup = FOLL_WRITE | (o.longterm ? FOLL_LONGTERM : 0);
      tolerate(() => {
        for (const pfn of p.pin_user_pages(at, PAGE, gup)) this.pins.push({ pfn, longterm: o.longterm });
      });
    } else if (o.kind === 'unpin') {
      if (this.pins.length) p.unpin_user_pages([this.pins.splice(o.index % this.pins.length, 1)[0].pfn]);
    } else if (o.unlock) tolerate(() => p.munlock(this.addr(o.chunk), shape.chunkPages * PAGE));
    else tolerate(() => p.mlock(this.addr(o.chunk), shape.chunkPages * PAGE));
  }

  /** Give back every pin and kernel allocation, and end the process. */
  release(): void {
    this.p.unpin_user_pages(this.pins.splice(0).map(({ pfn }) => pfn));
    for (const { pfn, order } of this.blocks.splice(0)) this.m.kernel.free_pages(pfn, order);
    this.p.exit();
  }
}
