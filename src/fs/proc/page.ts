/**
 * /proc/kpageflags and /proc/kpagecount (fs/proc/page.c; mode 0400): one little-endian u64 per
 * pfn, from pfn 0 up to max_pfn rounded up to a memory section. Reads must start at a multiple
 * of 8 and ask for a multiple of 8 bytes (else EINVAL); reads past the end return nothing.
 *
 * The flags are computed from the frame table, block by block rather than page by page: a free
 * buddy block of order 10 is 1024 copies of one value (KPF_BUDDY is set on every page of a free
 * block, not only its head: real-kernel-notes.md §3), a page on a per-cpu list has no flag at
 * all (§2), the pages of a compound page report their head's (folio's) flags plus
 * COMPOUND_HEAD or COMPOUND_TAIL.
 *
 * What Linux 6.18 prints where there is no page (measured on our machines, and what
 * kpage_read() does since it stopped calling stable_page_flags(NULL)): a pfn without an online
 * memmap (a hole of whole 2 MiB subsections, e.g. the PCI hole at 3-4 GiB) reads 0, not
 * KPF_NOPAGE; a hole inside a subsection that has RAM (pfn 0, the BIOS hole 0x9f-0xff) has a
 * struct page that init_unavailable_range() marked PageReserved, and reads KPF_RESERVED.
 * KPF_NOPAGE is exported by name but /proc/kpageflags never produces it.
 *
 * Flags the frame table does not hold are derived where the kernel's state follows from the
 * model's: every mapped anonymous page is PG_uptodate, and an anonymous page mapped exactly once
 * is taken to be PageAnonExclusive (reported as bit 34, the PG_mappedtodisk bit it aliases; the
 * kernel keeps a page non-exclusive after fork until a write fault reuses it, which the model
 * cannot tell from the frame alone). KPF_IDLE, KPF_KSM, KPF_HWPOISON and the page-cache bits
 * (PRIVATE, OWNER_PRIVATE, …) are 0: nothing in the model sets them.
 */
import { ErrnoError } from '../../lib/errno.ts';
import type { MM } from '../../mm/mm.ts';
import { MAX_PAGE_ORDER, PAGES_PER_SECTION, pageblock_order } from '../../mm/mmzone.ts';
import { deferred_page } from '../../mm/page_alloc/deferred.ts';
import {
  PG_active,
  PG_anon,
  PG_buddy,
  PG_dirty,
  PG_head,
  PG_hugetlb,
  PG_locked,
  PG_lru,
  PG_mlocked,
  PG_reclaim,
  PG_referenced,
  PG_reserved,
  PG_slab,
  PG_swapbacked,
  PG_swapcache,
  PG_table,
  PG_unevictable,
  PG_uptodate,
  PG_writeback,
  PGI_alloc,
  PGI_nopage,
  PGI_pcp,
} from '../../mm/page-flags.ts';

// include/uapi/linux/kernel-page-flags.h (Linux 6.18)
export const KPF_LOCKED = 0;
export const KPF_ERROR = 1;
export const KPF_REFERENCED = 2;
export const KPF_UPTODATE = 3;
export const KPF_DIRTY = 4;
export const KPF_LRU = 5;
export const KPF_ACTIVE = 6;
export const KPF_SLAB = 7;
export const KPF_WRITEBACK = 8;
export const KPF_RECLAIM = 9;
export const KPF_BUDDY = 10;
export const KPF_MMAP = 11;
export const KPF_ANON = 12;
export const KPF_SWAPCACHE = 13;
export const KPF_SWAPBACKED = 14;
export const KPF_COMPOUND_HEAD = 15;
export const KPF_COMPOUND_TAIL = 16;
export const KPF_HUGE = 17;
export const KPF_UNEVICTABLE = 18;
export const KPF_HWPOISON = 19;
export const KPF_NOPAGE = 20;
export const KPF_KSM = 21;
export const KPF_THP = 22;
export const KPF_OFFLINE = 23;
export const KPF_ZERO_PAGE = 24;
export const KPF_IDLE = 25;
export const KPF_PGTABLE = 26;
// include/linux/kernel-page-flags.h: kernel-internal bits, exported but not ABI
export const KPF_RESERVED = 32;
export const KPF_MLOCKED = 33;
export const KPF_MAPPEDTODISK = 34;
export const KPF_PRIVATE = 35;
export const KPF_PRIVATE_2 = 36;
export const KPF_OWNER_PRIVATE = 37;
export const KPF_ARCH = 38;
export const KPF_UNCACHED = 39;
export const KPF_SOFTDIRTY = 40;
export const KPF_ARCH_2 = 41;

