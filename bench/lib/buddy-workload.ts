/**
 * The raw buddy workload shared by buddy-raw.bench.ts and buddy-raw-vs-c.bench.ts: the bare
 * __rmqueue_smallest() + __free_one_page() pair on zone Normal of a 16 GiB machine, no pcp lists,
 * no watermarks, no GFP decoding.
 *
 * A live set of LIVE_SLOTS blocks is allocated up front. One op then frees the block in a random
 * slot (its pageblock type from get_pfnblock_migratetype(), as __free_pages does) and allocates a
 * new MOVABLE block into that slot. Slots and new orders come from a tape generated with the
 * seeded PRNG before timing, so the timed loop does nothing but buddy work and the C yardstick
 * (bench/c/buddy.c) can replay exactly the same sequence from exactly the same state (dump()).
 */
import { writeFileSync } from 'node:fs';
import { Prng } from '../../src/lib/prng.ts';
import { FPI_NONE } from '../../src/mm/internal.ts';
import type { MM } from '../../src/mm/mm.ts';
import { MIGRATE_MOVABLE, NR_PAGE_ORDERS, ZONE_NORMAL, type Zone } from '../../src/mm/mmzone.ts';
import { __free_one_page, __rmqueue_smallest } from '../../src/mm/page_alloc/buddy.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { NR_FREE_CMA_PAGES, NR_FREE_PAGES, NR_FREE_PAGES_BLOCKS } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';

/** Blocks held at any time. */
export const LIVE_SLOTS = 4096;
/** Ops (one free + one alloc) per timed pass. */
export const OPS_PER_PASS = 1 << 18;

/** The two workload shapes: only order 0, or a mix of orders 0-3 and 9. */
export type BuddyMix = 'order0' | 'mixed';
const MIXED_ORDERS = [0, 1, 2, 3, 9];
/** Weights of MIXED_ORDERS: mostly small blocks, 1% pageblock-sized (THP-like) blocks. */
const MIXED_WEIGHTS = [60, 20, 10, 9, 1];

/** Dump file magic, 'MCBW' little-endian; bump DUMP_VERSION with any layout change (buddy.c too). */
export const DUMP_MAGIC = 0x5742434d;
export const DUMP_VERSION = 1;

/** A booted machine with the live set allocated and the tape generated. */
export class BuddyWorkload {
  readonly machine: Machine;
  readonly mm: MM;
  readonly zone: Zone;
  readonly live = new Int32Array(LIVE_SLOTS);
  readonly liveOrder = new Uint8Array(LIVE_SLOTS);
  readonly tapeSlot = new Int32Array(OPS_PER_PASS);
  readonly tapeOrder = new Uint8Array(OPS_PER_PASS);

  constructor(readonly mix: BuddyMix) {
    this.machine = Machine.boot({ memory: '16G', cpus: 2, seed: 1 });
    this.mm = this.machine.mm;
    this.zone = this.mm.zone(0, ZONE_NORMAL);
    const rand = new Prng(mix === 'order0' ? 0xb0dd1 : 0xb0dd2);
    const pick = (): number => (mix === 'order0' ? 0 : MIXED_ORDERS[rand.weighted(MIXED_WEIGHTS)]);
    for (let s = 0; s < LIVE_SLOTS; s++) {
      const order = pick();
      const pfn = __rmqueue_smallest(this.mm, this.zone, order, MIGRATE_MOVABLE);
      if (pfn < 0) throw new Error(`buddy workload: could not fill slot ${s} at order ${order}`);
      this.live[s] = pfn;
      this.liveOrder[s] = order;
    }
    for (let i = 0; i < OPS_PER_PASS; i++) {
      this.tapeSlot[i] = rand.below(LIVE_SLOTS);
      this.tapeOrder[i] = pick();
    }
  }

