/** Shared test helpers: small machines with no early kernel allocations, so states are exact. */

import type { MachineConfigInput } from '../src/sim/config.ts';
import { Machine } from '../src/sim/machine.ts';

/** A machine whose memory holds nothing but what memblock reserved, unless `over` says otherwise. */
export function cleanMachine(over: Partial<MachineConfigInput> = {}): Machine {
  return Machine.boot({
    memory: '256M',
    cpus: 2,
    early: { unmovable: 0, reclaimable: 0, transient_fraction: 0 },
    ...over,
  });
}

/** The machine's invariant violations, to assert as `expect(violations(m)).toEqual([])`. */
export function violations(m: Machine): string[] {
  return m.invariantViolations();
}

import type { MM } from '../src/mm/mm.ts';
import { MAX_PAGE_ORDER, MIGRATE_TYPES, type Zone } from '../src/mm/mmzone.ts';
import { __rmqueue_smallest } from '../src/mm/page_alloc/buddy.ts';
import { PGI_alloc } from '../src/mm/page-flags.ts';

/**
 * Empty every free list of `zone` by taking the blocks off them (marked allocated so the
 * invariant checker accounts for them). Returns the taken blocks as [pfn, order] pairs, largest
 * last, so tests can free exactly the pieces they need.
 */
export function takeAll(mm: MM, zone: Zone): Array<[number, number]> {
  const taken: Array<[number, number]> = [];
  for (let order = 0; order <= MAX_PAGE_ORDER; order++) {
    for (let mt = 0; mt < MIGRATE_TYPES; mt++) {
      while (mm.frames.list_count[zone.free_list(order, mt)] > 0) {
        const pfn = __rmqueue_smallest(mm, zone, order, mt);
        mm.frames.flags[pfn] |= PGI_alloc;
        mm.frames.order[pfn] = order;
        taken.push([pfn, order]);
      }
    }
  }
  return taken;
}

/** Forget that a block taken by takeAll() is allocated, so a test can free pieces of it. */
export function untake(mm: MM, pfn: number): void {
  mm.frames.flags[pfn] &= ~PGI_alloc;
  mm.frames.order[pfn] = 0;
}

/** Mark [pfn, pfn+nr) as an allocated region of order-0 pages, e.g. to stand for LRU pages. */
export function markAllocated(mm: MM, pfn: number, nr: number, extraFlags = 0): void {
  for (let p = pfn; p < pfn + nr; p++) {
    mm.frames.flags[p] |= PGI_alloc | extraFlags;
    mm.frames.order[p] = 0;
  }
}
