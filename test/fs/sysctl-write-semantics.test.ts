/**
 * Writes to the page allocator's sysctls are accepted, rejected or half-taken exactly as on the
 * live 6.18 kernel (docs/kernel-6.18-notes.md §10, every cell of its table, plus the inputs the
 * table tested on min_free_kbytes only): the value stored, EINVAL (and then nothing changes), and
 * the byte count a raw write() returns.
 */
import { describe, expect, it } from 'vitest';
import { page_alloc_sysctl_table } from '../../src/fs/sysctl/vm.ts';
import { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import { VM_SYSCTLS } from './format.ts';

const NAMES = VM_SYSCTLS;
type Name = (typeof NAMES)[number];

/** 'EINVAL', 'same' (success, nothing changed), or the value read back afterwards. */
type Outcome = 'EINVAL' | 'same' | string;

// The §10 table: input, then one outcome per sysctl in NAMES order. min_free_kbytes cells the
// experiment did not run (to keep the VM alive) follow the source, as the notes say.
const TABLE: Array<[string, Outcome[]]> = [
  ['abc', ['EINVAL', 'EINVAL', 'EINVAL', 'same', 'EINVAL', 'EINVAL']],
  ['', ['same', 'same', 'same', 'same', 'same', 'same']],
  ['  12  \n', ['12', '12', '12', '12 256 32 0 0', 'EINVAL', '12']],
  ['12 13', ['12', '12', '12', '12 13 32 0 0', 'EINVAL', '12']],
  ['-1', ['EINVAL', 'EINVAL', 'EINVAL', '0 256 32 0 0', 'EINVAL', 'EINVAL']],
  ['0', ['0', 'EINVAL', '0', '0 256 32 0 0', '0', '0']],
  ['1', ['1', '1', '1', '1 256 32 0 0', '1', 'EINVAL']],
  ['3001', ['3001', 'EINVAL', '3001', '3001 256 32 0 0', 'EINVAL', '3001']],
  ['99999999999', ['EINVAL', 'EINVAL', 'EINVAL', 'same', 'EINVAL', 'EINVAL']],
  ['7', ['7', '7', '7', '7 256 32 0 0', 'EINVAL', 'EINVAL']],
  ['8', ['8', '8', '8', '8 256 32 0 0', 'EINVAL', '8']],
  ['4', ['4', '4', '4', '4 256 32 0 0', 'EINVAL', 'EINVAL']],
  ['+5', ['EINVAL', 'EINVAL', 'EINVAL', 'same', 'EINVAL', 'EINVAL']],
  ['0x10', ['16', '16', '16', '16 256 32 0 0', 'EINVAL', '16']],
];

const boot = (): Machine => Machine.boot({ memory: '512M', cpus: 2 });
const read = (m: Machine, name: Name): string =>
  m.readFile(`/proc/sys/vm/${name}`).replace(/\t/g, ' ').trimEnd();
/** Everything a write could disturb: all six values and the zones' watermarks, reserves, pcp sizes. */
const state = (m: Machine): string =>
  NAMES.map((n) => read(m, n)).join('|') + m.readFile('/proc/zoneinfo') + m.readFile('/proc/meminfo');

describe('the §10 table', () => {
  for (const [input, outcomes] of TABLE) {
    NAMES.forEach((name, col) => {
      const want = outcomes[col];
      it(`${name} <- ${JSON.stringify(input)}: ${want}`, () => {
        const m = boot();
        const before = state(m);
        const write = () => m.writeFile(`/proc/sys/vm/${name}`, input);
        if (want === 'EINVAL') {
          expect(write).toThrow(ErrnoError);
          try {
            write();
          } catch (e) {
            expect((e as ErrnoError).code).toBe('EINVAL');
            expect((e as ErrnoError).syscall).toBe('write');
          }
          expect(state(m)).toBe(before);
        } else if (want === 'same') {
          write();
          expect(state(m)).toBe(before);
        } else {
          write();
          expect(read(m, name)).toBe(want);
        }
      });
    });
  }

  it.each([
    ['  67000  \n', '67000'],
    ['67000 13', '67000'],
    ['0x10600', '67072'],
    ['0204000', '67584'],
  ])('min_free_kbytes <- %j: %s', (input, want) => {
    const m = boot();
    m.writeFile('/proc/sys/vm/min_free_kbytes', input);
    expect(read(m, 'min_free_kbytes')).toBe(want);
    expect(m.mm.sysctl.user_min_free_kbytes).toBe(Number(want));
  });
});

describe('write() byte counts (the r= column)', () => {
  const handler = (m: Machine, name: Name) => page_alloc_sysctl_table(m.mm).find((e) => e.procname === name)!;
  it.each([
    ['watermark_scale_factor', '12 13', 0, 3],
    ['watermark_boost_factor', '12 13', 0, 3],
    ['percpu_pagelist_high_fraction', '12 13', 0, 3],
    ['min_free_kbytes', '67000 13', 0, 6],
    ['min_free_kbytes', '  67000  \n', 0, 10],
    ['min_free_kbytes', '', 0, 0],
    ['lowmem_reserve_ratio', '12 13', 0, 5],
    ['lowmem_reserve_ratio', 'abc', 0, 3],
    ['lowmem_reserve_ratio', '-1', 0, 2],
    ['lowmem_reserve_ratio', '99999999999', 0, 11],
    ['lowmem_reserve_ratio', '+5', 0, 2],
    ['lowmem_reserve_ratio', '', 0, 0],
    ['defrag_mode', '12 13', -22, 5],
  ] as Array<[Name, string, number, number]>)(
    '%s <- %j returns err %i, count %i',
    (name, input, err, len) => {
      const rc = handler(boot(), name).proc_handler(true, input);
      expect(rc.err).toBe(err);
      if (!err) expect(rc.len).toBe(len);
    },
  );

  it('the rest of a short write, written again at position 3, would change nothing', () => {
    // STRICT mode ignores numeric writes at a non-zero position, so `printf 12 13` leaves 12.
    const m = boot();
    m.writeFile('/proc/sys/vm/watermark_scale_factor', '12 13');
    expect(read(m, 'watermark_scale_factor')).toBe('12');
  });
});

describe('percpu_pagelist_high_fraction rollback', () => {
  it('a value 1..7 is rolled back and leaves the pcp sizes alone', () => {
    const m = boot();
    m.writeFile('/proc/sys/vm/percpu_pagelist_high_fraction', '16');
    const before = state(m);
    expect(() => m.writeFile('/proc/sys/vm/percpu_pagelist_high_fraction', '7')).toThrow(/EINVAL/);
    expect(read(m, 'percpu_pagelist_high_fraction')).toBe('16');
    expect(state(m)).toBe(before);
  });
});

describe('lowmem_reserve_ratio leniency', () => {
  it('stores the values before a bad one and still succeeds', () => {
    const m = boot();
    m.writeFile('/proc/sys/vm/lowmem_reserve_ratio', '100 abc');
    expect(read(m, 'lowmem_reserve_ratio')).toBe('100 256 32 0 0');
  });

  it('turns every ratio below 1 into 0, negative ones included', () => {
    const m = boot();
    m.writeFile('/proc/sys/vm/lowmem_reserve_ratio', '-5 0 -2147483648 7 9');
    expect(read(m, 'lowmem_reserve_ratio')).toBe('0 0 0 7 9');
  });

  it('fills at most MAX_NR_ZONES slots', () => {
    const m = boot();
    m.writeFile('/proc/sys/vm/lowmem_reserve_ratio', '1 2 3 4 5 6 7');
    expect(read(m, 'lowmem_reserve_ratio')).toBe('1 2 3 4 5');
  });
});
