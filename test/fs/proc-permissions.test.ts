/**
 * File modes as on Linux: /proc/pagetypeinfo is 0400 (root only: reading it walks free lists
 * under the zone lock), the other /proc files 0444, the vm sysctls 0644 (everyone reads, only
 * root writes). A refused write changes nothing.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Cred } from '../../src/fs/vfs.ts';
import type { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import { VM_SYSCTLS } from './format.ts';

const USER: Cred = { uid: 1000, gid: 1000 };
const SYSCTLS = VM_SYSCTLS;
let m: Machine;
beforeAll(() => {
  m = Machine.boot({ memory: '512M', cpus: 2 });
});

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as ErrnoError).code;
  }
  return undefined;
}

describe('reading', () => {
  it('/proc/pagetypeinfo is EACCES for a user and readable by root', () => {
    expect(errnoOf(() => m.readFile('/proc/pagetypeinfo', USER))).toBe('EACCES');
    expect(m.readFile('/proc/pagetypeinfo')).toMatch(/^Page block order: 9\n/);
  });

  it.each(['buddyinfo', 'zoneinfo', 'vmstat', 'meminfo'])('/proc/%s is world-readable', (f) => {
    expect(m.readFile(`/proc/${f}`, USER)).toBe(m.readFile(`/proc/${f}`));
  });

  it.each(SYSCTLS)('/proc/sys/vm/%s is world-readable', (name) => {
    expect(m.readFile(`/proc/sys/vm/${name}`, USER)).toMatch(/^-?\d+(\t-?\d+)*\n$/);
  });
});

describe('writing', () => {
  it.each(SYSCTLS)('/proc/sys/vm/%s is EACCES for a user and unchanged', (name) => {
    const path = `/proc/sys/vm/${name}`;
    const before = m.readFile(path);
    const zones = m.readFile('/proc/zoneinfo');
    expect(errnoOf(() => m.writeFile(path, '100', USER))).toBe('EACCES');
    expect(m.readFile(path)).toBe(before);
    expect(m.readFile('/proc/zoneinfo')).toBe(zones);
  });

  it.each(['pagetypeinfo', 'zoneinfo', 'vmstat', 'meminfo'])('/proc/%s cannot be written', (f) => {
    expect(errnoOf(() => m.writeFile(`/proc/${f}`, '1'))).toBe('EACCES');
  });

  it('every sysctl is listed under /proc/sys/vm', () => {
    expect(m.listFiles('/proc/sys/vm')).toEqual(
      expect.arrayContaining(SYSCTLS.map((n) => `/proc/sys/vm/${n}`)),
    );
  });
});
