/**
 * The KPF_* layout by release: the bits 6.18 reports are the header's, and older releases lack
 * the bits they did not have yet (kernel-page-flags.h history in src/snapshot/kpageflags.ts).
 */
import { describe, expect, it } from 'vitest';
import {
  decodeKpageflags,
  KPF,
  KPF_DEFS,
  kpfNames,
  kpfTest,
  parseKernelVersion,
} from '../../src/snapshot/kpageflags.ts';

describe('decodeKpageflags', () => {
  it('gives 6.18 the bits of include/uapi/linux/kernel-page-flags.h and include/linux/kernel-page-flags.h', () => {
    const l = decodeKpageflags('6.18.44-fc-v669');
    expect(l.version).toEqual([6, 18, 44]);
    expect(l.bits).toMatchObject({
      KPF_LOCKED: 0,
      KPF_SLAB: 7,
      KPF_BUDDY: 10,
      KPF_MMAP: 11,
      KPF_ANON: 12,
      KPF_COMPOUND_HEAD: 15,
      KPF_COMPOUND_TAIL: 16,
      KPF_HUGE: 17,
      KPF_NOPAGE: 20,
      KPF_THP: 22,
      KPF_OFFLINE: 23,
      KPF_ZERO_PAGE: 24,
      KPF_IDLE: 25,
      KPF_PGTABLE: 26,
      KPF_RESERVED: 32,
      KPF_MLOCKED: 33,
      KPF_OWNER_2: 34,
      KPF_SOFTDIRTY: 40,
      KPF_ARCH_2: 41,
      KPF_ARCH_3: 42,
    });
    // Gone in 6.12: PG_error, PG_uncached; PG_mappedtodisk renamed.
    expect(l.bits.KPF_ERROR).toBeUndefined();
    expect(l.bits.KPF_UNCACHED).toBeUndefined();
    expect(l.bits.KPF_MAPPEDTODISK).toBeUndefined();
    expect(l.bits.KPF_BALLOON).toBeUndefined();
    expect(l.buddy_on_every_page).toBe(true);
  });

  it('gives 4.14 no OFFLINE (BALLOON then) and 4.9 no PGTABLE', () => {
    const l414 = decodeKpageflags('4.14.0-1.el7');
    expect(l414.bits.KPF_BALLOON).toBe(23);
    expect(l414.bits.KPF_OFFLINE).toBeUndefined();
    expect(l414.bits.KPF_ERROR).toBe(1);
    expect(l414.bits.KPF_UNCACHED).toBe(39);
    expect(l414.bits.KPF_ARCH_2).toBeUndefined();
    expect(l414.bits.KPF_PGTABLE).toBeUndefined();
    expect(decodeKpageflags('4.18.0').bits.KPF_PGTABLE).toBe(26);
    expect(decodeKpageflags('4.9.337').bits.KPF_IDLE).toBe(25);
    expect(decodeKpageflags('4.2.0').bits.KPF_IDLE).toBeUndefined();
    expect(decodeKpageflags('3.19.0').bits.KPF_ZERO_PAGE).toBeUndefined();
    expect(decodeKpageflags('4.4.0').buddy_on_every_page).toBe(false);
  });

  it('gives 5.x OFFLINE from 5.1, ARCH_2 from 5.10, and 6.2+ ARCH_3', () => {
    expect(decodeKpageflags('5.0.21').bits.KPF_BALLOON).toBe(23);
    expect(decodeKpageflags('5.4.0-150-generic').bits.KPF_OFFLINE).toBe(23);
    expect(decodeKpageflags('5.4.0').bits.KPF_ARCH_2).toBeUndefined();
    expect(decodeKpageflags('5.10.0').bits.KPF_ARCH_2).toBe(41);
    expect(decodeKpageflags('6.1.0').bits.KPF_ARCH_3).toBeUndefined();
    expect(decodeKpageflags('6.6.0').bits.KPF_ARCH_3).toBe(42);
    expect(decodeKpageflags('6.11.0').bits.KPF_ERROR).toBe(1);
  });

  it('never gives two flags one bit in one release', () => {
    for (const r of [
      '2.6.32',
      '3.10.0',
      '4.14.0',
      '5.0.0',
      '5.1.0',
      '5.15.0',
      '6.11.0',
      '6.12.0',
      '6.18.0',
    ]) {
      const bits = Object.values(decodeKpageflags(r).bits);
      expect(new Set(bits).size, r).toBe(bits.length);
    }
    expect(KPF_DEFS.every((d) => d.bit >= 0 && d.bit < 64)).toBe(true);
  });

  it('refuses what is not a release, and kernels before kpageflags', () => {
    expect(() => parseKernelVersion('linux')).toThrow(RangeError);
    expect(() => decodeKpageflags('2.6.24')).toThrow(/predates/);
  });

  it('tests and names bits of the two-word layout', () => {
    const w = new Uint32Array([(1 << KPF.KPF_BUDDY) | (1 << KPF.KPF_LRU), 1 << (KPF.KPF_MLOCKED - 32)]);
    expect(kpfTest(w, 0, KPF.KPF_BUDDY)).toBe(true);
    expect(kpfTest(w, 0, KPF.KPF_SLAB)).toBe(false);
    expect(kpfTest(w, 0, KPF.KPF_MLOCKED)).toBe(true);
    expect(kpfNames(decodeKpageflags('6.18.0'), w[0], w[1])).toEqual(['KPF_LRU', 'KPF_BUDDY', 'KPF_MLOCKED']);
  });
});
