/**
 * Our /proc files have the format of the real Linux 6.18 kernel's: the same line sequence,
 * labels, spacing and field widths as the files captured on a 24 GiB, 2-CPU Firecracker VM without
 * CMA (test/fixtures/real-6.18-fc), compared with the values masked (see format.ts for how padded
 * and unpadded numbers are told apart). Where the model is configured exactly like that machine,
 * whole lines and records agree byte for byte.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/sim/machine.ts';
import { formatDiff, VM_SYSCTLS } from './format.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'real-6.18-fc');
const real = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');

let m: Machine;
beforeAll(() => {
  m = Machine.boot({ memory: '24G', cpus: 2, kernel: { CMA: false } });
});

describe('format against the real 6.18 files', () => {
  for (const file of ['buddyinfo', 'pagetypeinfo', 'zoneinfo', 'vmstat', 'meminfo']) {
    it(`/proc/${file}`, () => {
      expect(formatDiff(real(file), m.readFile(`/proc/${file}`))).toEqual([]);
    });
  }

  it('/proc/zoneinfo covers every zone, the empty Movable and Device ones included', () => {
    const headers = (t: string) => t.split('\n').filter((l) => l.startsWith('Node '));
    expect(headers(m.readFile('/proc/zoneinfo'))).toEqual(headers(real('zoneinfo')));
  });

  it('/proc/vmstat has the same counters in the same order', () => {
    const names = (t: string) => t.split('\n').map((l) => l.split(' ')[0]);
    expect(names(m.readFile('/proc/vmstat'))).toEqual(names(real('vmstat')));
  });

  it('/proc/meminfo has the same fields in the same order', () => {
    const names = (t: string) => t.split('\n').map((l) => l.split(':')[0]);
    expect(names(m.readFile('/proc/meminfo'))).toEqual(names(real('meminfo')));
  });
});

describe('byte for byte where the model matches the machine', () => {
  for (const name of VM_SYSCTLS) {
    it(`/proc/sys/vm/${name}`, () => {
      expect(m.readFile(`/proc/sys/vm/${name}`)).toBe(real(`sysctl_vm_${name}`));
    });
  }

  it('zoneinfo: the empty Movable and Device records', () => {
    const tail = (t: string) => t.slice(t.indexOf('Node 0, zone  Movable'));
    expect(tail(m.readFile('/proc/zoneinfo'))).toBe(tail(real('zoneinfo')));
  });

  it('zoneinfo: DMA and DMA32 geometry, start_pfn and vm stats threshold', () => {
    // Normal differs: the real kernel's deferred_init=lazy grows its managed pages on demand.
    const pick = (t: string, zone: string) => {
      const rec = t.slice(t.indexOf(`zone ${zone.padStart(8)}`)).split('\nNode ')[0];
      return rec
        .split('\n')
        .filter((l) => /^ +(spanned|present|managed|cma|start_pfn:|vm stats threshold:)/.test(l));
    };
    for (const zone of ['DMA', 'DMA32']) {
      expect(pick(m.readFile('/proc/zoneinfo'), zone)).toEqual(pick(real('zoneinfo'), zone));
    }
  });

  it('pagetypeinfo: the headers and the DMA and DMA32 pageblock counts', () => {
    const lines = m.readFile('/proc/pagetypeinfo').split('\n');
    const want = real('pagetypeinfo').split('\n');
    for (const l of want.filter((x) => /^(Page|Free|Number|Node 0, zone +DMA(32)? )/.test(x))) {
      expect(lines).toContain(l);
    }
  });

  it('vmstat: nr_memmap_boot_pages (192 present sections of 512 memmap pages)', () => {
    const line = (t: string) => t.split('\n').find((l) => l.startsWith('nr_memmap_boot_pages'));
    expect(line(m.readFile('/proc/vmstat'))).toBe(line(real('vmstat')));
  });

  it('meminfo: VmallocTotal, Hugepagesize and the hugetlb lines', () => {
    const pick = (t: string) =>
      t.split('\n').filter((l) => /^(VmallocTotal|HugePages_|Hugepagesize|Hugetlb)/.test(l));
    expect(pick(m.readFile('/proc/meminfo'))).toEqual(pick(real('meminfo')));
  });
});
