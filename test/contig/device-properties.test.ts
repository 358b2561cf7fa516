/**
 * The device model's kernel ports against straightforward references on random buffers: the SG
 * table ib_umem_get() builds (512-page appends) against a plain greedy merge;
 * ib_umem_find_best_pgsz() and ib_umem_num_dma_blocks() against the kernel's code written
 * with BigInt (u64 wrap-around and all); the IOMMU PTEs against "largest aligned page that
 * fits" at every step.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import { INTEL_IOMMU_PGSIZES, iommu_map_buffer } from '../../src/contig/iommu.ts';
import { sg_nents, sg_table_from_pages } from '../../src/contig/scatterlist.ts';
import {
  ib_umem_find_best_pgsz,
  ib_umem_num_dma_blocks_at,
  ib_umem_sg,
  mlx5_mtt_pgsz_bitmap,
  umem_direct,
} from '../../src/contig/umem.ts';

const PG = 4096;
const U64 = (1n << 64n) - 1n;

/** A buffer: runs of pages, each contiguous with the previous or not, some 2 MiB aligned. */
const arbRuns = fc.array(
  fc.record({
    pfn: fc.integer({ min: 0, max: 2 ** 31 - 5000 }),
    pages: fc.integer({ min: 1, max: 700 }),
    follow: fc.boolean(),
    align: fc.constantFrom(0, 9, 18),
  }),
  { minLength: 1, maxLength: 8 },
);

function pfnsOf(runs: Array<{ pfn: number; pages: number; follow: boolean; align: number }>): Int32Array {
  const out: number[] = [];
  for (const r of runs) {
    let p = Math.floor(r.pfn / 2 ** r.align) * 2 ** r.align;
    if (r.follow && out.length && out[out.length - 1] + r.pages < 2 ** 31) p = out[out.length - 1] + 1;
    for (let i = 0; i < r.pages; i++) out.push(p + i);
  }
  return Int32Array.from(out);
}

/** Greedy SG: extend the entry while the next pfn follows and the entry is below max pages. */
function refSg(pfns: Int32Array, max_segment: number): Array<[number, number]> {
  const maxPages = Math.floor(max_segment / PG);
  const out: Array<[number, number]> = [];
  for (let i = 0; i < pfns.length; i++) {
    const last = out[out.length - 1];
    if (last && pfns[i] === last[0] + last[1] && last[1] < maxPages) last[1]++;
    else out.push([pfns[i], 1]);
  }
  return out;
}

/** drivers/infiniband/core/umem.c ib_umem_find_best_pgsz(), in u64 BigInt arithmetic. */
function refFindBestPgsz(
  sg: Array<[bigint, bigint]>,
  address: bigint,
  length: bigint,
  bitmap: bigint,
  virt: bigint,
): bigint {
  const genmask = (h: bigint, l: bigint) => (U64 << l) & (U64 >> (63n - h)) & U64;
  const bits_per = (n: bigint) => (n < 2n ? 1n : BigInt(n.toString(2).length));
  let curr_len = 0n;
  let curr_base = U64; // ~0
  let va = virt;
  let mask = bitmap & genmask(63n, bits_per(((length - 1n + virt) & U64) ^ virt));
  let pgoff = address & 4095n;
  sg.forEach(([addr, len], i) => {
    const end = curr_base + curr_len; // check_add_overflow
    if (end > U64 || end !== addr) {
      curr_base = addr;
      curr_len = 0n;
      mask |= ((curr_base + pgoff) & U64) ^ va;
      if (i !== 0) mask |= va;
    }
    curr_len += len;
    va = (va + len - pgoff) & U64;
    pgoff = 0n;
  });
  if (mask) {
    let tz = 0n;
    while (!((mask >> tz) & 1n)) tz++;
    bitmap &= genmask(tz, 0n);
  }
  return bitmap ? 1n << BigInt(bitmap.toString(2).length - 1) : 0n;
}

const arbBitmap = fc.oneof(
  fc.constant(mlx5_mtt_pgsz_bitmap()),
  fc.bigInt({ min: 0n, max: U64 }),
  fc
    .array(fc.integer({ min: 9, max: 40 }), { minLength: 1, maxLength: 5 })
    .map((bits) => bits.reduce((m, b) => m | (1n << BigInt(b)), 0n)),
);

