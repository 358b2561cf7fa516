/**
 * Without kpageflags: a frame image consistent with a snapshot's /proc counts (an estimate).
 *
 * Nothing says where a real machine's pages were, only how many of each kind each zone held, so
 * this image places them by rule (docs/import.md), seeded and deterministic:
 *  1. present − managed pages of each zone are PC_RESERVED: at the zone's start for DMA, at the top
 *     of its RAM otherwise (the memmap is allocated top-down).
 *  2. Pageblock types in the counts of pagetypeinfo's block table (CMA and Isolate as Movable);
 *     without it, ceil(kernel pages / 512) blocks are Unmovable and the rest Movable. Blocks are
 *     picked in a seeded shuffle, except that the whole free blocks (orders 10 and 9) are placed
 *     first, on whole pageblocks, and the blocks get those free blocks' types.
 *  3. The free blocks of each type and order (pagetypeinfo, bounded by buddyinfo; buddyinfo alone
 *     as Movable without it), and the per-cpu pages as free order-0 pages in Movable blocks. Below
 *     order 9 a block of order k sits only at an even order-k slot of a block of its type, never
 *     overlapping another: its buddy can then never be whole free, so nothing merges and the buddy
 *     lists come back as counted. Higher orders go first, spread round-robin over the blocks;
 *     a type without room spills into Movable blocks, then any block.
 *  4. THPs (AnonHugePages) and 2 MiB hugetlb pages take whole Movable pageblocks of the highest
 *     zone. Kernel pages (managed − free − per-cpu − LRU − THP − hugetlb) fill the non-movable
 *     blocks block by block, then spill into Movable blocks block by block; the LRU pages fill
 *     what is left, anon / shmem / file / dirty file interleaved in their proportions.
 * The reserved pages become the model's memblock reservations (import.ts), so its managed pages
 * are the snapshot's; the per-cpu pages are PC_PCP, parked on the CPUs' lists by the rebuild.
 */

import { Prng } from '../lib/prng.ts';
import {
  MAX_PAGE_ORDER,
  MIGRATE_HIGHATOMIC,
  MIGRATE_MOVABLE,
  MIGRATE_RECLAIMABLE,
  MIGRATE_UNMOVABLE,
  pageblock_nr_pages,
  pageblock_order,
} from '../mm/mmzone.ts';
import {
  type FrameImage,
  PC_ANON,
  PC_FILE,
  PC_FILE_DIRTY,
  PC_FREE,
  PC_HUGETLB,
  PC_KERNEL,
  PC_PCP,
  PC_RESERVED,
  PC_SHMEM,
  PC_THP,
} from '../sim/frame_image.ts';
import { snapshotEndPfn } from './classify.ts';
import type { PfnRun } from './import.ts';
import type { Snapshot } from './read.ts';

export interface Estimate {
  image: FrameImage;
  notes: string[];
}

const PB_ORDER = pageblock_order;
const PB_NR = pageblock_nr_pages;
const MAX_ORDER = MAX_PAGE_ORDER;
const NOT_SET = 255;
const UNMOVABLE = MIGRATE_UNMOVABLE;
const MOVABLE = MIGRATE_MOVABLE;
const RECLAIMABLE = MIGRATE_RECLAIMABLE;
const HIGHATOMIC = MIGRATE_HIGHATOMIC;
/** The types an estimate places: those below MIGRATE_CMA, named as /proc/pagetypeinfo names them. */
const NR_TYPES = MIGRATE_HIGHATOMIC + 1;
const TYPE_NAMES = ['Unmovable', 'Movable', 'Reclaimable', 'HighAtomic'];

/** Per pfn while placing: free to place anything, or taken. */
const AVAIL = 0;
const TAKEN = 1;

