/**
 * The userspace fallback ladder: MAP_CONTIG, then best effort, then hugetlb from the pool, then
 * 4 KiB pages with MADV_HUGEPAGE — each rung reached in a case built for it.
 */
import { describe, expect, it } from 'vitest';
import { replayCopies } from '../../src/contig/compare.ts';
import { contigFallback } from '../../src/contig/fallback.ts';
import { renderFallback } from '../../src/report/comparison.ts';
import { MiB } from '../vm/helpers.ts';
import { alternating, CONFIG } from './compare-helpers.ts';

const requester = (m: ReturnType<ReturnType<typeof replayCopies>>) =>
  m.spawn({ uid: 1000, gid: 1000, rlimits: { memlock: Number.POSITIVE_INFINITY } });

describe('contigFallback', () => {
  it('stops at MAP_CONTIG when the kernel has one contiguous run to give', () => {
    const m = replayCopies({ ...CONFIG, map_contig: 'rfc' })();
    const f = contigFallback(m, requester(m), 64 * MiB);
    expect(f.rung).toBe('contig');
    expect(f.attempts.map((a) => [a.rung, a.ok])).toEqual([['contig', true]]);
    expect(f.attempts[0].latency_ns).toBeGreaterThan(0);
    expect(f.device).toMatchObject({ device: 'rdma-nic', segments: 1, sg_entries: 1 });
    expect(f.len).toBe(64 * MiB);
  });

  it('takes best effort when no single run can be freed up', () => {
    const m = replayCopies({ ...CONFIG, map_contig: 'rfc' }, alternating)();
    const f = contigFallback(m, requester(m), 64 * MiB, { device: 'qat-like-accelerator' });
    expect(f.rung).toBe('contig-best-effort');
    expect(f.attempts.map((a) => [a.rung, a.errno])).toEqual([
      ['contig', 'ENOMEM'],
      ['contig-best-effort', null],
    ]);
    expect(f.device).toMatchObject({ device: 'qat-like-accelerator', segments: 16, usable: false });
  });

  it('falls to hugetlb under the 2017 POC (4 MiB at most) when the pool has the pages', () => {
    const m = replayCopies({ ...CONFIG, map_contig: 'rfc-poc', hugetlb: 'hugepages=40' })();
    const f = contigFallback(m, requester(m), 64 * MiB);
    expect(f.rung).toBe('hugetlb');
    expect(f.attempts.map((a) => [a.rung, a.errno])).toEqual([
      ['contig', 'ENOMEM'],
      ['contig-best-effort', 'ENOMEM'],
      ['hugetlb', null],
    ]);
    expect(f.device!.cpu_tlb).toMatchObject({ '4K': 0, '2M': 32 });
  });

  it('ends on 4 KiB pages with MADV_HUGEPAGE when the pool is short, saying why it skipped hugetlb', () => {
    const m = replayCopies({ ...CONFIG, map_contig: 'rfc-poc', hugetlb: 'hugepages=8' })();
    const f = contigFallback(m, requester(m), 64 * MiB);
    expect(f.rung).toBe('4k-thp');
    expect(f.attempts[2]).toMatchObject({
      rung: 'hugetlb',
      ok: false,
      errno: null,
      note: 'the hugetlb pool has 8 free 2 MiB pages, 32 needed',
    });
    // THP on a clean machine: the buffer is mapped with 2 MiB pages.
    expect(f.device!.cpu_tlb['2M']).toBe(32);
    expect(renderFallback(f)).toMatch(/Ended on: 4k-thp/);
  });

  it('sees through a kernel that ignores MAP_CONTIG and gives the mapping back', () => {
    const m = replayCopies({ ...CONFIG, map_contig: 'linux' })();
    const p = requester(m);
    const maps = m.readFile(`/proc/${p.pid}/maps`);
    const f = contigFallback(m, p, 16 * MiB, { rungs: ['contig', 'contig-best-effort'] });
    expect(f.rung).toBeNull();
    expect(f.device).toBeNull();
    expect(f.attempts.map((a) => a.note)).toEqual([
      'the kernel ignored MAP_CONTIG: the mapping was not one resident physical segment',
      'MAP_CONTIG is not supported by this kernel',
    ]);
    expect(m.readFile(`/proc/${p.pid}/maps`)).toBe(maps);
  });

  it('refuses bad sizes and unknown rungs', () => {
    const m = replayCopies(CONFIG)();
    const p = requester(m);
    expect(() => contigFallback(m, p, 0)).toThrow(/bytes 0/);
    expect(() => contigFallback(m, p, MiB, { rungs: ['mmap' as never] })).toThrow(/unknown rung 'mmap'/);
  });
});
