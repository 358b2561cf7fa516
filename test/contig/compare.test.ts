/**
 * compareContenders(): copies of one machine state, the contenders on them, the cost and benefit
 * measured the same way for each, deterministic and isolated from one another.
 */
import { describe, expect, it } from 'vitest';
import {
  type Contender,
  cloneCopies,
  compareContenders,
  contender,
  contenders,
  registerContender,
  replayCopies,
} from '../../src/contig/compare.ts';
import { renderComparison } from '../../src/report/comparison.ts';
import { MiB } from '../vm/helpers.ts';
import { alternating, CONFIG, lightlyUsed } from './compare-helpers.ts';

describe('replayCopies', () => {
  it('gives identical machines: the same /proc/buddyinfo and /proc/kpageflags, byte for byte', () => {
    const copy = replayCopies(CONFIG, lightlyUsed);
    const a = copy();
    const b = copy();
    expect(a).not.toBe(b);
    expect(b.readFile('/proc/buddyinfo')).toBe(a.readFile('/proc/buddyinfo'));
    expect(
      Buffer.from(b.readFileBytes('/proc/kpageflags')).equals(
        Buffer.from(a.readFileBytes('/proc/kpageflags')),
      ),
    ).toBe(true);
    // A different seed is a different machine.
    const c = replayCopies({ ...CONFIG, seed: 4 }, lightlyUsed)();
    expect(
      Buffer.from(c.readFileBytes('/proc/kpageflags')).equals(
        Buffer.from(a.readFileBytes('/proc/kpageflags')),
      ),
    ).toBe(false);
  });
});

describe('cloneCopies', () => {
  it('copies a machine exactly: the comparison on clones equals the comparison on replays', () => {
    const replay = replayCopies(CONFIG, lightlyUsed);
    const clones = cloneCopies(replay());
    const request = { bytes: 64 * MiB };
    const contenders = ['rfc', 'best-effort', 'hugetlb', 'thp'];
    const a = compareContenders({ copy: replay, request, contenders });
    expect(compareContenders({ copy: clones, request, contenders })).toEqual(a);
  });
});