/** KPMSIZE: bytes per entry. */
const KPMSIZE = 8;
const HEAD_BITS = PG_buddy | PGI_alloc | PGI_pcp;
const BUDDY_LO = 1 << KPF_BUDDY;
const HEAD_LO = 1 << KPF_COMPOUND_HEAD;
const TAIL_LO = 1 << KPF_COMPOUND_TAIL;
const RESERVED_HI = 1 << (KPF_RESERVED - 32);
const MLOCKED_HI = 1 << (KPF_MLOCKED - 32);
const ANON_EXCLUSIVE_HI = 1 << (KPF_MAPPEDTODISK - 32);
const LITTLE_ENDIAN = new Uint8Array(new Uint32Array([1]).buffer)[0] === 1;

/** get_max_dump_pfn(): max_pfn rounded up to a section (SPARSEMEM). */
export function get_max_dump_pfn(mm: MM): number {
  return Math.ceil(mm.max_pfn / PAGES_PER_SECTION) * PAGES_PER_SECTION;
}

/**
 * The low 32 bits of stable_page_flags() for a folio with page flags `k` and mapcount `mapcount`
 * (the head's, for a compound page), before the compound and zero-page bits.
 */
function folio_kpf_lo(k: number, mapcount: number): number {
  let u = 0;
  if (mapcount > 0) u |= 1 << KPF_MMAP;
  if (k & PG_anon) u |= (1 << KPF_ANON) | (1 << KPF_UPTODATE);
  if (k & PG_hugetlb) u |= 1 << KPF_HUGE;
  if (k & PG_table) u |= 1 << KPF_PGTABLE;
  if (k & PG_slab) u |= 1 << KPF_SLAB;
  if (k & PG_locked) u |= 1 << KPF_LOCKED;
  if (k & PG_dirty) u |= 1 << KPF_DIRTY;
  if (k & PG_uptodate) u |= 1 << KPF_UPTODATE;
  if (k & PG_writeback) u |= 1 << KPF_WRITEBACK;
  if (k & PG_lru) u |= 1 << KPF_LRU;
  if (k & PG_referenced) u |= 1 << KPF_REFERENCED;
  if (k & PG_active) u |= 1 << KPF_ACTIVE;
  if (k & PG_reclaim) u |= 1 << KPF_RECLAIM;
  if (k & PG_swapbacked) u |= 1 << KPF_SWAPBACKED;
  if (k & PG_swapcache) u |= 1 << KPF_SWAPCACHE;
  if (k & PG_unevictable) u |= 1 << KPF_UNEVICTABLE;
  return u;
}

/** The high 32 bits: RESERVED, MLOCKED and anon-exclusive (bit 34). */
function folio_kpf_hi(k: number, mapcount: number): number {
  let u = 0;
  if (k & PG_reserved) u |= RESERVED_HI;
  if (k & PG_mlocked) u |= MLOCKED_HI;
  if (k & PG_anon && mapcount === 1) u |= ANON_EXCLUSIVE_HI;
  return u;
}

/** The first pfn at or after `pfn` whose 2 MiB subsection differs (the next pageblock). */
function next_subsection(pfn: number): number {
  return ((pfn >>> pageblock_order) + 1) << pageblock_order;
}

/**
 * The head of the buddy, per-cpu or allocated block containing `pfn`, or -1. Blocks are
 * naturally aligned, so the head is the first aligned pfn below, at increasing orders, that
 * heads a block reaching `pfn`.
 */
function block_head(mm: MM, pfn: number): number {
  const flags = mm.frames.flags;
  const order = mm.frames.order;
  for (let o = 0; o <= MAX_PAGE_ORDER; o++) {
    const h = pfn - (pfn % (1 << o));
    if (flags[h] & HEAD_BITS && h + (1 << order[h]) > pfn) return h;
  }
  return -1;
}

/**
 * kernel: fs/proc/page.c stable_page_flags() for one pfn, as a bigint (tests and tools; reads
 * of the file use the block walk in kpageflags_fill()).
 */
export function stable_page_flags(mm: MM, pfn: number): bigint {
  const out = new Uint32Array(2);
  kpageflags_fill(mm, pfn, pfn + 1, out);
  return (BigInt(out[1]) << 32n) | BigInt(out[0]);
}

/**
 * Write the kpageflags entries of [start, end) into `out` as (low, high) u32 pairs, which must be
 * zeroed. One pass over the blocks: each free, per-cpu or compound block costs one fill.
 */