describe('device model against references', () => {
  test.prop([
    arbRuns,
    fc.integer({ min: 0, max: 4095 }),
    fc.constantFrom(PG, 65536, 3 * 2 ** 20, 2 ** 31, 0xffffffff),
  ])('ib_umem_get SG table = greedy merge at max_segment', (runs, offset, maxSeg) => {
    const pfns = pfnsOf(runs);
    const addr = 0x7f0000000000 + offset;
    const length = pfns.length * PG - offset;
    const sg = ib_umem_sg(pfns, addr, length, maxSeg);
    const ref = refSg(pfns, maxSeg);
    expect(sg.nents).toBe(ref.length);
    for (let i = 0; i < ref.length; i++) {
      expect(sg.page[i]).toBe(ref[i][0]);
      expect(sg.length[i]).toBe(ref[i][1] * PG);
    }
    expect(sg_nents(pfns, maxSeg)).toBe(ref.length);
    expect(sg_table_from_pages(pfns, 0, pfns.length * PG, maxSeg).nents).toBe(ref.length);
  });

  test.prop([
    arbRuns,
    fc.integer({ min: 0, max: 2 ** 35 }),
    fc.integer({ min: 0, max: 4095 }),
    fc.integer({ min: 0, max: 4095 }),
    fc.oneof(fc.constant(-1), fc.integer({ min: 0, max: 2 ** 48 - 2 ** 33 })),
    fc.constantFrom(PG, 65536, 2 ** 31),
    arbBitmap,
  ])(
    'ib_umem_find_best_pgsz and ib_umem_num_dma_blocks = the kernel in BigInt',
    (runs, vpage, offset, trim, virtIn, maxSeg, bitmap) => {
      const pfns = pfnsOf(runs);
      const addr = vpage * PG + offset;
      // A length that still touches every page: the last page keeps at least one byte.
      const length = Math.max(1, pfns.length * PG - offset - Math.min(trim, PG - 1));
      const u = umem_direct(addr, length, ib_umem_sg(pfns, addr, length, maxSeg));
      const virt = virtIn < 0 ? addr : virtIn;
      const sg: Array<[bigint, bigint]> = [];
      for (let i = 0; i < u.nents; i++) sg.push([BigInt(u.dma_address[i]), BigInt(u.dma_length[i])]);
      const want = refFindBestPgsz(sg, BigInt(addr), BigInt(length), bitmap, BigInt(virt));
      const got = ib_umem_find_best_pgsz(u, bitmap, virt);
      expect(BigInt(got)).toBe(want);
      if (want) {
        const blocks =
          ((BigInt(virt) + BigInt(length) + want - 1n) / want) * want - (BigInt(virt) / want) * want;
        expect(BigInt(ib_umem_num_dma_blocks_at(virt, length, got))).toBe(blocks / want);
      }
    },
  );

  test.prop([arbRuns, fc.integer({ min: 0, max: 2 ** 20 }), fc.constantFrom(0, 9, 18)])(
    'IOMMU PTEs = largest page aligned on both sides that fits, at every step; bytes conserved',
    (runs, iovaPage, iovaAlign) => {
      const pfns = pfnsOf(runs);
      const iova = Math.floor(iovaPage / 2 ** iovaAlign) * 2 ** iovaAlign * PG;
      const m = iommu_map_buffer(pfns, INTEL_IOMMU_PGSIZES, iova);
      const want = new Map<number, number>();
      let i = 0;
      while (i < pfns.length) {
        let j = i + 1;
        while (j < pfns.length && pfns[j] === pfns[j - 1] + 1) j++;
        let io = iova + i * PG;
        let pa = pfns[i] * PG;
        let left = (j - i) * PG;
        while (left > 0) {
          const s = [2 ** 30, 2 ** 21, PG].find((z) => io % z === 0 && pa % z === 0 && z <= left)!;
          want.set(s, (want.get(s) ?? 0) + 1);
          io += s;
          pa += s;
          left -= s;
        }
        i = j;
      }
      expect(m.ptes[12]).toBe(want.get(PG) ?? 0);
      expect(m.ptes[21]).toBe(want.get(2 ** 21) ?? 0);
      expect(m.ptes[30]).toBe(want.get(2 ** 30) ?? 0);
      expect(m.ptes[12] * PG + m.ptes[21] * 2 ** 21 + m.ptes[30] * 2 ** 30).toBe(pfns.length * PG);
    },
  );
});