export function estimateImage(s: Snapshot, ram: PfnRun[], seed: number): Estimate {
  const rng = new Prng(seed);
  const notes: string[] = [
    'estimate: no kpageflags, so pages are placed by rule, consistent with the /proc counts (docs/import.md)',
  ];
  const nr = snapshotEndPfn(s);
  const classes = new Uint8Array(nr);
  const nblocks = Math.ceil(nr / PB_NR);
  const pageblock_mt = new Uint8Array(nblocks).fill(NOT_SET);
  const hugetlb: FrameImage['hugetlb'] = [];
  const st = new Uint8Array(nr).fill(TAKEN);
  const inRam = new Uint8Array(nr);
  for (const r of ram) inRam.fill(1, Math.max(0, Math.min(nr, r.start)), Math.max(0, Math.min(nr, r.end)));

  const zones = s.zoneinfo
    .filter((z) => z.start_pfn !== undefined && z.present > 0)
    .sort((a, b) => (a.start_pfn as number) - (b.start_pfn as number));
  const highest = zones.at(-1);

  // THPs and hugetlb pages, for the highest zone.
  const thpKb = s.meminfo?.AnonHugePages ?? 0;
  let thpBlocks = Math.floor(thpKb / 2048);
  if (thpKb % 2048)
    notes.push(`AnonHugePages ${thpKb} kB is not whole 2 MiB THPs: the rest counts as anon pages`);
  let hugeNr = 0;
  let hugeFree = 0;
  for (const h of s.hugepages) {
    const n = h.nr_hugepages ?? 0;
    if (!n) continue;
    if (h.size_kb === 2048) {
      hugeNr = n;
      hugeFree = Math.min(n, h.free_hugepages ?? 0);
    } else
      notes.push(`${n} hugetlb pages of ${h.size_kb} kB are not placed (only 2 MiB pools are estimated)`);
  }
  if (new Set(zones.map((z) => z.node)).size > 1 && (thpBlocks || hugeNr))
    notes.push('THPs and hugetlb pages are all placed in the highest zone, whatever node they were on');

  // LRU splits, by node: shmem share of anon, dirty share of file.
  const nodeStat = (node: number, name: string): number => {
    const ns = s.zoneinfo.find((z) => z.node === node && z.node_stats)?.node_stats;
    return ns?.[name] ?? s.vmstat?.[name] ?? 0;
  };

  for (const z of zones) {
    const zs = z.start_pfn as number;
    const ze = Math.min(nr, zs + z.spanned);
    const label = `node ${z.node} zone ${z.zone}`;
    const isHighest = z === highest;
    // 1. RAM pfns, and the reserved ones.
    let ramPages = 0;
    for (let pfn = zs; pfn < ze; pfn++)
      if (inRam[pfn]) {
        st[pfn] = AVAIL;
        ramPages++;
      }
    if (ramPages !== z.present)
      notes.push(
        `${label}: ${ramPages} RAM pages where zoneinfo says ${z.present} present: the difference is taken from the LRU pages`,
      );
    let reserved = Math.max(0, Math.min(ramPages, z.present - z.managed));
    if (z.zone === 'DMA') {
      for (let pfn = zs; pfn < ze && reserved > 0; pfn++)
        if (st[pfn] === AVAIL) {
          st[pfn] = TAKEN;
          classes[pfn] = PC_RESERVED;
          reserved--;
        }
    } else {
      for (let pfn = ze - 1; pfn >= zs && reserved > 0; pfn--)
        if (st[pfn] === AVAIL) {
          st[pfn] = TAKEN;
          classes[pfn] = PC_RESERVED;
          reserved--;
        }
    }
    // The zone's pageblocks (those whose first pfn lies in the zone's span).
    const pb0 = Math.floor(zs / PB_NR);
    const pb1 = Math.ceil(ze / PB_NR);
    const nzb = pb1 - pb0;
    const full = new Uint8Array(nzb); // every page AVAIL
    const hasRoom = new Uint8Array(nzb); // some page AVAIL
    const hasRam = new Uint8Array(nzb);
    let ramBlocks = 0;
    for (let i = 0; i < nzb; i++) {
      const a = (pb0 + i) * PB_NR;
      let n = 0;
      let room = 0;
      let k = 0;
      for (let pfn = Math.max(a, zs); pfn < Math.min(a + PB_NR, ze); pfn++) {
        if (st[pfn] === AVAIL) n++;
        if (st[pfn] !== TAKEN) room++;
        if (inRam[pfn]) k++;
      }
      if (k) {
        hasRam[i] = 1;
        ramBlocks++;
      }
      full[i] = n === PB_NR ? 1 : 0;
      hasRoom[i] = room ? 1 : 0;
    }

    // 3 (counts). Free blocks per type and order, reconciled with buddyinfo per order.
    const bi = s.buddyinfo.find((b) => b.node === z.node && b.zone === z.zone)?.nr_free ?? [];
    const orders = Math.min(MAX_ORDER + 1, bi.length || MAX_ORDER + 1);
    const free: number[][] = [];
    for (let t = 0; t < NR_TYPES; t++) free.push(new Array(MAX_ORDER + 1).fill(0));
    const pti = s.pagetypeinfo;
    const ptiRows = pti?.free.filter((r) => r.node === z.node && r.zone === z.zone) ?? [];
    const typeOf = (name: string): number => {
      const i = TYPE_NAMES.indexOf(name);
      return i < 0 ? MOVABLE : i;
    };
    const odd = new Set<string>();
    for (let o = 0; o < orders; o++) {
      const total = bi[o] ?? 0;
      if (!ptiRows.length) {
        free[MOVABLE][o] = total;
        continue;
      }
      let known = 0;
      const cappedTypes: number[] = [];
      for (const r of ptiRows) {
        const t = typeOf(r.type);
        if (TYPE_NAMES.indexOf(r.type) < 0 && r.nr_free[o]) odd.add(r.type);
        if (r.capped[o]) cappedTypes.push(t);
        else {
          free[t][o] += r.nr_free[o] ?? 0;
          known += r.nr_free[o] ?? 0;
        }
      }
      let rest = total - known;
      for (let i = 0; i < cappedTypes.length; i++) {
        const share = i === cappedTypes.length - 1 ? rest : Math.floor(rest / cappedTypes.length);
        free[cappedTypes[i]][o] += Math.max(0, share);
        rest -= share;
      }
      if (!cappedTypes.length && rest !== 0) {
        // buddyinfo and pagetypeinfo were read at different instants: buddyinfo wins.
        notes.push(
          `${label}: order ${o}: buddyinfo ${total} blocks, pagetypeinfo ${known}: the difference is Movable`,
        );
        for (const t of [MOVABLE, UNMOVABLE, RECLAIMABLE, HIGHATOMIC]) {
          const d = Math.max(-free[t][o], rest);
          free[t][o] += d;
          rest -= d;
          if (rest >= 0) break;
        }
      }
    }
    for (const t of odd) notes.push(`${label}: free blocks of type ${t} are placed as Movable`);
    let freePages = 0;
    for (let t = 0; t < NR_TYPES; t++) for (let o = 0; o <= MAX_ORDER; o++) freePages += free[t][o] << o;
    let pcp = 0;
    for (const p of z.pagesets) pcp += p.count;

    // 4 (counts). LRU, THP, hugetlb, kernel.
    const zst = z.stats;
    let anon =
      (zst.nr_zone_inactive_anon ?? 0) + (zst.nr_zone_active_anon ?? 0) + (zst.nr_zone_unevictable ?? 0);
    let file = (zst.nr_zone_inactive_file ?? 0) + (zst.nr_zone_active_file ?? 0);
    const zThp = isHighest ? thpBlocks : 0;
    const zHuge = isHighest ? hugeNr : 0;
    let kernel = z.managed - freePages - pcp - anon - file - (zThp + zHuge) * PB_NR;
    if (kernel < 0) {
      notes.push(`${label}: the counts leave ${kernel} kernel pages: the LRU pages are cut by ${-kernel}`);
      const lru = anon + file;
      const cut = Math.min(lru, -kernel);
      const anonCut = lru ? Math.round((cut * anon) / lru) : 0;
      anon -= anonCut;
      file -= cut - anonCut;
      kernel = 0;
    }

    // 2. Pageblock type counts.
    const want = new Int32Array(NR_TYPES);
    const row = pti?.blocks.find((b) => b.node === z.node && b.zone === z.zone);
    if (pti && row) {
      for (let i = 0; i < pti.types.length; i++) {
        const name = pti.types[i];
        const t = TYPE_NAMES.indexOf(name);
        if (t >= 0) want[t] += row.count[i];
        else {
          want[MOVABLE] += row.count[i];
          if (row.count[i])
            notes.push(`${label}: ${row.count[i]} ${name} pageblocks are estimated as Movable`);
        }
      }
      const sum = want[0] + want[1] + want[2] + want[3];
      if (sum !== ramBlocks) {
        notes.push(
          `${label}: pagetypeinfo counts ${sum} pageblocks, the zone's RAM is in ${ramBlocks}: Movable makes up the difference`,
        );
        want[MOVABLE] = Math.max(0, want[MOVABLE] + ramBlocks - sum);
      }
    } else {
      want[UNMOVABLE] = Math.min(ramBlocks, Math.ceil(kernel / PB_NR));
      want[MOVABLE] = ramBlocks - want[UNMOVABLE];
    }

    // 3 (placement of whole blocks). Order 10 on aligned pairs, order 9 on single blocks.
    const mt = new Uint8Array(nzb).fill(NOT_SET);
    const wholeFree = new Uint8Array(nzb);
    const pairs: number[] = [];
    for (let i = 0; i < nzb; i++) {
      const pb = pb0 + i;
      if (!(pb & 1) && i + 1 < nzb && full[i] && full[i + 1]) pairs.push(i);
    }
    shuffle(rng, pairs);
    let pi = 0;
    for (let t = 0; t < NR_TYPES; t++) {
      let n = free[t][MAX_ORDER];
      while (n > 0 && pi < pairs.length) {
        const i = pairs[pi++];
        if (!full[i] || !full[i + 1]) continue;
        for (const j of [i, i + 1]) {
          takeRange(st, classes, (pb0 + j) * PB_NR, PB_NR, PC_FREE);
          full[j] = 0;
          wholeFree[j] = 1;
          mt[j] = t;
        }
        n--;
      }
      if (n > 0) {
        notes.push(
          `${label}: ${n} ${TYPE_NAMES[t]} order-10 free blocks found no pair of whole pageblocks: placed as order-9 blocks`,
        );
        free[t][9] += 2 * n;
      }
    }
    const singles: number[] = [];
    for (let i = 0; i < nzb; i++) if (full[i]) singles.push(i);
    shuffle(rng, singles);
    let si = 0;
    for (let t = 0; t < NR_TYPES; t++) {
      let n = free[t][PB_ORDER];
      while (n > 0 && si < singles.length) {
        const i = singles[si++];
        const buddy = ((pb0 + i) ^ 1) - pb0;
        if (!full[i] || (buddy >= 0 && buddy < nzb && wholeFree[buddy])) continue;
        takeRange(st, classes, (pb0 + i) * PB_NR, PB_NR, PC_FREE);
        full[i] = 0;
        wholeFree[i] = 1;
        mt[i] = t;
        n--;
      }
      if (n > 0) {
        notes.push(
          `${label}: ${n} ${TYPE_NAMES[t]} order-9 free blocks found no whole pageblock: placed as order-8 blocks`,
        );
        free[t][8] += 2 * n;
      }
    }

    // 2 (placement). The other blocks in a seeded shuffle; non-movable types go first to blocks
    // with reserved pages and room, then to empty ones, so that kernel pages can land in them.
    const have = new Int32Array(NR_TYPES);
    for (let i = 0; i < nzb; i++) if (mt[i] !== NOT_SET) have[mt[i]]++;
    const rest: number[] = [];
    for (let i = 0; i < nzb; i++) if (mt[i] === NOT_SET && hasRam[i]) rest.push(i);
    shuffle(rng, rest);
    const rank = (i: number): number => (hasRoom[i] ? (full[i] ? 1 : 0) : 2);
    const ranked = rest.map((i, k) => [rank(i), k, i]).sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    let ri = 0;
    for (const t of [UNMOVABLE, RECLAIMABLE, HIGHATOMIC]) {
      for (let k = have[t]; k < want[t] && ri < ranked.length; k++) mt[ranked[ri++][2]] = t;
      if (have[t] > want[t])
        notes.push(
          `${label}: whole free ${TYPE_NAMES[t]} blocks make ${have[t]} ${TYPE_NAMES[t]} pageblocks where pagetypeinfo has ${want[t]}`,
        );
    }
    for (; ri < ranked.length; ri++) mt[ranked[ri][2]] = MOVABLE;
    for (let i = 0; i < nzb; i++) pageblock_mt[pb0 + i] = mt[i];

    // Block orders: shuffled, by type.
    const order = Array.from({ length: nzb }, (_, i) => i);
    shuffle(rng, order);
    const byType: number[][] = [[], [], [], []];
    for (const i of order) if (mt[i] !== NOT_SET) byType[mt[i]].push(i);

    // 4 (placement of THPs and hugetlb pages): whole Movable blocks of the highest zone.
    if (zThp || zHuge) {
      let placedThp = 0;
      let placedHuge = 0;
      for (const i of byType[MOVABLE]) {
        if (placedThp >= zThp && placedHuge >= zHuge) break;
        if (!full[i]) continue;
        const a = (pb0 + i) * PB_NR;
        if (placedHuge < zHuge) {
          takeRange(st, classes, a, PB_NR, PC_HUGETLB);
          hugetlb.push({ pfn: a, order: PB_ORDER, in_use: placedHuge < zHuge - Math.min(zHuge, hugeFree) });
          placedHuge++;
        } else {
          takeRange(st, classes, a, PB_NR, PC_THP);
          placedThp++;
        }
        full[i] = 0;
      }
      if (placedThp < zThp || placedHuge < zHuge) {
        notes.push(
          `${label}: only ${placedThp}/${zThp} THPs and ${placedHuge}/${zHuge} hugetlb pages found whole Movable pageblocks: the rest count as anon and kernel pages`,
        );
        anon += (zThp - placedThp) * PB_NR;
        kernel += (zHuge - placedHuge) * PB_NR;
      }
      if (isHighest) thpBlocks = placedThp;
    }

    // 3 (placement of small free blocks), higher orders first, then the per-cpu pages.
    const cursor = new Int32Array(nzb);
    const any = order.filter((i) => mt[i] !== NOT_SET);
    let unplaced = 0;
    for (let o = PB_ORDER - 1; o >= 0; o--) {
      for (let t = 0; t < NR_TYPES; t++) {
        let n = free[t][o];
        if (!n) continue;
        n = placeSmall(st, classes, byType[t], pb0, zs, ze, o, n, cursor);
        if (n && t !== MOVABLE) n = placeSmall(st, classes, byType[MOVABLE], pb0, zs, ze, o, n, cursor);
        if (n) n = placeSmall(st, classes, any, pb0, zs, ze, o, n, cursor);
        unplaced += n << o;
      }
    }
    let p = placeSmall(st, classes, byType[MOVABLE], pb0, zs, ze, 0, pcp, cursor, PC_PCP);
    if (p) p = placeSmall(st, classes, any, pb0, zs, ze, 0, p, cursor, PC_PCP);
    unplaced += p;
    if (unplaced) {
      notes.push(
        `${label}: ${unplaced} free pages found no place that keeps them unmerged: counted as kernel pages`,
      );
      kernel += unplaced;
    }

    // 4 (fill). Kernel pages: the non-movable blocks first, then Movable
    // blocks, block by block; then the LRU pages in the same order.
    const fill: number[] = [];
    for (const t of [UNMOVABLE, RECLAIMABLE, HIGHATOMIC, MOVABLE]) for (const i of byType[t]) fill.push(i);
    for (const i of fill) {
      if (kernel <= 0) break;
      const a = Math.max(zs, (pb0 + i) * PB_NR);
      const b = Math.min(ze, (pb0 + i + 1) * PB_NR);
      for (let pfn = a; pfn < b && kernel > 0; pfn++)
        if (st[pfn] === AVAIL) {
          st[pfn] = TAKEN;
          classes[pfn] = PC_KERNEL;
          kernel--;
        }
    }
    const anonTotal = nodeStat(z.node, 'nr_inactive_anon') + nodeStat(z.node, 'nr_active_anon');
    const shmemRatio = anonTotal > 0 ? Math.min(1, nodeStat(z.node, 'nr_shmem') / anonTotal) : 0;
    const filePages = nodeStat(z.node, 'nr_file_pages');
    const dirtyRatio = filePages > 0 ? Math.min(1, nodeStat(z.node, 'nr_dirty') / filePages) : 0;
    const shmem = Math.round(anon * shmemRatio);
    const dirty = Math.round(file * dirtyRatio);
    const lruWant = [anon - shmem, shmem, file - dirty, dirty];
    const lruClass = [PC_ANON, PC_SHMEM, PC_FILE, PC_FILE_DIRTY];
    const lruTotal = lruWant[0] + lruWant[1] + lruWant[2] + lruWant[3];
    const acc = new Float64Array(4);
    let leftover = 0;
    let kernelShort = kernel;
    for (const i of fill) {
      const a = Math.max(zs, (pb0 + i) * PB_NR);
      const b = Math.min(ze, (pb0 + i + 1) * PB_NR);
      for (let pfn = a; pfn < b; pfn++) {
        if (st[pfn] === TAKEN) continue;
        st[pfn] = TAKEN;
        if (lruTotal === 0) {
          classes[pfn] = PC_KERNEL;
          leftover++;
          continue;
        }
        let best = 0;
        for (let c = 0; c < 4; c++) {
          acc[c] += lruWant[c];
          if (acc[c] > acc[best]) best = c;
        }
        acc[best] -= lruTotal;
        classes[pfn] = lruClass[best];
      }
    }
    if (kernelShort > 0) notes.push(`${label}: ${kernelShort} kernel pages found no room`);
    kernelShort = 0;
    if (leftover) notes.push(`${label}: no LRU pages to fill ${leftover} pages: they are kernel pages`);
  }
  if (new Set(hugetlb.map((h) => h.pfn)).size !== hugetlb.length)
    throw new Error('estimate: hugetlb overlap');
  return { image: { classes, pageblock_mt, hugetlb }, notes };
}

