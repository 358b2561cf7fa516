/**
 * /proc/kpageflags and /proc/kpagecount: the 6.18 bit layout for every kind of frame (free buddy
 * block, per-cpu page, slab page, anonymous page on the LRU, page table, zero page, reserved
 * page, hole), values equal to what the real kernel printed for the same kind of page
 * (test/fixtures/real-6.18-fc/kpageflags-samples.json), kpagecount = mapcount, the file's size,
 * alignment and permissions, and the speed of a whole-file read.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  KPF_ANON,
  KPF_BUDDY,
  KPF_LRU,
  KPF_MLOCKED,
  KPF_MMAP,
  KPF_NOPAGE,
  KPF_UNEVICTABLE,
  stable_page_flags,
} from '../../src/fs/proc/page.ts';
import type { ErrnoError } from '../../src/lib/errno.ts';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { MAX_PAGE_ORDER, MIGRATE_TYPES } from '../../src/mm/mmzone.ts';
import { PG_head, PG_slab, PGI_alloc, PGI_pcp } from '../../src/mm/page-flags.ts';
import { Machine } from '../../src/sim/machine.ts';
import { walk_pte_table } from '../../src/vm/memory.ts';
import type { Process } from '../../src/vm/process.ts';
import { MAP_ANONYMOUS, MAP_LOCKED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';

const SAMPLES = JSON.parse(
  readFileSync(
    join(import.meta.dirname, '..', 'fixtures', 'real-6.18-fc', 'kpageflags-samples.json'),
    'utf8',
  ),
) as { kpageflags: Record<string, string>; anon_pages_histogram: { top: Array<{ flags: string }> } };
const real = (name: string): bigint => BigInt(SAMPLES.kpageflags[name]);
const USER = { uid: 1000, gid: 1000 };
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const bit = (b: number): bigint => 1n << BigInt(b);

/** The u64 entries of a read. */
function u64s(bytes: Uint8Array): bigint[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: bigint[] = [];
  for (let i = 0; i < bytes.length; i += 8) out.push(v.getBigUint64(i, true));
  return out;
}

function kpageflags(m: Machine, pfn: number, n = 1): bigint[] {
  return u64s(m.readFileBytes('/proc/kpageflags', { offset: pfn * 8, length: n * 8 }));
}

function kpagecount(m: Machine, pfn: number): bigint {
  return u64s(m.readFileBytes('/proc/kpagecount', { offset: pfn * 8, length: 8 }))[0];
}

/** The pfn mapped at `addr`, from the page tables. */
function pfnAt(m: Machine, p: Process, addr: number): number {
  const vpn = addr / 4096;
  const t = walk_pte_table(m.vm, p.mm, vpn);
  return m.vm.pt.pfn[t * 512 + (vpn % 512)];
}

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as ErrnoError).code;
  }
  return undefined;
}

let m: Machine;
beforeAll(() => {
  // 4 GiB: RAM below 3 GiB and above 4 GiB, the PCI hole between.
  m = Machine.boot({ memory: '4G', cpus: 2, seed: 1 });
});