  /**
   * One pass over the tape. Returns an order-sensitive checksum of the pfns allocated (the C
   * yardstick computes the same one); throws if an allocation fails, which on this machine means
   * a bug.
   */
  pass(): number {
    // Hoisted into locals: the loop body is only the two kernel functions and array traffic.
    const mm = this.mm;
    const zone = this.zone;
    const live = this.live;
    const liveOrder = this.liveOrder;
    const tapeSlot = this.tapeSlot;
    const tapeOrder = this.tapeOrder;
    let sum = 0;
    for (let i = 0; i < OPS_PER_PASS; i++) {
      const s = tapeSlot[i];
      const pfn = live[s];
      __free_one_page(mm, pfn, zone, liveOrder[s], get_pfnblock_migratetype(mm, pfn), FPI_NONE);
      const order = tapeOrder[i];
      const got = __rmqueue_smallest(mm, zone, order, MIGRATE_MOVABLE);
      if (got < 0) throw new Error(`buddy workload: order-${order} allocation failed`);
      live[s] = got;
      liveOrder[s] = order;
      sum = (Math.imul(sum, 31) + got) | 0;
    }
    return sum >>> 0;
  }

  /**
   * Give every live block back and return the machine's invariant violations, which must be
   * none: blocks taken by the raw path carry no allocation marks, so the checker only agrees once
   * they are free again.
   */
  releaseAndCheck(): string[] {
    for (let s = 0; s < LIVE_SLOTS; s++) {
      const pfn = this.live[s];
      __free_one_page(
        this.mm,
        pfn,
        this.zone,
        this.liveOrder[s],
        get_pfnblock_migratetype(this.mm, pfn),
        FPI_NONE,
      );
      this.live[s] = -1;
    }
    return this.machine.invariantViolations();
  }

  /** Free pages of the zone (NR_FREE_PAGES), to cross-check the C run. */
  freePages(): number {
    return this.zone.vm_stat[NR_FREE_PAGES];
  }

  /**
   * Write the state and the tape for bench/c/buddy.c. Layout, all little-endian:
   * 16 x int32 header (magic, version, nr_frames, nr_lists, nr_pageblocks, free_list_base,
   * LIVE_SLOTS, OPS_PER_PASS, page_group_by_mobility_disabled, frame buffer bytes, 0...);
   * 15 x float64 zone counters (nr_free[0..10], NR_FREE_PAGES, NR_FREE_CMA_PAGES,
   * NR_FREE_PAGES_BLOCKS, nr_free_highatomic); the FrameTable buffer as is (its own 16-byte header,
   * then index, flags, mapping, mapcount, next, prev, list_count, order); pb_flags; pb_zone; live; liveOrder; tapeSlot;
   * tapeOrder.
   */
  dump(path: string): void {
    const mm = this.mm;
    const zone = this.zone;
    const header = new Int32Array(16);
    header.set([
      DUMP_MAGIC,
      DUMP_VERSION,
      mm.frames.nr_frames,
      mm.frames.nr_lists,
      mm.pb_flags.length,
      zone.free_list_base,
      LIVE_SLOTS,
      OPS_PER_PASS,
      mm.page_group_by_mobility_disabled ? 1 : 0,
      mm.frames.buffer.byteLength,
    ]);
    const counters = new Float64Array(NR_PAGE_ORDERS + 4);
    for (let o = 0; o < NR_PAGE_ORDERS; o++) counters[o] = zone.nr_free[o];
    counters[NR_PAGE_ORDERS] = zone.vm_stat[NR_FREE_PAGES];
    counters[NR_PAGE_ORDERS + 1] = zone.vm_stat[NR_FREE_CMA_PAGES];
    counters[NR_PAGE_ORDERS + 2] = zone.vm_stat[NR_FREE_PAGES_BLOCKS];
    counters[NR_PAGE_ORDERS + 3] = zone.nr_free_highatomic;
    const parts: ArrayBufferView[] = [
      header,
      counters,
      new Uint8Array(mm.frames.buffer),
      mm.pb_flags,
      mm.pb_zone,
      this.live,
      this.liveOrder,
      this.tapeSlot,
      this.tapeOrder,
    ];
    writeFileSync(path, Buffer.concat(parts.map((p) => Buffer.from(p.buffer, p.byteOffset, p.byteLength))));
  }
}
