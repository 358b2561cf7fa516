/**
 * /proc/<pid>/maps, status and statm: exact output for a fixed process layout (test/golden/pid-*),
 * the values behind them (VMA permissions, RSS and the Vm* counters, peaks, page tables), the
 * [heap] name once the address space has a brk area, and files that come and go with processes.
 */
import { describe, expect, it } from 'vitest';
import type { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_LOCKED,
  MAP_PRIVATE,
  PROT_EXEC,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { expectGolden } from './golden.ts';

const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const RW = PROT_READ | PROT_WRITE;
const KiB = 1024;
const MiB = 1024 * KiB;

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as ErrnoError).code;
  }
  return undefined;
}

/** One field of a status text, e.g. field(s, 'VmRSS') = '    2056 kB'. */
function field(status: string, name: string): string {
  const line = status.split('\n').find((l) => l.startsWith(`${name}:\t`));
  if (line === undefined) throw new Error(`no ${name}`);
  return line.slice(name.length + 2);
}
const kB = (status: string, name: string): number => Number.parseInt(field(status, name), 10);

/** The fixed layout of the goldens: data, a read-only area, a guard, a locked buffer, code. */
function layout(): { m: Machine; p: Process; child: Process } {
  const m = Machine.boot({ memory: '1G', cpus: 2, seed: 1 });
  const p = m.spawn();
  const data = p.mmap(0, MiB, RW, ANON);
  p.touch(data, 64 * KiB, { write: true });
  const ro = p.mmap(0, 64 * KiB, PROT_READ, ANON);
  p.touch(ro, 16 * KiB);
  p.mmap(0, 16 * KiB, PROT_NONE, ANON);
  p.mmap(0, 2 * MiB, RW, ANON | MAP_LOCKED);
  p.mmap(0, 8 * KiB, PROT_READ | PROT_EXEC, ANON);
  // Where brk() puts the heap of an unrandomised small PIE; the heap is still empty here.
  p.mmap(0x555555560000, 132 * KiB, RW, ANON | MAP_FIXED);
  const child = p.fork();
  return { m, p, child };
}

describe('golden output of a fixed layout', () => {
  it('maps, status and statm of a process and of its fork child', () => {
    const { m, p, child } = layout();
    expectGolden('pid-maps', m.readFile(`/proc/${p.pid}/maps`));
    expectGolden('pid-status', m.readFile(`/proc/${p.pid}/status`));
    expectGolden('pid-statm', m.readFile(`/proc/${p.pid}/statm`));
    expectGolden('pid-status-child', m.readFile(`/proc/${child.pid}/status`));
  });

  it('the same layout prints the same bytes', () => {
    const a = layout();
    const b = layout();
    for (const f of ['maps', 'status', 'statm']) {
      expect(b.m.readFile(`/proc/${b.p.pid}/${f}`)).toBe(a.m.readFile(`/proc/${a.p.pid}/${f}`));
    }
  });
});

describe('maps', () => {
  it('one line per VMA with its permissions, ending with [vsyscall]', () => {
    const { m, p } = layout();
    const lines = m.readFile(`/proc/${p.pid}/maps`).trimEnd().split('\n');
    expect(lines.length).toBe(p.mm.map_count + 1);
    // The 2 MiB anonymous mapping is THP-aligned (thp_get_unmapped_area), below the 8 KiB one.
    expect(lines.map((l) => l.split(' ')[1])).toEqual([
      'rw-p',
      'rw-p',
      'r-xp',
      '---p',
      'r--p',
      'rw-p',
      '--xp',
    ]);
    expect(lines[0]).toBe('555555560000-555555581000 rw-p 00000000 00:00 0 ');
    expect(lines.at(-1)).toBe(
      `ffffffffff600000-ffffffffff601000 --xp 00000000 00:00 0${' '.repeat(18)}[vsyscall]`,
    );
  });

  it('names the brk area [heap] once the address space has one', () => {
    const { m, p } = layout();
    expect(m.readFile(`/proc/${p.pid}/maps`)).not.toContain('[heap]');
    // What brk() leaves in mm_struct: the heap VMA overlaps [start_brk, brk).
    Object.assign(p.mm, { start_brk: 0x555555560000, brk: 0x555555581000 });
    const heap = m.readFile(`/proc/${p.pid}/maps`).split('\n')[0];
    expect(heap).toBe(`555555560000-555555581000 rw-p 00000000 00:00 0${' '.repeat(26)}[heap]`);
    expect(heap.indexOf('[heap]')).toBe(73);
    // An empty heap (brk == start_brk) at the VMA's start names nothing...
    Object.assign(p.mm, { brk: 0x555555560000 });
    expect(m.readFile(`/proc/${p.pid}/maps`)).not.toContain('[heap]');
    // ...but inside it, 6.18's vma_is_initial_heap() (start < brk && end > start_brk) does.
    Object.assign(p.mm, { start_brk: 0x555555570000, brk: 0x555555570000 });
    expect(m.readFile(`/proc/${p.pid}/maps`).split('\n')[0].endsWith('[heap]')).toBe(true);
  });

  it('an empty address space shows only the gate VMA', () => {
    const m = Machine.boot({ memory: '256M', cpus: 1 });
    const p = m.spawn();
    expect(m.readFile(`/proc/${p.pid}/maps`).split('\n').length).toBe(2);
  });
});