describe('kpageflags per kind of frame, as the real kernel prints them', () => {
  it('every page of a free buddy block is KPF_BUDDY, whatever the read offset', () => {
    const mm = m.mm;
    let head = -1;
    let order = 0;
    for (const zone of mm.zones) {
      for (let o = MAX_PAGE_ORDER; o >= 3 && head < 0; o--) {
        for (let mt = 0; mt < MIGRATE_TYPES && head < 0; mt++) {
          head = mm.frames.list_first(zone.free_list(o, mt));
          order = o;
        }
      }
      if (head >= 0) break;
    }
    expect(head).toBeGreaterThanOrEqual(0);
    const n = 1 << order;
    expect(new Set(kpageflags(m, head, n))).toEqual(new Set([real('free_buddy_page')]));
    // A read starting inside the block finds its head.
    expect(kpageflags(m, head + n - 3, 3)).toEqual([bit(KPF_BUDDY), bit(KPF_BUDDY), bit(KPF_BUDDY)]);
  });

  it('a free page on a per-cpu list has no flags at all', () => {
    const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0);
    m.kernel.free_pages(pfn, 0);
    expect(m.mm.frames.flags[pfn] & PGI_pcp).toBe(PGI_pcp);
    expect(kpageflags(m, pfn)).toEqual([0n]);
  });

  it('slab pages: SLAB, and a compound slab COMPOUND_HEAD then COMPOUND_TAIL', () => {
    const f = m.mm.frames;
    let small = -1;
    let big = -1;
    for (let pfn = 0; pfn < f.nr_frames && (small < 0 || big < 0); pfn++) {
      const fl = f.flags[pfn];
      if ((fl & (PG_slab | PGI_alloc)) !== (PG_slab | PGI_alloc)) continue;
      if (fl & PG_head) big = big < 0 ? pfn : big;
      else small = small < 0 ? pfn : small;
    }
    expect(kpageflags(m, small)).toEqual([real('slab_order0')]);
    expect(kpageflags(m, big, 2)).toEqual([real('slab_compound_head'), real('slab_compound_tail')]);
  });

  it('an anonymous page on the LRU, mapped once: the real kernel’s commonest anon value', () => {
    const p = m.spawn();
    const a = p.mmap(0, 4 * 4096, PROT_READ | PROT_WRITE, ANON);
    p.touch(a, 4096, { write: true });
    const pfn = pfnAt(m, p, a);
    const v = kpageflags(m, pfn)[0];
    // 0x400005828: UPTODATE LRU MMAP ANON SWAPBACKED + bit 34 (PG_anon_exclusive).
    expect(v).toBe(0x400005828n);
    expect(SAMPLES.anon_pages_histogram.top.map((e) => e.flags)).toContain('0x400005828');
    expect(kpagecount(m, pfn)).toBe(1n);
    // Shared with a fork child: mapcount 2, no longer exclusive (the real kernel's 0x5828).
    const child = p.fork();
    expect(kpageflags(m, pfn)[0]).toBe(0x5828n);
    expect(kpagecount(m, pfn)).toBe(2n);
    child.exit();
    p.exit();
    // Freed to the per-cpu list.
    expect(kpageflags(m, pfn)[0]).toBe(0n);
    expect(kpagecount(m, pfn)).toBe(0n);
  });

  it('a locked anonymous page is UNEVICTABLE and MLOCKED (bit 33), not on an evictable list', () => {
    const p = m.spawn();
    const a = p.mmap(0, 4096, PROT_READ | PROT_WRITE, ANON | MAP_LOCKED);
    const v = kpageflags(m, pfnAt(m, p, a))[0];
    for (const b of [KPF_UNEVICTABLE, KPF_MLOCKED, KPF_LRU, KPF_ANON, KPF_MMAP])
      expect(v & bit(b)).toBe(bit(b));
    p.exit();
  });

  it('a page-table page is PGTABLE only', () => {
    const p = m.spawn();
    const a = p.mmap(0, 4096, PROT_READ | PROT_WRITE, ANON);
    p.touch(a, 4096, { write: true });
    const table = walk_pte_table(m.vm, p.mm, a / 4096);
    expect(kpageflags(m, m.vm.pt.frame[table])).toEqual([real('user_page_table')]);
    expect(kpageflags(m, m.vm.pt.frame[p.mm.pgd])).toEqual([real('user_page_table')]);
    p.exit();
  });

  it('the zero page is RESERVED and ZERO_PAGE, with kpagecount 0 however often it is mapped', () => {
    const p = m.spawn();
    const a = p.mmap(0, 8 * 4096, PROT_READ, ANON);
    p.touch(a, 8 * 4096);
    expect(pfnAt(m, p, a)).toBe(m.mm.zero_pfn);
    expect(kpageflags(m, m.mm.zero_pfn)).toEqual([real('zero_page')]);
    expect(kpagecount(m, m.mm.zero_pfn)).toBe(0n);
    p.exit();
  });

  it('reserved memory and holes: RESERVED inside a subsection with RAM, 0 without a memmap', () => {
    expect(kpageflags(m, 0)).toEqual([real('pfn0_hole_in_present_subsection')]); // not RAM
    expect(kpageflags(m, 0x9f)).toEqual([real('pfn_0x9f_bios_hole')]);
    expect(kpageflags(m, 0x1000)).toEqual([0x100000000n]); // the kernel image at 16 MiB
    expect(kpageflags(m, 0xc0000, 4)).toEqual(Array(4).fill(real('pfn_0xc0000_pci_hole_no_memmap')));
  });

  it('KPF_NOPAGE never appears (kpage_read() gives 0 where there is no page)', () => {
    const all = new BigUint64Array(m.readFileBytes('/proc/kpageflags').slice().buffer);
    expect(all.some((v) => (v & bit(KPF_NOPAGE)) !== 0n)).toBe(false);
  });

  it('stable_page_flags() of one pfn agrees with the file', () => {
    for (const pfn of [0, 0x9f, 0x1000, m.mm.zero_pfn, 0xc0000, 0x100000, m.mm.max_pfn - 1]) {
      expect(stable_page_flags(m.mm, pfn)).toBe(kpageflags(m, pfn)[0]);
    }
  });
});

