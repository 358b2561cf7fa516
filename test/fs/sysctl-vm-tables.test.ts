/**
 * Writes to the address-space sysctls (max_map_count, overcommit_*, *_reserve_kbytes,
 * swappiness, min_unmapped_ratio, mmap_min_addr) behave as on the live 6.18 kernel: each cell of
 * the table below was measured on our machines with write(2) (bytes returned or the errno, then
 * the value read back; every sysctl restored afterwards). Also: what the kernel does after a
 * write (overcommit_ratio and _kbytes clear each other, min_unmapped_pages, the effective
 * mmap_min_addr, CommitLimit), EPERM and EACCES.
 */
import { describe, expect, it } from 'vitest';
import { meminfo_field } from '../../src/fs/proc/meminfo.ts';
import { vm_sysctl_tables } from '../../src/fs/sysctl/vm_tables.ts';
import type { Cred } from '../../src/fs/vfs.ts';
import { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ } from '../../src/vm/uapi.ts';

const NAMES = [
  'max_map_count',
  'overcommit_memory',
  'overcommit_ratio',
  'overcommit_kbytes',
  'swappiness',
  'min_unmapped_ratio',
  'mmap_min_addr',
  'admin_reserve_kbytes',
] as const;
type Name = (typeof NAMES)[number];
const ROOT_NO_RAWIO: Cred = { uid: 0, gid: 0, caps: new Set() };

/** 'EINVAL', or [bytes write() returned, value read back]. */
type Outcome = 'EINVAL' | [number, string];
const E = 'EINVAL';
const ULONG_MAX = '18446744073709551615';

// Input, then one outcome per sysctl in NAMES order (measured; '' is a 0-byte write).
// biome-ignore format: one row per input keeps the measured table readable
const TABLE: Array<[string, Outcome[]]> = [
  ['abc', [E, E, E, E, E, E, E, E]],
  ['', [[0, '65530'], [0, '0'], [0, '50'], [0, '0'], [0, '60'], [0, '1'], [0, '4096'], [0, '8192']]],
  ['  12  \n', [[7, '12'], E, [7, '12'], [7, '12'], [7, '12'], [7, '12'], [7, '12'], [7, '12']]],
  ['12 13', [[3, '12'], E, [3, '12'], [3, '12'], [3, '12'], [3, '12'], [3, '12'], [3, '12']]],
  ['-1', [E, E, [2, '-1'], E, E, E, E, E]],
  ['0', [[1, '0'], [1, '0'], [1, '0'], [1, '0'], [1, '0'], [1, '0'], [1, '0'], [1, '0']]],
  ['1', [[1, '1'], [1, '1'], [1, '1'], [1, '1'], [1, '1'], [1, '1'], [1, '1'], [1, '1']]],
  ['3', [[1, '3'], E, [1, '3'], [1, '3'], [1, '3'], [1, '3'], [1, '3'], [1, '3']]],
  ['101', [[3, '101'], E, [3, '101'], [3, '101'], [3, '101'], E, [3, '101'], [3, '101']]],
  ['201', [[3, '201'], E, [3, '201'], [3, '201'], E, E, [3, '201'], [3, '201']]],
  ['99999999999', [E, E, E, [11, '99999999999'], E, E, [11, '99999999999'], [11, '99999999999']]],
  [ULONG_MAX, [E, E, E, [20, ULONG_MAX], E, E, [20, ULONG_MAX], [20, ULONG_MAX]]],
  ['18446744073709551616', [E, E, E, E, E, E, E, E]],
  ['+5', [E, E, E, E, E, E, E, E]],
  ['0x10', [[4, '16'], E, [4, '16'], [4, '16'], [4, '16'], [4, '16'], [4, '16'], [4, '16']]],
  ['-0', [[2, '0'], [2, '0'], [2, '0'], E, [2, '0'], [2, '0'], E, E]],
];

const boot = (): Machine => Machine.boot({ memory: '512M', cpus: 2 });
const read = (m: Machine, name: string): string => m.readFile(`/proc/sys/vm/${name}`).trimEnd();

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as ErrnoError).code;
  }
  return undefined;
}

