/**
 * The device model, rule by rule, with hand-computed expectations: physical segments, the SG
 * table (merging at max_segment boundaries, offsets, appends), ib_umem_find_best_pgsz() and
 * ib_umem_num_dma_blocks(), iommu_pgsize() and the IOMMU PTEs of a buffer, the translation-cache
 * estimates, the CPU TLB reach, profile verdicts and throughput, and buffer_layout() on a real
 * machine.
 */
import { describe, expect, it } from 'vitest';
import { bitmap64 } from '../../src/contig/bits64.ts';
import { buffer_layout, layout_from_pfns, MAP_1G, MAP_2M, MAP_4K } from '../../src/contig/buffer_layout.ts';
import { cpu_tlb_reach, STLB_SKYLAKE_SP } from '../../src/contig/cpu_tlb.ts';
import { device_report, format_device_report, SWIOTLB_MAX_MAPPING } from '../../src/contig/device.ts';
import {
  CAMERA_DMA_NO_IOMMU,
  DEVICE_PROFILES,
  device_profile,
  NVME_LIKE,
  QAT_LIKE_ACCELERATOR,
  RDMA_NIC,
} from '../../src/contig/device_profiles.ts';
import {
  dma_iommu_iova,
  INTEL_IOMMU_PGSIZES,
  iommu_map_buffer,
  iommu_map_range,
  iommu_pgsize,
} from '../../src/contig/iommu.ts';
import {
  SgTable,
  sg_alloc_append_table_from_pages,
  sg_nents,
  sg_table_from_pages,
  UINT_MAX,
} from '../../src/contig/scatterlist.ts';
import { count_segments, physical_segments, segment_order_histogram } from '../../src/contig/segments.ts';
import { entries_by_shift, estimate_translation_cache } from '../../src/contig/translation_cache.ts';
import {
  ib_umem_find_best_pgsz,
  ib_umem_num_dma_blocks_at,
  ib_umem_sg,
  mlx5_mtt_pgsz_bitmap,
  umem_direct,
  umem_via_iommu,
} from '../../src/contig/umem.ts';
import { Machine } from '../../src/sim/machine.ts';
import { MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { pte } from '../vm/helpers.ts';

const PG = 4096;
const KiB = 1024;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const VA = 0x7f0000000000; // 1 TiB aligned
const MLX5 = mlx5_mtt_pgsz_bitmap(); // 4 KiB .. 2 GiB

/** `n` pfns from `start`, contiguous. */
function run(start: number, n: number): Int32Array {
  const a = new Int32Array(n);
  for (let i = 0; i < n; i++) a[i] = start + i;
  return a;
}

/** Concatenated runs [pfn, pages]. */
function runs(...rs: Array<[number, number]>): Int32Array {
  const out = new Int32Array(rs.reduce((s, r) => s + r[1], 0));
  let k = 0;
  for (const [p, n] of rs) for (let i = 0; i < n; i++) out[k++] = p + i;
  return out;
}

/** The umem of registering `pfns` at `addr` for `length` bytes without an IOMMU. */
function umem(pfns: Int32Array, addr: number, length = pfns.length * PG, max_segment = 2 * GiB) {
  return umem_direct(addr, length, ib_umem_sg(pfns, addr, length, max_segment));
}

describe('physical segments', () => {
  it('are the maximal runs of consecutive pfns in virtual order', () => {
    const s = physical_segments([7, 8, 9, 20, 21, 5]);
    expect(s.count).toBe(3);
    expect(s.largest_pages).toBe(3);
    expect([...s.first_page]).toEqual([0, 3, 5]);
    expect([...s.pfn]).toEqual([7, 20, 5]);
    expect([...s.pages]).toEqual([3, 2, 1]);
    expect(count_segments([7, 8, 9, 20, 21, 5])).toBe(3);
  });

  it('a descending or repeated pfn breaks a segment; a missing page ends one', () => {
    expect(count_segments([5, 4, 3])).toBe(3);
    expect(count_segments([5, 5])).toBe(2);
    const s = physical_segments([1, 2, -1, 3, 4, -1]);
    expect(s.count).toBe(2);
    expect([...s.pages]).toEqual([2, 2]);
  });

  it('histogram by order: 1 page is order 0, 3 pages order 1, 512 pages order 9', () => {
    const s = physical_segments(runs([0, 1], [10, 3], [1000, 512]));
    expect(segment_order_histogram(s)).toEqual([1, 1, 0, 0, 0, 0, 0, 0, 0, 1]);
  });
});

describe('scatterlist: sg_alloc_append_table_from_pages', () => {
  it('splits 40 contiguous pages at a 64 KiB max_segment into 16 + 16 + 8 pages', () => {
    const t = sg_table_from_pages(run(100, 40), 0, 40 * PG, 64 * KiB);
    expect(t.nents).toBe(3);
    expect([...t.length.subarray(0, 3)]).toEqual([64 * KiB, 64 * KiB, 32 * KiB]);
    expect([...t.page.subarray(0, 3)]).toEqual([100, 116, 132]);
    expect(sg_nents(run(100, 40), 64 * KiB)).toBe(3);
  });

  it('rounds max_segment down to whole pages', () => {
    expect(sg_nents(run(0, 40), 64 * KiB + 4095)).toBe(3);
    expect(sg_nents(run(0, 40), 8191)).toBe(40);
  });

  it('starts a new entry at every discontinuity', () => {
    const t = sg_table_from_pages([10, 11, 12, 20, 21], 0, 5 * PG, UINT_MAX);
    expect(t.nents).toBe(2);
    expect([...t.length.subarray(0, 2)]).toEqual([3 * PG, 2 * PG]);
  });

  it('applies the offset to the first entry and clips the last to size', () => {
    const a = sg_table_from_pages([10, 11, 12], 100, 8000, UINT_MAX);
    expect(a.nents).toBe(1);
    expect(a.offset[0]).toBe(100);
    expect(a.length[0]).toBe(8000);
    const b = sg_table_from_pages([10, 20], 100, 5000, UINT_MAX);
    expect(b.nents).toBe(2);
    expect([b.length[0], b.length[1]]).toEqual([PG - 100, 5000 - (PG - 100)]);
    expect(b.dma_address(0)).toBe(10 * PG + 100);
  });

  it('an append merges into the last entry up to max_segment, then starts new ones', () => {
    // 1024 contiguous pages appended 512 at a time (ib_umem_get), max_segment 3 MiB = 768 pages:
    // the second call grows the first entry from 512 to 768 pages, then adds one of 256.
    const t = ib_umem_sg(run(5000, 1024), VA, 4 * MiB, 3 * MiB);
    expect(t.nents).toBe(2);
    expect([t.length[0], t.length[1]]).toEqual([3 * MiB, 1 * MiB]);
    expect(t.page[1]).toBe(5000 + 768);
    // The same pages in one call give the same entries.
    expect(sg_table_from_pages(run(5000, 1024), 0, 4 * MiB, 3 * MiB).nents).toBe(2);
    expect(ib_umem_sg(run(5000, 1024), VA, 4 * MiB, 2 * GiB).nents).toBe(1);
  });

  it('refuses a max_segment below a page and an offset on an append (-EINVAL)', () => {
    const t = new SgTable(4);
    expect(sg_alloc_append_table_from_pages(t, [1, 2], 0, 2, 0, 2 * PG, 4095, 0)).toBe(-22);
    expect(sg_alloc_append_table_from_pages(t, [1, 2], 0, 1, 0, PG, PG, 1)).toBe(0);
    expect(sg_alloc_append_table_from_pages(t, [1, 2], 1, 1, 8, PG, PG, 0)).toBe(-22);
    expect(() => sg_nents([1, -1], UINT_MAX)).toThrow(RangeError);
    expect(() => sg_nents([1], 2 ** 32)).toThrow(/max_segment/);
  });
});

describe('RDMA: ib_umem_find_best_pgsz and ib_umem_num_dma_blocks', () => {
  it('num_dma_blocks spans the aligned range: 4 MiB at 1 MiB in 2 MiB pages is 3', () => {
    expect(ib_umem_num_dma_blocks_at(1 * MiB, 4 * MiB, 2 * MiB)).toBe(3);
    expect(ib_umem_num_dma_blocks_at(0x1800, 8192, PG)).toBe(3);
    expect(ib_umem_num_dma_blocks_at(0, 1, 2 ** 63)).toBe(1);
    expect(() => ib_umem_num_dma_blocks_at(0, 1, 3000)).toThrow(RangeError);
  });

  it('contiguous and VA/PA congruent: the largest page that covers the range (the worked example)', () => {
    const va = 0x7f0000200000;
    const u = umem(run(0x40200, 1024), va);
    expect(u.nents).toBe(1);
    // bits_per((va + 4M - 1) ^ va) = 23: 8 MiB is the largest page the VA range allows.
    expect(ib_umem_find_best_pgsz(u, MLX5, va)).toBe(8 * MiB);
    expect(ib_umem_num_dma_blocks_at(va, 4 * MiB, 8 * MiB)).toBe(1);
  });

  it('VA/PA misalignment bounds the page size by the lowest differing bit', () => {
    const va = 0x7f0000200000;
    expect(ib_umem_find_best_pgsz(umem(run(0x40201, 1024), va), MLX5, va)).toBe(PG); // differ at bit 12
    expect(ib_umem_find_best_pgsz(umem(run(0x40210, 1024), va), MLX5, va)).toBe(64 * KiB); // bit 16
    // The IOVA (virt) is what must match the PA, not the user VA: virt 0x210000 restores 8 MiB.
    expect(ib_umem_find_best_pgsz(umem(run(0x40210, 1024), va), MLX5, 0x210000)).toBe(8 * MiB);
  });

  it('a discontinuity at a VA aligned only to 1 MiB limits pages to 1 MiB', () => {
    const va = 0x7f0000200000;
    // 1 MiB at PA 0x40200000, then 3 MiB at PA 0x80300000 (congruent with its VA 0x7f0000300000).
    const u = umem(runs([0x40200, 256], [0x80300, 768]), va);
    expect(u.nents).toBe(2);
    expect(ib_umem_find_best_pgsz(u, MLX5, va)).toBe(1 * MiB);
    expect(ib_umem_num_dma_blocks_at(va, 4 * MiB, 1 * MiB)).toBe(4);
    // A break after 3 pages puts a page boundary at VA + 12 KiB: only 4 KiB pages.
    expect(ib_umem_find_best_pgsz(umem(runs([0x40200, 3], [0x90203, 1021]), va), MLX5, va)).toBe(PG);
  });

  it('the offset into the first page does not change the answer when VA and PA agree', () => {
    const va = 0x7f0000200000 + 0x100;
    const u = umem(run(0x40200, 1024), va, 4 * MiB - 0x100);
    expect(ib_umem_find_best_pgsz(u, MLX5, va)).toBe(8 * MiB);
  });

  it('without 4 KiB in the bitmap a fragmented buffer gets 0; a congruent one the largest size', () => {
    const bm = 2 * MiB + GiB;
    const frag = new Int32Array(1024);
    for (let i = 0; i < 1024; i++) frag[i] = 0x40200 + 2 * i;
    expect(ib_umem_find_best_pgsz(umem(frag, 0x7f0000200000), bm, 0x7f0000200000)).toBe(0);
    // VA and PA agree modulo 1 GiB: one 1 GiB HW page covers the 4 MiB.
    expect(ib_umem_find_best_pgsz(umem(run(0x40200, 1024), 0x7f0000200000), bm, 0x7f0000200000)).toBe(GiB);
    // They agree only modulo 2 MiB (0x200000 vs 0x400000): 2 MiB pages, 2 of them.
    expect(ib_umem_find_best_pgsz(umem(run(0x40400, 1024), 0x7f0000200000), bm, 0x7f0000200000)).toBe(
      2 * MiB,
    );
  });

  it('the 2^31 boundary: mlx5 stops at 2 GiB pages; a bitmap with bit 32 reaches 4 GiB', () => {
    // 3 GiB contiguous at a 2 GiB-aligned VA; PA 6 GiB agrees with the VA modulo 4 GiB.
    const va = 0x7f0080000000;
    const u = umem(run(0x180000, 3 * 2 ** 18), va);
    expect(ib_umem_find_best_pgsz(u, MLX5, va)).toBe(2 * GiB);
    expect(ib_umem_num_dma_blocks_at(va, 3 * GiB, 2 * GiB)).toBe(2);
    const with4g = MLX5 | (1n << 32n);
    expect(ib_umem_find_best_pgsz(u, with4g, va)).toBe(4 * GiB);
    expect(ib_umem_num_dma_blocks_at(va, 3 * GiB, 4 * GiB)).toBe(2);
    // Bits above 53 are kept exactly: with IOVA = PA nothing bounds the size, so 2^63 it is.
    expect(ib_umem_find_best_pgsz(umem(run(0x180000, 16), 0x180000000), 1n << 63n, 0x180000000)).toBe(
      2 ** 63,
    );
    expect(bitmap64(1n << 63n, 't')).toEqual({ hi: 0x80000000, lo: 0 });
    expect(mlx5_mtt_pgsz_bitmap()).toBe(0xfffff000n);
    expect(bitmap64(MLX5, 't')).toEqual({ hi: 0, lo: 0xfffff000 });
  });

  it('through a translating IOMMU the DMA list is one IOVA range', () => {
    const frag = new Int32Array(1024);
    for (let i = 0; i < 1024; i++) frag[i] = 0x40200 + 2 * i;
    const u = umem_via_iommu(VA, 4 * MiB, 4 * MiB);
    expect(u.nents).toBe(1);
    expect(ib_umem_find_best_pgsz(u, MLX5, VA)).toBe(4 * MiB);
    expect(() => ib_umem_find_best_pgsz(umem(frag, VA), MLX5, 2 ** 53)).toThrow(RangeError);
  });
});

describe('IOMMU: iommu_pgsize and the PTEs of a buffer', () => {
  const bm = bitmap64(2 ** 12 + 2 ** 21, 'test');

  it('maps 4 KiB pages up to the 2 MiB boundary, then 2 MiB pages, then 4 KiB again', () => {
    const count = new Float64Array(1);
    expect(iommu_pgsize(bm, 0x1ff000, 0x3ff000, 4 * MiB, count)).toBe(PG);
    expect(count[0]).toBe(1);
    expect(iommu_pgsize(bm, 0x200000, 0x400000, 4 * MiB - PG, count)).toBe(2 * MiB);
    expect(count[0]).toBe(1);
    const ptes = entries_by_shift();
    expect(iommu_map_range(bm, 0x1ff000, 0x3ff000, 4 * MiB, ptes, count)).toBe(0);
    expect(ptes[12]).toBe(512);
    expect(ptes[21]).toBe(1);
  });

  it('IOVA and physical address must agree modulo the larger page', () => {
    const count = new Float64Array(1);
    expect(iommu_pgsize(bm, 0x200000, 0x201000, 4 * MiB, count)).toBe(PG);
    expect(count[0]).toBe(1024);
    expect(iommu_map_range(bm, 0x100, 0, PG, entries_by_shift(), count)).toBe(-22);
  });

  it('dma-iommu IOVAs are aligned to the buffer size rounded up to a power of two', () => {
    expect(dma_iommu_iova(1)).toBe(PG);
    expect(dma_iommu_iova(1000)).toBe(4 * MiB);
    expect(dma_iommu_iova(1024)).toBe(4 * MiB);
  });

  it('a 2 MiB-aligned contiguous buffer needs 2 MiB PTEs; an offset PA only 4 KiB ones', () => {
    const a = iommu_map_buffer(run(0x40200, 1024));
    expect(a.iova).toBe(4 * MiB);
    expect([a.ptes[12], a.ptes[21], a.total]).toEqual([0, 2, 2]);
    const b = iommu_map_buffer(run(0x40201, 1024));
    expect([b.ptes[12], b.ptes[21]]).toEqual([1024, 0]);
    const c = iommu_map_buffer(runs([0x80000, 512], [0x10000, 512], [0x30000, 100]));
    expect([c.ptes[12], c.ptes[21]]).toEqual([100, 2]);
    expect(() => iommu_map_buffer(run(0, 4), INTEL_IOMMU_PGSIZES, 0x800)).toThrow(RangeError);
  });

  it('a 1 GiB-aligned contiguous GiB is one 1 GiB PTE', () => {
    const m = iommu_map_buffer(run(0x40000, 2 ** 18));
    expect([m.ptes[12], m.ptes[21], m.ptes[30]]).toEqual([0, 0, 1]);
  });
});

describe('translation caches (IOTLB, MTT cache, STLB): the estimate', () => {
  it('equal entries: random miss rate is 1 - E/N (Che is exact there)', () => {
    const c = entries_by_shift();
    c[12] = 16384;
    const e = estimate_translation_cache(c, 64, 1);
    expect(e.random_miss_rate).toBeCloseTo(1 - 64 / 16384, 9);
    expect(e.lookups_per_access).toBe(1);
    const e4k = estimate_translation_cache(c, 64, PG);
    expect(e4k.lookups_per_access).toBeCloseTo(1 + 4095 / 4096, 12);
    expect(e4k.misses_per_access).toBeCloseTo((1 + 4095 / 4096) * (1 - 64 / 16384), 9);
    expect(e.sequential_misses_per_pass).toBe(16384);
    expect(e.sequential_cold_misses).toBe(16384);
  });

  it('entries that fit never miss once warm', () => {
    const c = entries_by_shift();
    c[21] = 32;
    const e = estimate_translation_cache(c, 64, PG);
    expect([e.random_miss_rate, e.misses_per_access, e.sequential_misses_per_pass]).toEqual([0, 0, 0]);
    expect(e.sequential_cold_misses).toBe(32);
  });

  it('more entries never hurt; large entries are kept more than 4 KiB ones', () => {
    const c = entries_by_shift();
    c[12] = 4096;
    c[21] = 16;
    let prev = 1;
    for (const E of [0, 8, 64, 512, 4096]) {
      const m = estimate_translation_cache(c, E, 64).random_miss_rate;
      expect(m).toBeLessThanOrEqual(prev);
      prev = m;
    }
    // 16 MiB in 4 KiB + 32 MiB in 2 MiB; with 64 entries the 2 MiB ones nearly always hit, so the
    // miss rate is about the 4 KiB share (1/3) times their miss rate (about 1 - 48/4096).
    const m = estimate_translation_cache(c, 64, 1).random_miss_rate;
    expect(m).toBeGreaterThan(0.32);
    expect(m).toBeLessThan(1 / 3);
    expect(estimate_translation_cache(c, 0, 1).random_miss_rate).toBe(1);
    expect(() => estimate_translation_cache(c, -1, 1)).toThrow(RangeError);
  });
});

describe('CPU TLB reach', () => {
  it('64 MiB of 4 KiB PTEs: 16384 translations, the STLB covers 1536 of them', () => {
    const l = layout_from_pfns(VA, 64 * MiB, run(0x10000, 16384));
    const r = cpu_tlb_reach(l);
    expect(r.translations_4k).toBe(16384);
    expect(r.coverage).toBeCloseTo(1536 / 16384, 12);
    expect(r.covered_bytes).toBe(1536 * PG);
    expect(r.random_miss_rate).toBeCloseTo(1 - 1536 / 16384, 9);
  });

  it('the same buffer PMD-mapped: 32 translations, all covered', () => {
    const l = layout_from_pfns(VA, 64 * MiB, run(0x10000, 16384), MAP_2M);
    const r = cpu_tlb_reach(l);
    expect([r.translations_4k, r.translations_2m, r.translations_1g]).toEqual([0, 32, 0]);
    expect(r.coverage).toBe(1);
    expect(r.random_miss_rate).toBe(0);
  });

  it('1 GiB leaves use the 1 GiB entries; with one such entry half of 2 GiB is covered', () => {
    const l = layout_from_pfns(VA, 2 * GiB, run(0x40000, 2 ** 19), MAP_1G);
    expect(cpu_tlb_reach(l).coverage).toBe(1);
    const r = cpu_tlb_reach(l, { name: 'tiny', shared_4k_2m: 64, entries_1g: 1 });
    expect(r.translations_1g).toBe(2);
    expect(r.coverage).toBe(0.5);
  });

  it('mixed: 2 MiB leaves take shared entries first, 4 KiB ones the rest', () => {
    const shift = new Uint8Array(512 + 3 * 512);
    shift.fill(MAP_4K, 0, 512);
    shift.fill(MAP_2M, 512);
    const l = layout_from_pfns(VA, shift.length * PG, run(0x10000, shift.length), shift);
    const r = cpu_tlb_reach(l, { name: 'small', shared_4k_2m: 100, entries_1g: 0 });
    expect([r.translations_4k, r.translations_2m]).toEqual([512, 3]);
    expect(r.covered_bytes).toBe(3 * 2 * MiB + 97 * PG);
    expect(STLB_SKYLAKE_SP.shared_4k_2m).toBe(1536);
  });
});

describe('device profiles: verdicts, descriptors, throughput', () => {
  const LOW = 0x10000; // 256 MiB: below every DMA mask
  const len = 8 * MiB;
  const n = len / PG;
  const contig = layout_from_pfns(VA, len, run(LOW, n));
  const fragPfns = new Int32Array(n);
  for (let i = 0; i < n; i++) fragPfns[i] = LOW + 2 * i;
  const frag = layout_from_pfns(VA, len, fragPfns);
  const chunks = layout_from_pfns(
    VA,
    len,
    runs([LOW + 4096, 512], [LOW, 512], [LOW + 8192, 512], [LOW + 1024, 512]),
  );

  it('a fully contiguous buffer suits every device', () => {
    for (const p of Object.values(DEVICE_PROFILES)) {
      const r = device_report(contig, p);
      expect(r.usable, `${p.name}: ${r.problems.join('; ')}`).toBe(true);
      expect(r.segments.count).toBe(1);
      expect(r.dma_ranges).toBe(1);
    }
    const rdma = device_report(contig, RDMA_NIC);
    expect(rdma.mtt).toMatchObject({ page_size: 8 * MiB, entries: 1, table_bytes: 8 });
    expect(rdma.throughput.efficiency).toBe(1);
    expect(device_report(contig, QAT_LIKE_ACCELERATOR).descriptors).toMatchObject({
      kind: 'flat buffer',
      per_buffer: 1,
    });
  });

  it('a 4 KiB-fragmented buffer: the NIC needs 2048 MTT entries, the flat-buffer devices refuse it', () => {
    const rdma = device_report(frag, RDMA_NIC);
    expect(rdma.usable).toBe(true);
    expect(rdma.sg_entries).toBe(2048);
    expect(rdma.mtt).toMatchObject({ page_size: PG, entries: 2048, table_bytes: 2048 * 8 });
    // 2048 entries fit the 4096-entry MTT cache: no misses once warm.
    expect(rdma.mtt!.cache.misses_per_access).toBe(0);
    for (const p of [QAT_LIKE_ACCELERATOR, CAMERA_DMA_NO_IOMMU]) {
      const r = device_report(frag, p);
      expect(r.usable).toBe(false);
      expect(r.problems.join()).toMatch(
        /needs one contiguous DMA range: the buffer is 2048 physical segments/,
      );
      expect(r.throughput.effective_bytes_per_s).toBe(0);
    }
    const nvme = device_report(frag, NVME_LIKE);
    expect(nvme.usable).toBe(true);
    expect(nvme.nvme).toEqual({ io_bytes: 128 * KiB, descriptors_per_io: 32, sgl_fraction: 0 });
  });

  it('2 MiB chunks: 4 MTT entries of 2 MiB; SGLs for NVMe; still too scattered for the flat-buffer devices', () => {
    const rdma = device_report(chunks, RDMA_NIC);
    expect(rdma.segments).toMatchObject({ count: 4, largest_bytes: 2 * MiB });
    expect(rdma.mtt).toMatchObject({ page_size: 2 * MiB, entries: 4 });
    expect(device_report(chunks, QAT_LIKE_ACCELERATOR).usable).toBe(false);
    expect(device_report(chunks, CAMERA_DMA_NO_IOMMU).usable).toBe(false);
    const nvme = device_report(chunks, NVME_LIKE);
    expect(nvme.nvme!.sgl_fraction).toBe(1);
    // 128 KiB I/Os at each of 2017 page offsets: the 3 x 31 straddling a chunk boundary hold 2
    // segments (2 SGL descriptors), the rest 1.
    expect(nvme.nvme!.descriptors_per_io).toBeCloseTo(1 + (3 * 31) / (n - 31), 12);
  });

  it('a translating IOMMU gives flat-buffer devices one IOVA range, paid for in IOTLB misses', () => {
    const r = device_report(frag, QAT_LIKE_ACCELERATOR, { iommu: 'translated' });
    expect(r.usable).toBe(true);
    expect(r.dma_ranges).toBe(1);
    expect(r.iommu_ptes!.ptes).toMatchObject({ '4K': 2048, '2M': 0, total: 2048 });
    // Sequential: 2048 PTEs > 64 IOTLB entries, so every pass misses 2048 times.
    expect(r.iommu_ptes!.iotlb.sequential_misses_per_pass).toBe(2048);
    expect(r.throughput.translation_ns).toBe(2048 * 330);
    const c = device_report(chunks, QAT_LIKE_ACCELERATOR, { iommu: 'translated' });
    expect(c.iommu_ptes!.ptes).toMatchObject({ '4K': 0, '2M': 4 });
    expect(c.iommu_ptes!.iova).toBe(8 * MiB);
  });

  it('the throughput model: time = bytes / link + descriptors + misses, each stated', () => {
    // 64 MiB fragmented at 4 KiB, random 4 KiB RDMA reads: 16384 MTT entries, 4096 cached.
    const big = new Int32Array(16384);
    for (let i = 0; i < big.length; i++) big[i] = LOW + 2 * i;
    const r = device_report(layout_from_pfns(VA, 64 * MiB, big), RDMA_NIC);
    const transfer = (4096 / 25e9) * 1e9;
    const misses = (1 + 4095 / 4096) * (1 - 4096 / 16384);
    expect(r.throughput.transfer_ns).toBeCloseTo(transfer, 9);
    expect(r.throughput.translation_ns).toBeCloseTo(misses * 500, 6);
    expect(r.throughput.effective_bytes_per_s / ((4096 / (transfer + misses * 500)) * 1e9)).toBeCloseTo(1, 9);
    // The QAT-like job costs one descriptor per pass.
    const q = device_report(contig, QAT_LIKE_ACCELERATOR);
    expect(q.throughput.descriptor_ns).toBe(1000);
    expect(q.throughput.efficiency).toBeCloseTo(((len / 12.5e9) * 1e9) / ((len / 12.5e9) * 1e9 + 1000), 12);
  });

  it('the camera: DMA mask, swiotlb limit, size limit and cache-line alignment', () => {
    const high = layout_from_pfns(VA, len, run(0x140000, n)); // 5 GiB
    expect(device_report(high, CAMERA_DMA_NO_IOMMU).problems.join()).toMatch(/above the 32-bit DMA mask/);
    const small = layout_from_pfns(VA, SWIOTLB_MAX_MAPPING, run(0x140000, SWIOTLB_MAX_MAPPING / PG));
    const s = device_report(small, CAMERA_DMA_NO_IOMMU);
    expect(s.usable).toBe(true);
    expect(s.notes.join()).toMatch(/bounced \(copied\) through swiotlb/);
    const huge = layout_from_pfns(VA, 128 * MiB, run(LOW, 32768));
    expect(device_report(huge, CAMERA_DMA_NO_IOMMU).problems.join()).toMatch(/exceeds the device's 64 MiB/);
    const odd = layout_from_pfns(VA + 32, PG, run(LOW, 2));
    expect(device_report(odd, CAMERA_DMA_NO_IOMMU).problems.join()).toMatch(/multiples of 64 bytes/);
  });

  it('pages not resident make the buffer unusable and leave the counts unknown', () => {
    const l = layout_from_pfns(VA, 4 * PG, [LOW, -1, LOW + 2, LOW + 3]);
    const r = device_report(l, RDMA_NIC);
    expect(r.usable).toBe(false);
    expect(r.sg_entries).toBeNull();
    expect(r.mtt).toBeNull();
    expect(r.problems[0]).toMatch(/1 of 4 pages are not resident/);
  });

  it('the report is plain data, deterministic, and formats in a few lines', () => {
    const a = device_report(frag, RDMA_NIC, { iommu: 'translated' });
    const b = device_report(frag, RDMA_NIC, { iommu: 'translated' });
    expect(JSON.stringify(a)).toBe(JSON.stringify(b));
    const text = format_device_report(a);
    expect(text.split('\n').length).toBeLessThanOrEqual(8);
    expect(text).toMatch(/^rdma-nic \(IOMMU translated\): usable/);
    expect(text).toMatch(/MTT: 1 entries of 8 MiB/);
    expect(text).toMatch(/IOMMU: 2048 PTEs/);
    expect(format_device_report(device_report(frag, CAMERA_DMA_NO_IOMMU))).toMatch(/NOT usable/);
  });

  it('bad input gets a clear RangeError', () => {
    expect(() => device_profile('gpu')).toThrow(/unknown device profile 'gpu' \(known: rdma-nic/);
    expect(device_profile('nvme-like')).toBe(NVME_LIKE);
    expect(() => device_report(contig, RDMA_NIC, { access_bytes: 0 })).toThrow(RangeError);
    expect(() => device_report(contig, NVME_LIKE, { access_bytes: 16 * MiB })).toThrow(/exceeds its/);
    expect(() => layout_from_pfns(VA, 3 * PG, [1, 2])).toThrow(/2 pfns for a buffer touching 3 pages/);
    expect(() => layout_from_pfns(VA, PG, [1], 13)).toThrow(/mapping size/);
    expect(() => layout_from_pfns(VA, 0, [])).toThrow(RangeError);
  });
});

describe('buffer_layout on a real machine', () => {
  const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
  const RW = PROT_READ | PROT_WRITE;

  it('reads the pfns of touched 4 KiB pages from the page tables, -1 elsewhere', () => {
    const m = Machine.boot({ memory: '1G' });
    const p = m.spawn();
    const len = 16 * PG;
    const addr = p.mmap(0, len, RW, ANON);
    p.touch(addr + 2 * PG, 4 * PG, { write: true });
    const l = buffer_layout(m.vm, p.mm, addr, len);
    expect(l.pfns.length).toBe(16);
    for (let i = 0; i < 16; i++) {
      const e = pte(m, p, addr + i * PG);
      if (i >= 2 && i < 6) {
        expect(l.pfns[i]).toBe(e!.pfn);
        expect(l.map_shift[i]).toBe(MAP_4K);
      } else {
        expect(e).toBeNull();
        expect(l.pfns[i]).toBe(-1);
        expect(l.map_shift[i]).toBe(0);
      }
    }
    expect(device_report(l, RDMA_NIC).problems[0]).toMatch(/12 of 16 pages are not resident/);
  });

  it('a fully touched buffer: every page resident, and a report for each profile', () => {
    const m = Machine.boot({ memory: '1G' });
    const p = m.spawn();
    const len = 256 * PG;
    const addr = p.mmap(0, len, RW, ANON);
    p.touch(addr, len, { write: true });
    const l = buffer_layout(m.vm, p.mm, addr, len);
    expect([...l.pfns].every((x) => x >= 0)).toBe(true);
    expect(new Set(l.pfns).size).toBe(256);
    for (let i = 0; i < 256; i += 37) expect(l.pfns[i]).toBe(pte(m, p, addr + i * PG)!.pfn);
    const r = device_report(l, RDMA_NIC);
    expect(r.usable).toBe(true);
    expect(r.mtt!.entries).toBeGreaterThanOrEqual(1);
    expect(r.segments.count).toBe(physical_segments(l.pfns).count);
    // An unaligned sub-range touches the pages holding its first and last byte.
    const sub = buffer_layout(m.vm, p.mm, addr + 100, 2 * PG);
    expect([...sub.pfns]).toEqual([l.pfns[0], l.pfns[1], l.pfns[2]]);
    p.munmap(addr, len);
    expect([...buffer_layout(m.vm, p.mm, addr, len).pfns].every((x) => x === -1)).toBe(true);
    expect(() => buffer_layout(m.vm, p.mm, addr, 0)).toThrow(RangeError);
  });
});