describe('the file', () => {
  it('holds max_pfn rounded up to a 128 MiB section, as the real one (0x640000 entries at 24 GiB)', () => {
    expect(m.readFileBytes('/proc/kpageflags').length).toBe(Math.ceil(m.mm.max_pfn / 32768) * 32768 * 8);
    const fc = Machine.boot({ memory: '24G', cpus: 2, kernel: { CMA: false }, seed: 1 });
    expect(fc.readFileBytes('/proc/kpagecount').length / 8).toBe(Number(SAMPLES.kpageflags.entries));
  });

  it('reads in pieces at any 8-byte aligned offset agree with one whole read', () => {
    const whole = m.readFileBytes('/proc/kpageflags');
    const total = whole.length;
    for (const [off, len] of [
      [0, 8],
      [8 * 511, 8 * 1030],
      [8 * 0x9ffff, 8 * 70000],
      [total - 64, 4096],
    ]) {
      const part = m.readFileBytes('/proc/kpageflags', { offset: off, length: len });
      const want = whole.subarray(off, Math.min(total, off + len));
      expect(part.length).toBe(want.length);
      expect(Buffer.from(part).equals(Buffer.from(want))).toBe(true);
    }
  });

  it('past the end returns nothing; unaligned offsets and lengths are EINVAL', () => {
    const size = m.readFileBytes('/proc/kpageflags').length;
    expect(m.readFileBytes('/proc/kpageflags', { offset: size, length: 8 }).length).toBe(0);
    expect(m.readFileBytes('/proc/kpagecount', { offset: 0, length: 0 }).length).toBe(0);
    expect(errnoOf(() => m.readFileBytes('/proc/kpageflags', { offset: 4, length: 8 }))).toBe('EINVAL');
    expect(errnoOf(() => m.readFileBytes('/proc/kpagecount', { offset: 8, length: 7 }))).toBe('EINVAL');
  });

  it('is root only (0400) and binary: the text API refuses it', () => {
    expect(errnoOf(() => m.readFileBytes('/proc/kpageflags', { length: 8 }, USER))).toBe('EACCES');
    expect(errnoOf(() => m.readFileBytes('/proc/kpagecount', { length: 8 }, USER))).toBe('EACCES');
    expect(errnoOf(() => m.readFile('/proc/kpageflags'))).toBe('EINVAL');
  });

  // How fast a whole read is lives in bench/kpageflags.bench.ts.
  it('a 16 GiB machine reads whole: one entry per frame in both files', () => {
    const big = Machine.boot({ memory: '16G', cpus: 2, seed: 1 });
    const flags = big.readFileBytes('/proc/kpageflags');
    const counts = big.readFileBytes('/proc/kpagecount');
    expect(flags.length).toBe(counts.length);
    expect(flags.length).toBeGreaterThan(((16 * 2 ** 30) / 4096) * 8 - 1);
  });
});