describe('the measured table', () => {
  for (const [input, outcomes] of TABLE) {
    NAMES.forEach((name, col) => {
      const want = outcomes[col];
      it(`${name} <- ${JSON.stringify(input)}: ${want === E ? E : `${want[0]} bytes, ${want[1]}`}`, () => {
        const m = boot();
        const before = read(m, name);
        const entry = vm_sysctl_tables(m.vm).find((e) => e.procname === name)!;
        const rc = entry.proc_handler(true, input, { uid: 0, gid: 0 });
        if (want === E) {
          expect(rc.err).toBe(-22);
          expect(read(m, name)).toBe(before);
          expect(() => m.writeFile(`/proc/sys/vm/${name}`, input)).toThrow(ErrnoError);
        } else {
          expect(rc.err).toBe(0);
          expect(rc.len).toBe(want[0]);
          expect(read(m, name)).toBe(want[1]);
        }
      });
    });
  }
});

describe('what a write changes', () => {
  it('overcommit_kbytes and overcommit_ratio clear each other, even on an empty write', () => {
    const m = boot();
    m.writeFile('/proc/sys/vm/overcommit_kbytes', '5');
    expect([read(m, 'overcommit_kbytes'), read(m, 'overcommit_ratio')]).toEqual(['5', '0']);
    expect(errnoOf(() => m.writeFile('/proc/sys/vm/overcommit_ratio', 'abc'))).toBe('EINVAL');
    expect(read(m, 'overcommit_kbytes')).toBe('5');
    m.writeFile('/proc/sys/vm/overcommit_ratio', '');
    expect([read(m, 'overcommit_kbytes'), read(m, 'overcommit_ratio')]).toEqual(['0', '0']);
    m.writeFile('/proc/sys/vm/overcommit_ratio', '40');
    expect([m.vm.sysctl.overcommit_ratio, m.vm.sysctl.overcommit_kbytes]).toEqual([40, 0]);
  });

  it('CommitLimit follows overcommit_ratio, or overcommit_kbytes when set', () => {
    const m = boot();
    const limit = () => meminfo_field(m.readFile('/proc/meminfo'), 'CommitLimit');
    const half = limit();
    expect(half).toBe(Math.floor(m.mm.totalram_pages / 2) * 4);
    m.writeFile('/proc/sys/vm/overcommit_ratio', '100');
    expect(limit()).toBe(m.mm.totalram_pages * 4);
    m.writeFile('/proc/sys/vm/overcommit_kbytes', '1048576');
    expect(limit()).toBe(1048576);
    expect(meminfo_field(m.readFile('/proc/meminfo'), 'Committed_AS')).toBe(0);
  });

  it('overcommit_memory and max_map_count land in vm.sysctl, swappiness in mm.reclaim; max_map_count limits mmap', () => {
    const m = boot();
    m.writeFile('/proc/sys/vm/overcommit_memory', '2');
    m.writeFile('/proc/sys/vm/swappiness', '200');
    m.writeFile('/proc/sys/vm/max_map_count', '2');
    expect(m.vm.sysctl).toMatchObject({ overcommit_memory: 2, max_map_count: 2 });
    expect(m.mm.reclaim.swappiness).toBe(200);
    const p = m.spawn();
    p.mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS);
    p.mmap(0, 4096, 0, MAP_PRIVATE | MAP_ANONYMOUS);
    p.mmap(0, 4096, PROT_READ | 2, MAP_PRIVATE | MAP_ANONYMOUS); // map_count 2 is not past 2
    expect(errnoOf(() => p.mmap(0, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS))).toBe('ENOMEM');
  });

  it('min_unmapped_ratio recomputes each node’s min_unmapped_pages', () => {
    const m = Machine.boot({ memory: '2G', nodes: 2, cpus: 2 });
    const managed = m.mm.nodes.map((n) => n.node_zones.map((z) => z.managed_pages));
    const expected = (ratio: number) =>
      managed.map((zs) => zs.reduce((s, z) => s + Math.floor((z * ratio) / 100), 0));
    expect(m.vm.min_unmapped_pages).toEqual(expected(1));
    m.writeFile('/proc/sys/vm/min_unmapped_ratio', '37');
    expect(m.vm.min_unmapped_pages).toEqual(expected(37));
    expect(errnoOf(() => m.writeFile('/proc/sys/vm/min_unmapped_ratio', '101'))).toBe('EINVAL');
    expect(m.vm.min_unmapped_pages).toEqual(expected(37));
  });

  it('min_unmapped_ratio exists only with CONFIG_NUMA', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, kernel: { NUMA: false } });
    expect(errnoOf(() => m.readFile('/proc/sys/vm/min_unmapped_ratio'))).toBe('ENOENT');
    expect(read(m, 'swappiness')).toBe('60');
  });

  it('user and admin reserves are 1/32 of free memory at boot, capped at 128 MiB and 8 MiB', () => {
    const small = Machine.boot({ memory: '128M', cpus: 1 });
    expect(Number(read(small, 'user_reserve_kbytes'))).toBeLessThan(131072);
    expect(Number(read(small, 'admin_reserve_kbytes'))).toBe(
      Math.min(8192, Number(read(small, 'user_reserve_kbytes'))),
    );
    expect(read(Machine.boot({ memory: '8G', cpus: 1 }), 'user_reserve_kbytes')).toBe('131072');
  });

  it('sysctls given at boot go through the same handlers', () => {
    const m = Machine.boot({ memory: '512M', cpus: 2, sysctl: { swappiness: 10, overcommit_kbytes: 4096 } });
    expect(m.vm.sysctl).toMatchObject({ overcommit_kbytes: 4096, overcommit_ratio: 0 });
    expect(m.mm.reclaim.swappiness).toBe(10);
    expect(() => Machine.boot({ memory: '512M', sysctl: { swappiness: 201 } })).toThrow(/sysctl.swappiness/);
  });
});