describe('status', () => {
  it('Vm* counters follow mmap, faults, mlock and munmap; VmPeak and VmHWM keep the peaks a read saw', () => {
    const m = Machine.boot({ memory: '1G', cpus: 2, seed: 1 });
    const p = m.spawn();
    const path = `/proc/${p.pid}/status`;
    const a = p.mmap(0, 4 * MiB, RW, ANON);
    p.touch(a, 3 * MiB, { write: true });
    p.mmap(0, MiB, RW, ANON | MAP_LOCKED);
    p.mmap(0, 64 * KiB, PROT_READ | PROT_EXEC, ANON);
    let s = m.readFile(path);
    expect(kB(s, 'VmSize')).toBe(4 * 1024 + 1024 + 64);
    expect(kB(s, 'VmRSS')).toBe(3 * 1024 + 1024);
    expect(kB(s, 'RssAnon')).toBe(kB(s, 'VmRSS'));
    expect(kB(s, 'VmLck')).toBe(1024);
    expect(kB(s, 'VmData')).toBe(5 * 1024);
    expect(kB(s, 'VmLib')).toBe(64);
    expect(kB(s, 'VmExe')).toBe(0);
    // One PUD, one PMD and three PTE tables (the mappings cover three 2 MiB spans).
    expect(kB(s, 'VmPTE')).toBeGreaterThanOrEqual(5 * 4);
    // src/vm does not call update_hiwater_*() when unmapping yet: the read above recorded the peaks.
    p.munmap(a, 4 * MiB);
    s = m.readFile(path);
    expect(kB(s, 'VmSize')).toBe(1024 + 64);
    expect(kB(s, 'VmRSS')).toBe(1024);
    expect(kB(s, 'VmPeak')).toBe(4 * 1024 + 1024 + 64);
    expect(kB(s, 'VmHWM')).toBe(3 * 1024 + 1024);
  });

  it('ids, parent and session: a fork child names its parent and shares its session', () => {
    const m = Machine.boot({ memory: '512M', cpus: 4, seed: 1 });
    const p = m.spawn({ uid: 1000, gid: 100 });
    const c = p.fork();
    const s = m.readFile(`/proc/${c.pid}/status`);
    expect(field(s, 'Pid')).toBe(String(c.pid));
    expect(field(s, 'PPid')).toBe(String(p.pid));
    expect(field(s, 'NSsid')).toBe(String(p.pid));
    expect(field(s, 'Uid')).toBe('1000\t1000\t1000\t1000');
    expect(field(s, 'Gid')).toBe('100\t100\t100\t100');
    expect(field(s, 'CapEff')).toBe('0000000000000000');
    expect(field(s, 'Cpus_allowed')).toBe('f');
    expect(field(s, 'Cpus_allowed_list')).toBe('0-3');
    expect(field(m.readFile(`/proc/${p.pid}/status`), 'PPid')).toBe('0');
  });

  it('Mems_allowed lists every node with memory', () => {
    const m = Machine.boot({ memory: '2G', nodes: 2, cpus: 2, seed: 1 });
    const s = m.readFile(`/proc/${m.spawn().pid}/status`);
    expect(field(s, 'Mems_allowed').endsWith(',00000003')).toBe(true);
    expect(field(s, 'Mems_allowed').split(',').length).toBe(32);
    expect(field(s, 'Mems_allowed_list')).toBe('0-1');
  });
});

describe('the files come and go with processes', () => {
  it('appear on spawn and fork, ENOENT after exit, listed under /proc', () => {
    const m = Machine.boot({ memory: '256M', cpus: 1 });
    expect(m.listFiles('/proc').some((f) => /^\/proc\/\d+\//.test(f))).toBe(false);
    const p = m.spawn();
    const c = p.fork();
    expect(m.listFiles(`/proc/${c.pid}`)).toEqual(
      ['contig', 'maps', 'pagemap', 'statm', 'status'].map((f) => `/proc/${c.pid}/${f}`),
    );
    c.exit();
    for (const f of ['maps', 'status', 'statm'])
      expect(errnoOf(() => m.readFile(`/proc/${c.pid}/${f}`))).toBe('ENOENT');
    expect(m.listFiles(`/proc/${c.pid}`)).toEqual([]);
    expect(m.readFile(`/proc/${p.pid}/statm`)).toBe('1 0 0 0 0 0 0\n'.replace(/^1/, String(p.mm.total_vm)));
    expect(errnoOf(() => m.readFile('/proc/99/status'))).toBe('ENOENT');
    expect(errnoOf(() => m.readFile(`/proc/${p.pid}/smaps`))).toBe('ENOENT');
  });

  it('status is world-readable; maps needs the same user or root (EACCES); nothing is writable', () => {
    const m = Machine.boot({ memory: '256M', cpus: 1 });
    const p = m.spawn({ uid: 1000, gid: 1000 });
    const other = { uid: 1001, gid: 1001 };
    expect(m.readFile(`/proc/${p.pid}/status`, other)).toBe(m.readFile(`/proc/${p.pid}/status`));
    expect(errnoOf(() => m.readFile(`/proc/${p.pid}/maps`, other))).toBe('EACCES');
    expect(m.readFile(`/proc/${p.pid}/maps`, p)).toBe(m.readFile(`/proc/${p.pid}/maps`));
    expect(errnoOf(() => m.writeFile(`/proc/${p.pid}/maps`, 'x'))).toBe('EACCES');
  });
});