describe('compareContenders', () => {
  it('is deterministic: the same seed gives deeply equal, JSON-serialisable results', () => {
    const run = () =>
      compareContenders({
        copy: replayCopies(CONFIG, lightlyUsed),
        request: { bytes: 64 * MiB, devices: ['rdma-nic', 'qat-like-accelerator'] },
        contenders: ['rfc', 'best-effort', 'hugetlb', 'thp', '4k'],
      });
    const a = run();
    expect(run()).toEqual(a);
    expect(JSON.parse(JSON.stringify(a))).toEqual(a);
    expect(a.results.map((r) => r.name)).toEqual(['rfc', 'best-effort', 'hugetlb', 'thp', '4k']);
    expect(a.results.every((r) => r.ok)).toBe(true);
  });

  it('isolates contenders: a request on one copy changes nothing on the next', () => {
    const copy = replayCopies(CONFIG, lightlyUsed);
    const request = { bytes: 128 * MiB };
    const alone = compareContenders({ copy, request, contenders: ['4k'] }).results[0];
    const after = compareContenders({ copy, request, contenders: ['rfc', 'hugetlb', '4k'] }).results[2];
    expect(after).toEqual(alone);
  });

  it('700 MiB: rfc gets one segment by migrating, where rfc-poc is ENOMEM (one buddy block, 4 MiB at most)', () => {
    const r = compareContenders({
      copy: replayCopies(CONFIG, lightlyUsed),
      request: { bytes: 700 * MiB },
      contenders: ['rfc-poc', 'rfc'],
    });
    const [poc, rfc] = r.results;
    expect(poc.ok).toBe(false);
    expect(poc.errno).toBe('ENOMEM');
    expect(poc.benefit).toEqual([]);
    expect(rfc.ok).toBe(true);
    expect(rfc.len).toBe(700 * MiB);
    expect(rfc.cost!.pages_migrated).toBeGreaterThan(0);
    expect(rfc.cost!.latency_ns).toBeGreaterThan(poc.cost!.latency_ns);
    const nic = rfc.benefit[0];
    expect(nic.device).toBe('rdma-nic');
    expect([nic.segments, nic.sg_entries, nic.pages]).toEqual([1, 1, 700 * 256]);
    // MAP_CONTIG maps 4 KiB PTEs: contiguity helps the NIC's MTT, not the CPU's TLB.
    expect(nic.mtt_entries).toBeLessThanOrEqual(350);
    expect(nic.cpu_tlb['4K']).toBe(700 * 256);
  });

  it('under fragmentation, strict rfc is ENOMEM and best effort succeeds with more segments', () => {
    const r = compareContenders({
      copy: replayCopies(CONFIG, alternating),
      request: { bytes: 64 * MiB, devices: ['rdma-nic', 'qat-like-accelerator'] },
      contenders: ['rfc', 'best-effort'],
    });
    const [strict, best] = r.results;
    expect(strict.errno).toBe('ENOMEM');
    expect(best.ok).toBe(true);
    // Free memory is in 4 MiB pieces with kernel blocks between them.
    expect(best.benefit[0].segments).toBe(16);
    expect(best.benefit[0].largest_segment_bytes).toBe(4 * MiB);
    expect(best.benefit[0].usable).toBe(true);
    // The accelerator needs one contiguous range: 16 segments will not do.
    expect(best.benefit[1].usable).toBe(false);
  });

  it('hugetlb grows the pool by what the request needs and maps 2 MiB pages; 4k is the baseline', () => {
    const r = compareContenders({
      copy: replayCopies(CONFIG),
      request: { bytes: 63 * MiB },
      contenders: ['hugetlb', '4k'],
    });
    const [h, base] = r.results;
    expect(h.ok).toBe(true);
    expect(h.len).toBe(64 * MiB); // rounded up to whole huge pages
    expect(h.note).toMatch(/^32 of 32 pages added to the pool; 32 huge pages mapped/);
    expect(h.benefit[0].cpu_tlb).toMatchObject({ '4K': 0, '2M': 32 });
    expect(h.benefit[0].mtt_page_size).toBeGreaterThanOrEqual(2 * MiB);
    expect(base.ok).toBe(true);
    expect(base.benefit[0].cpu_tlb['4K']).toBe(63 * 256);
    expect(base.cost!.latency_ns).toBeGreaterThan(0);
  });

  it('skips hugetlb-1g when the machine is too small, and says why', () => {
    const r = compareContenders({
      copy: replayCopies(CONFIG),
      request: { bytes: 1024 * MiB },
      contenders: ['hugetlb-1g'],
    });
    expect(r.results[0].skipped).toMatch(/exceed RAM/);
    expect(r.results[0].cost).toBeNull();
  });

  it('takes registered contenders, and refuses unknown names and bad sizes', () => {
    const idle: Contender = {
      name: 'test-idle',
      summary: 'asks for nothing',
      run: () => ({ addr: 0, len: 0, ok: false, errno: 'ENOSYS', note: 'not implemented' }),
    };
    registerContender(idle);
    expect(contender('test-idle')).toBe(idle);
    expect(contenders().map((c) => c.name)).toEqual(
      expect.arrayContaining([
        'rfc-poc',
        'rfc',
        'bounded',
        'best-effort',
        'hugetlb',
        'hugetlb-1g',
        'thp',
        '4k',
        'test-idle',
      ]),
    );
    const copy = replayCopies(CONFIG);
    const r = compareContenders({ copy, request: { bytes: MiB }, contenders: ['test-idle'] });
    expect(r.results[0]).toMatchObject({ ok: false, errno: 'ENOSYS', note: 'not implemented' });
    expect(() => contender('nope')).toThrow(/unknown contender 'nope' \(known: rfc-poc/);
    expect(() => compareContenders({ copy, request: { bytes: 1000 } })).toThrow(
      /not a positive multiple of 4096/,
    );
    expect(() => registerContender({ ...idle, name: 'two words' })).toThrow(/one word/);
  });

  it('renders tables with a row per contender', () => {
    const r = compareContenders({
      copy: replayCopies(CONFIG, alternating),
      request: { bytes: 16 * MiB },
      contenders: ['rfc-poc', 'rfc', 'best-effort'],
    });
    const text = renderComparison(r);
    expect(text).toMatch(/Request: 16 MiB for uid 1000/);
    for (const name of ['rfc-poc', 'rfc', 'best-effort']) expect(text).toContain(name);
    expect(text).toContain('ENOMEM');
    expect(text).not.toContain('Collateral');
  });
});