describe('vm.mmap_min_addr', () => {
  it('reads dac_mmap_min_addr; the effective limit is at least CONFIG_LSM_MMAP_MIN_ADDR', () => {
    const m = boot();
    expect(read(m, 'mmap_min_addr')).toBe('4096');
    expect(m.vm.sysctl.mmap_min_addr).toBe(65536);
    m.writeFile('/proc/sys/vm/mmap_min_addr', '0');
    expect(m.vm.sysctl.mmap_min_addr).toBe(65536);
    m.writeFile('/proc/sys/vm/mmap_min_addr', '1048576');
    expect(m.vm.sysctl.mmap_min_addr).toBe(1048576);
    // A MAP_FIXED mapping below it needs CAP_SYS_RAWIO.
    const user = m.spawn({ uid: 1000, gid: 1000 });
    expect(errnoOf(() => user.mmap(0x80000, 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED))).toBe(
      'EPERM',
    );
  });

  it('writing needs CAP_SYS_RAWIO (EPERM, even for an empty write); users get EACCES at open', () => {
    const m = boot();
    expect(errnoOf(() => m.writeFile('/proc/sys/vm/mmap_min_addr', '4096', ROOT_NO_RAWIO))).toBe('EPERM');
    expect(errnoOf(() => m.writeFile('/proc/sys/vm/mmap_min_addr', '', ROOT_NO_RAWIO))).toBe('EPERM');
    expect(errnoOf(() => m.writeFile('/proc/sys/vm/mmap_min_addr', '0', { uid: 1000, gid: 1000 }))).toBe(
      'EACCES',
    );
    expect(read(m, 'mmap_min_addr')).toBe('4096');
    // Others only need root: swappiness is fine without CAP_SYS_RAWIO.
    m.writeFile('/proc/sys/vm/swappiness', '1', ROOT_NO_RAWIO);
    expect(read(m, 'swappiness')).toBe('1');
    // Reading is open to everyone.
    expect(m.readFile('/proc/sys/vm/mmap_min_addr', { uid: 1000, gid: 1000 })).toBe('4096\n');
  });

  it('a root process holding CAP_SYS_RAWIO may write it', () => {
    const m = boot();
    m.writeFile('/proc/sys/vm/mmap_min_addr', '8192', m.spawn());
    expect(read(m, 'mmap_min_addr')).toBe('8192');
  });
});

describe('every new sysctl', () => {
  it.each(NAMES)('/proc/sys/vm/%s is listed, 0644, and refused to users', (name: Name) => {
    const m = boot();
    expect(m.listFiles('/proc/sys/vm')).toContain(`/proc/sys/vm/${name}`);
    expect(errnoOf(() => m.writeFile(`/proc/sys/vm/${name}`, '1', { uid: 1000, gid: 1000 }))).toBe('EACCES');
  });
});