export function kpageflags_fill(mm: MM, start: number, end: number, out: Uint32Array): void {
  const f = mm.frames;
  const flags = f.flags;
  const orders = f.order;
  const mapcount = f.mapcount;
  const nr_frames = f.nr_frames;
  const zero_pfn = mm.zero_pfn;
  let pfn = start;
  while (pfn < end) {
    if (pfn >= nr_frames) break; // no memmap: zeros
    if (!mm.pfn_online(pfn)) {
      pfn = Math.min(end, next_subsection(pfn));
      continue;
    }
    const fl = flags[pfn];
    const i = (pfn - start) * 2;
    if (fl & (PGI_nopage | PG_reserved)) {
      // init_unavailable_range() / memblock reservations: PageReserved, not in any block. A
      // struct page deferred_init=lazy has not initialised yet shows nothing (the real kernel's
      // is not to be read at all).
      const deferred = fl & PGI_nopage && deferred_page(mm, pfn);
      out[i] = fl & PGI_nopage ? 0 : folio_kpf_lo(fl, 0) | (pfn === zero_pfn ? 1 << KPF_ZERO_PAGE : 0);
      out[i + 1] = deferred ? 0 : RESERVED_HI | (fl & PGI_nopage ? 0 : folio_kpf_hi(fl, 0));
      pfn++;
      continue;
    }
    const head = fl & HEAD_BITS ? pfn : block_head(mm, pfn);
    if (head < 0) {
      // A frame in no block (the invariant checker reports it): its own flags.
      out[i] = folio_kpf_lo(fl, mapcount[pfn]);
      out[i + 1] = folio_kpf_hi(fl, mapcount[pfn]);
      pfn++;
      continue;
    }
    const hf = flags[head];
    const stop = Math.min(end, head + (1 << orders[head]));
    if (hf & PG_buddy) {
      for (let p = pfn; p < stop; p++) out[(p - start) * 2] = BUDDY_LO;
    } else if (hf & PGI_pcp) {
      // Free on a per-cpu list: no PageBuddy, no flags (zeros already).
    } else if (hf & PG_head) {
      // A compound page: every page reports the folio's flags.
      const mc = mapcount[head];
      let lo = folio_kpf_lo(hf, mc);
      if (hf & PG_anon) lo |= 1 << KPF_THP; // an anonymous large folio
      const hi = folio_kpf_hi(hf, mc);
      let p = pfn;
      if (p === head) {
        out[i] = lo | HEAD_LO;
        out[i + 1] = hi;
        p++;
      }
      for (; p < stop; p++) {
        const j = (p - start) * 2;
        out[j] = lo | TAIL_LO;
        out[j + 1] = hi;
      }
    } else {
      // An order-0 page, or a non-compound block whose pages are separate folios.
      for (let p = pfn; p < stop; p++) {
        const k = flags[p];
        if (k === 0 && mapcount[p] <= 0) continue;
        const j = (p - start) * 2;
        out[j] = folio_kpf_lo(k, mapcount[p]);
        out[j + 1] = folio_kpf_hi(k, mapcount[p]);
      }
    }
    pfn = stop;
  }
}

/**
 * kernel: fs/proc/page.c get_kpage_count() with CONFIG_PAGE_MAPCOUNT: the page's own mapcount
 * (folio_precise_page_mapcount), 0 for free pages, holes and unmapped kernel pages.
 */
function kpagecount_fill(mm: MM, start: number, end: number, out: Uint32Array): void {
  const f = mm.frames;
  const mapcount = f.mapcount;
  const last = Math.min(end, f.nr_frames);
  for (let pfn = start; pfn < last; pfn++) {
    const c = mapcount[pfn];
    if (c > 0 && mm.pfn_online(pfn) && (f.flags[pfn] & (PGI_nopage | PG_buddy | PGI_pcp)) === 0)
      out[(pfn - start) * 2] = c;
  }
}

/**
 * kernel: fs/proc/page.c kpage_read()
 * The bytes of /proc/kpageflags (`op` 'flags') or /proc/kpagecount ('count') at `offset`.
 */
export function kpage_read(
  mm: MM,
  path: string,
  offset: number,
  count: number,
  op: 'flags' | 'count',
): Uint8Array {
  if (offset % KPMSIZE || count % KPMSIZE) throw new ErrnoError('EINVAL', 'read', path);
  const max_dump_pfn = get_max_dump_pfn(mm);
  const pfn = offset / KPMSIZE;
  if (pfn >= max_dump_pfn) return new Uint8Array(0);
  const n = Math.min(count / KPMSIZE, max_dump_pfn - pfn);
  const out = new Uint32Array(n * 2);
  if (op === 'flags') kpageflags_fill(mm, pfn, pfn + n, out);
  else kpagecount_fill(mm, pfn, pfn + n, out);
  return LITTLE_ENDIAN ? new Uint8Array(out.buffer) : to_le_bytes(out);
}

/** On a big-endian host: (low, high) u32 pairs as little-endian u64 bytes. */
function to_le_bytes(pairs: Uint32Array): Uint8Array {
  const bytes = new Uint8Array(pairs.length * 4);
  const view = new DataView(bytes.buffer);
  for (let i = 0; i < pairs.length; i++) view.setUint32(i * 4, pairs[i], true);
  return bytes;
}
