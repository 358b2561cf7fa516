/**
 * strace -f -tt -e trace=memory import: every replayed syscall, the line forms (-f pid column,
 * `[pid N]`, no pid, -ttt), split calls, exits, errors naming the line and argument, and the
 * captured fixtures replayed on a small machine with its invariants holding.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  PROT_EXEC,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { formatJsonlEvent, parseJsonlTrace, replayJsonlTrace } from '../../src/workload/jsonl_trace.ts';
import { parseStrace, StraceError } from '../../src/workload/strace.ts';
import { cleanMachine, violations } from '../helpers.ts';

const FIXTURES = new URL('../fixtures/strace/', import.meta.url);
const fixture = (name: string) => readFileSync(new URL(name, FIXTURES), 'utf8');

const LOG = `\
100 10:20:30.000001 brk(NULL)         = 0x555555559000
100 10:20:30.000100 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f1234500000
100 10:20:30.000200 mmap(NULL, 16384, PROT_READ, MAP_PRIVATE|MAP_DENYWRITE, 3, 0) = 0x7f1234400000
100 10:20:30.000300 mmap(0x7f1234401000, 4096, PROT_READ|PROT_EXEC, MAP_PRIVATE|MAP_FIXED|MAP_DENYWRITE, 3, 0x1000) = 0x7f1234401000
100 10:20:30.000400 mprotect(0x7f1234403000, 4096, PROT_NONE) = 0
100 10:20:30.000500 madvise(0x7f1234500000, 4096, MADV_DONTNEED) = 0
100 10:20:30.000600 mlock(0x7f1234500000, 4096) = 0
100 10:20:30.000700 munlock(0x7f1234500000, 4096) = 0
100 10:20:30.000800 mremap(0x7f1234500000, 8192, 65536, MREMAP_MAYMOVE) = 0x7f1234600000
100 10:20:30.000900 brk(0x55555557a000)  = 0x55555557a000
100 10:20:30.001000 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|CLONE_CHILD_SETTID|SIGCHLD, child_tidptr=0x7f0) = 101
101 10:20:30.001100 munmap(0x7f1234600000, 65536 <unfinished ...>
100 10:20:30.001150 mmap(NULL, 1073741824000, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = -1 ENOMEM (Cannot allocate memory)
101 10:20:30.001200 <... munmap resumed>) = 0
101 10:20:30.001300 --- SIGSEGV {si_signo=SIGSEGV, si_code=SEGV_MAPERR, si_addr=NULL} ---
101 10:20:30.001400 +++ killed by SIGSEGV (core dumped) +++
100 10:20:30.001500 exit_group(0)           = ?
100 10:20:30.001600 +++ exited with 0 +++
`;

describe('parseStrace', () => {
  it('turns every replayed syscall into an event', () => {
    const s = parseStrace(LOG);
    expect(s.events.map((e) => e.op)).toEqual([
      'brk',
      'mmap',
      'mmap',
      'mmap',
      'mprotect',
      'madvise',
      'mlock',
      'munlock',
      'mremap',
      'brk',
      'fork',
      'mmap',
      'munmap',
      'exit',
      'exit',
    ]);
    const [brk, anon, file, fixed, mprot, madv, , , mrem, brk2, fork, failed, unmap] = s.events;
    expect(brk).toMatchObject({
      pid: 100,
      t: (10 * 3600 + 20 * 60 + 30) * 1e9 + 1000,
      addr: 0,
      ret: 0x555555559000,
    });
    expect(anon).toMatchObject({
      len: 8192,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
      fd: -1,
    });
    expect(file).toMatchObject({ fd: 3, offset: 0, prot: PROT_READ });
    expect(fixed).toMatchObject({ addr: 0x7f1234401000, offset: 0x1000, prot: PROT_READ | PROT_EXEC });
    expect((fixed.flags ?? 0) & MAP_FIXED).toBe(MAP_FIXED);
    expect(mprot).toMatchObject({ prot: 0 });
    expect(madv).toMatchObject({ advice: MADV_DONTNEED });
    expect(mrem).toMatchObject({ len: 8192, new_len: 65536, flags: MREMAP_MAYMOVE, ret: 0x7f1234600000 });
    expect(brk2).toMatchObject({ addr: 0x55555557a000 });
    expect(fork).toMatchObject({ child: 101, thread: false });
    expect(failed).toMatchObject({ ret: -1, errno: 'ENOMEM' });
    // The split call is joined, at the line and time it returned.
    expect(unmap).toMatchObject({ pid: 101, line: 14, addr: 0x7f1234600000, len: 65536, ret: 0 });
    expect(s.file_mmaps).toBe(2);
    expect(s.skipped).toEqual({ exit_group: 1 });
    // The events are valid JSONL.
    const text = s.events.map(formatJsonlEvent).join('\n');
    expect(parseJsonlTrace(text).events.map(({ line, ...e }) => e)).toEqual(
      s.events.map(({ line, ...e }) => e),
    );
  });

  it('reads logs without -f, with [pid N], and with -ttt', () => {
    const plain = parseStrace('10:00:00.5 munmap(0x1000, 4096) = 0\n', { pid: 42 });
    expect(plain.events[0]).toMatchObject({ pid: 42, t: 36000.5e9, op: 'munmap' });
    const bracket = parseStrace('[pid  7] 1700000000.123456 munmap(0x1000, 4096) = 0\n');
    expect(bracket.events[0]).toMatchObject({ pid: 7, t: 1700000000123456000 });
    // A log crossing midnight keeps time moving forwards.
    const wrap = parseStrace('1 23:59:59.9 brk(NULL) = 0x1000\n1 00:00:00.1 brk(NULL) = 0x1000\n');
    expect(wrap.events[1].t - wrap.events[0].t).toBe(0.2e9);
  });

  it('counts a thread clone as a shared address space and skips other syscalls', () => {
    const s = parseStrace(
      '5 10:00:00.0 clone3({flags=CLONE_VM|CLONE_THREAD|CLONE_SIGHAND, stack=0x7f00}, 88) = 6\n' +
        '5 10:00:00.1 pkey_mprotect(0x1000, 4096, PROT_READ, 1) = 0\n' +
        '5 10:00:00.2 execve("/bin/true", ["true"], 0x7ffd /* 3 vars */) = 0\n',
    );
    expect(s.events.map((e) => [e.op, e.child, e.thread])).toEqual([
      ['fork', 6, true],
      ['exit', undefined, undefined],
    ]);
    expect(s.skipped).toEqual({ pkey_mprotect: 1 });
  });

  const bad: Array<[string, string, RegExp]> = [
    [
      '1 10:00:00.0 mmap(NULL, 4096, PROT_RAED, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x1000',
      'mmap.prot',
      /PROT_RAED/,
    ],
    [
      '1 10:00:00.0 mmap(NULL, lots, PROT_READ, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x1000',
      'mmap.len',
      /not a number/,
    ],
    ['1 10:00:00.0 madvise(0x1000, 4096, MADV_BOGUS) = 0', 'madvise.advice', /MADV_BOGUS/],
    ['1 10:00:00.0 munmap(0x1000) = 0', 'munmap.len', /missing/],
    ['1 10:00:00.0 munmap(0x1000, 4096)', 'ret', /no '\) = result'/],
    ['1 10:00:00.0 <... mmap resumed>) = 0x1000', '', /without its '<unfinished \.\.\.>'/],
    ['hello world', '', /not a strace -tt line/],
  ];
  it.each(bad)('rejects %s naming %s', (line, field, why) => {
    let err: unknown;
    try {
      parseStrace(`1 10:00:00.0 brk(NULL) = 0x1000\n${line}\n`, { source: 'app.log' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(StraceError);
    const e = err as StraceError;
    expect(e.line).toBe(2);
    expect(e.field).toBe(field);
    expect(e.message.startsWith(field ? `app.log:2: field '${field}': ` : 'app.log:2: ')).toBe(true);
    expect(e.reason).toMatch(why);
  });

  it('refuses oversize input', () => {
    expect(() => parseStrace('x', { max_bytes: 0, source: 's' })).toThrow(
      /^s: 1 bytes is more than the limit/,
    );
  });
});

describe('strace replay', () => {
  it('replays the synthetic log: translated addresses, fork, kill', () => {
    const m = cleanMachine({ memory: '128M' });
    const r = replayJsonlTrace(m, parseStrace(LOG).events);
    expect(r).toMatchObject({ spawned: 1, forked: 1, exited: 2, file_mmaps_as_anon: 2, untranslated: 0 });
    for (const op of ['brk', 'mprotect', 'madvise', 'mlock', 'munlock', 'mremap', 'munmap'] as const)
      expect(r.ops[op], op).toMatchObject({ mismatched: 0, model_errors: {} });
    expect(r.ops.mmap).toMatchObject({
      events: 4,
      traced_errors: 1,
      model_errors: { ENOMEM: 1 },
      mismatched: 0,
    });
    expect(violations(m)).toEqual([]);
  });

  it.each(['ls.log', 'sh-fork.log', 'python-thread.log'])('imports and replays the fixture %s', (name) => {
    const s = parseStrace(fixture(name), { source: name });
    expect(s.events.length).toBeGreaterThan(20);
    expect(s.unfinished).toBe(0);
    const m = cleanMachine({ memory: '256M' });
    const r = replayJsonlTrace(m, s.events);
    expect(r.ops.mmap?.events).toBeGreaterThan(10);
    // Every mmap and munmap the log holds succeeds in the model too; only calls on mappings
    // execve made (untranslated) may fail.
    expect(r.ops.mmap?.mismatched).toBe(0);
    expect(r.ops.munmap?.mismatched ?? 0).toBe(0);
    expect(r.ops.brk?.mismatched ?? 0).toBe(0);
    expect(r.ops.mprotect?.mismatched ?? 0).toBeLessThanOrEqual(r.untranslated);
    expect(violations(m)).toEqual([]);
    expect(() => m.checkInvariants()).not.toThrow();
    expect(() => m.clone()).not.toThrow();
  });

  it('is deterministic on a fixture: same seed, same buddyinfo', () => {
    const { events } = parseStrace(fixture('sh-fork.log'));
    const run = () => {
      const m = cleanMachine({ memory: '256M', seed: 3 });
      const r = replayJsonlTrace(m, events);
      return [m.readFile('/proc/buddyinfo'), m.readFile('/proc/meminfo'), JSON.stringify(r)];
    };
    expect(run()).toEqual(run());
  });
});