/** Fisher–Yates with the seeded generator. */
function shuffle(rng: Prng, a: number[]): void {
  for (let i = a.length - 1; i > 0; i--) {
    const j = rng.below(i + 1);
    const x = a[i];
    a[i] = a[j];
    a[j] = x;
  }
}

function takeRange(st: Uint8Array, classes: Uint8Array, pfn: number, n: number, c: number): void {
  st.fill(TAKEN, pfn, pfn + n);
  classes.fill(c, pfn, pfn + n);
}

/**
 * Place `n` free blocks of `order` (< 9) round-robin over `blocks`, each at an even order slot
 * of its pageblock whose pages are all AVAIL; returns how many found no place. `cursor` holds
 * each block's next slot offset for this order (reset here when the order changes).
 */
function placeSmall(
  st: Uint8Array,
  classes: Uint8Array,
  blocks: number[],
  pb0: number,
  zs: number,
  ze: number,
  order: number,
  n: number,
  cursor: Int32Array,
  cls = PC_FREE,
): number {
  if (n <= 0) return 0;
  const size = 1 << order;
  cursor.fill(0);
  const live = blocks.slice();
  while (n > 0 && live.length) {
    let w = 0;
    for (let k = 0; k < live.length && n > 0; k++) {
      const i = live[k];
      const base = (pb0 + i) * PB_NR;
      let off = cursor[i];
      let found = -1;
      for (; off < PB_NR; off += size) {
        const pfn = base + off;
        if (pfn < zs || pfn + size > ze) continue;
        if (off & size) {
          // An odd slot only where its buddy can never be whole free.
          let pinned = false;
          for (let q = pfn - size; q < pfn; q++)
            if (st[q] === TAKEN && classes[q] !== PC_FREE) {
              pinned = true;
              break;
            }
          if (!pinned) continue;
        }
        let ok = true;
        for (let q = pfn; q < pfn + size; q++)
          if (st[q] !== AVAIL) {
            ok = false;
            break;
          }
        if (ok) {
          found = pfn;
          break;
        }
      }
      if (found < 0) continue;
      st.fill(TAKEN, found, found + size);
      classes.fill(cls, found, found + size);
      cursor[i] = off + size;
      n--;
      live[w++] = i;
    }
    if (n > 0) live.length = w;
    else break;
  }
  return n;
}
