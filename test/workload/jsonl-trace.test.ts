/**
 * JSONL traces of timed syscalls and kernel allocations: parsing every op in both flag
 * notations, one error per bad line naming the line and field, address translation, fork and
 * exit, determinism, and cloneability after a replay.
 */
import { describe, expect, it } from 'vitest';
import { __GFP_COMP, GFP_KERNEL } from '../../src/mm/gfp.ts';
import {
  MADV_DONTNEED,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  MREMAP_MAYMOVE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import {
  formatJsonlEvent,
  JsonlTraceError,
  parse_flags,
  parseJsonlTrace,
  replayJsonlTrace,
} from '../../src/workload/jsonl_trace.ts';
import { cleanMachine, violations } from '../helpers.ts';

const RW = 'PROT_READ|PROT_WRITE';
const ANON = 'MAP_PRIVATE|MAP_ANONYMOUS';
const A = 0x7f0000000000;

const ALL_OPS = [
  { t: 0, pid: 10, op: 'brk', addr: 0, ret: 0x555555559000 },
  { t: '1ms', pid: 10, op: 'mmap', len: 65536, prot: RW, flags: ANON, fd: -1, offset: 0, ret: A },
  { t: '1.5ms', pid: 10, op: 'touch', addr: A, len: 65536, write: true },
  { t: 2_000_000, pid: 10, op: 'mprotect', addr: A + 61440, len: 4096, prot: 'PROT_READ' },
  { t: 2_000_000, pid: 10, op: 'madvise', addr: A + 8192, len: 8192, advice: 'MADV_DONTNEED' },
  { t: 2_000_000, pid: 10, op: 'mlock', addr: A + 16384, len: 4096 },
  { t: 2_000_000, pid: 10, op: 'munlock', addr: A + 16384, len: 4096 },
  {
    t: 2_000_000,
    pid: 10,
    op: 'mremap',
    addr: A,
    len: 16384,
    new_len: 131072,
    flags: 'MREMAP_MAYMOVE',
    ret: A + 0x100000,
  },
  { t: '3ms', pid: 10, op: 'fork', child: 11 },
  { t: '3ms', pid: 11, op: 'touch', addr: A + 0x101000, len: 4096, write: true },
  { t: '3ms', pid: 11, op: 'exit' },
  { t: '4ms', pid: 0, op: 'alloc_pages', order: 2, gfp: 'GFP_KERNEL|__GFP_COMP', pfn: 0x1234 },
  { t: '4ms', pid: 0, op: 'free_pages', order: 2, pfn: '0x1234' },
  { t: '5ms', pid: 10, op: 'munmap', addr: '0x7f0000100000', len: 131072 },
  { t: '1.5s', pid: 10, op: 'exit' },
];
const jsonl = (objs: object[]) => `${objs.map((o) => JSON.stringify(o)).join('\n')}\n`;

describe('parseJsonlTrace', () => {
  it('parses every op, both flag notations and both time forms', () => {
    const { events, lines } = parseJsonlTrace(`# a comment\n\n${jsonl(ALL_OPS)}`);
    expect(lines).toBe(ALL_OPS.length + 2);
    expect(events.map((e) => e.op)).toEqual(ALL_OPS.map((o) => o.op));
    expect(events[0].line).toBe(3);
    const mmap = events[1];
    expect(mmap).toMatchObject({
      t: 1e6,
      prot: PROT_READ | PROT_WRITE,
      flags: MAP_PRIVATE | MAP_ANONYMOUS,
      ret: A,
    });
    expect(events[2].t).toBe(1.5e6);
    expect(events[4].advice).toBe(MADV_DONTNEED);
    expect(events[7].flags).toBe(MREMAP_MAYMOVE);
    expect(events[11].gfp).toBe(GFP_KERNEL | __GFP_COMP);
    expect(events[12].pfn).toBe(0x1234);
    expect(events[13].addr).toBe(A + 0x100000);
    expect(events.at(-1)?.t).toBe(1.5e9);
    // Numbers and names are the same masks.
    const numeric = parseJsonlTrace(
      jsonl([{ t: 0, pid: 1, op: 'mmap', len: 4096, prot: 3, flags: 0x22, ret: A }]),
    ).events[0];
    expect(numeric).toMatchObject({ prot: mmap.prot, flags: mmap.flags, addr: 0, fd: -1, offset: 0 });
    expect(parse_flags('MAP_PRIVATE|0x20', 'MAP_')).toBe(0x22);
  });

  it('round-trips through formatJsonlEvent', () => {
    const { events } = parseJsonlTrace(jsonl(ALL_OPS));
    const again = parseJsonlTrace(`${events.map(formatJsonlEvent).join('\n')}\n`).events;
    expect(again).toEqual(events);
  });

  const bad: Array<[string, string, RegExp]> = [
    [
      '{"t":0,"pid":1,"op":"mmap","len":4096,"prot":"PROT_RAED","flags":3}',
      'prot',
      /unknown flag 'PROT_RAED'/,
    ],
    ['{"t":0,"pid":1,"op":"mmap","len":4096,"prot":3,"flags":"PROT_READ"}', 'flags', /MAP_/],
    ['{"t":0,"pid":1,"op":"mmap","prot":3,"flags":34}', 'len', /missing \(required by op 'mmap'\)/],
    ['{"t":"soon","pid":1,"op":"exit"}', 't', /not a duration/],
    ['{"t":0,"pid":-1,"op":"exit"}', 'pid', /./],
    ['{"t":0,"pid":1,"op":"mmapp"}', 'op', /expected one of mmap/],
    ['{"t":0,"pid":1,"op":"munmap","addr":"0xzz","len":1}', 'addr', /hex/],
    ['{"t":0,"pid":1,"op":"munmap","addr":1,"len":1,"size":2}', 'size', /unknown field/],
    ['{"t":0,"pid":1,"op":"madvise","addr":1,"len":1,"advice":"MADV_NOPE"}', 'advice', /MADV_NOPE/],
    ['{"t":0,"pid":0,"op":"alloc_pages","order":1,"gfp":"GFP_BOGUS"}', 'gfp', /GFP_BOGUS/],
    ['{"t":0,"pid":0,"op":"alloc_pages","order":11,"gfp":0}', 'order', /./],
    ['{"t":0,"pid":1,"op":"exit","errno":"nope"}', 'errno', /errno name/],
  ];
  it.each(bad)('rejects %s naming field %s', (line, field, why) => {
    const text = `${jsonl([ALL_OPS[0]])}${line}\n`;
    let err: unknown;
    try {
      parseJsonlTrace(text, { source: 'x.jsonl' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JsonlTraceError);
    const e = err as JsonlTraceError;
    expect(e.line).toBe(2);
    expect(e.field).toBe(field);
    expect(e.message).toMatch(new RegExp(`^x\\.jsonl:2: field '${field}': `));
    expect(e.reason).toMatch(why);
  });

  it('rejects non-JSON, non-objects and oversize input', () => {
    expect(() => parseJsonlTrace('{"t":0,\n', { source: 'f' })).toThrow(/^f:1: not JSON/);
    expect(() => parseJsonlTrace('[1]\n', { source: 'f' })).toThrow(/^f:1: expected a JSON object/);
    expect(() => parseJsonlTrace(`${'x'.repeat(5000)}\n`)).toThrow(/longer than 4096/);
    expect(() => parseJsonlTrace('{}', { max_bytes: 1 })).toThrow(/more than the limit/);
  });
});

describe('replayJsonlTrace', () => {
  it('replays every op, translating traced addresses, with fork and exit', () => {
    const m = cleanMachine({ memory: '128M' });
    const r = replayJsonlTrace(m, parseJsonlTrace(jsonl(ALL_OPS)).events);
    for (const [op, c] of Object.entries(r.ops)) {
      expect(c?.mismatched, op).toBe(0);
      expect(c?.model_errors, op).toEqual({});
    }
    expect(r).toMatchObject({
      spawned: 1,
      forked: 1,
      exited: 2,
      untranslated: 0,
      unmatched_frees: 0,
      live_blocks: 0,
    });
    expect(r.elapsed_ns).toBeGreaterThanOrEqual(1.5e9);
    expect(violations(m)).toEqual([]);
    expect(() => m.clone()).not.toThrow();
  });

  it('maps a traced address to the model mapping it lies in', () => {
    const m = cleanMachine({ memory: '128M' });
    const { events } = parseJsonlTrace(
      jsonl([
        { t: 0, pid: 7, op: 'mmap', len: 8 * 4096, prot: RW, flags: ANON, ret: 0x7fff00000000 },
        { t: 0, pid: 7, op: 'touch', addr: 0x7fff00003000, len: 4096, write: true },
      ]),
    );
    const r = replayJsonlTrace(m, events);
    expect(r.ops.touch).toMatchObject({ ok: 1, mismatched: 0 });
    const p = m.process(r.pids[7]);
    expect(p).toBeDefined();
    expect(r.untranslated).toBe(0);
  });

  it('counts model errors and compares them with the traced result, without throwing', () => {
    const m = cleanMachine({ memory: '128M' });
    const { events } = parseJsonlTrace(
      jsonl([
        // Unmapped in the model and traced as failing: agreement.
        { t: 0, pid: 1, op: 'mprotect', addr: 0x10000, len: 4096, prot: 1, ret: -1, errno: 'ENOMEM' },
        // A fault on an address nobody mapped.
        { t: 0, pid: 1, op: 'touch', addr: 0x20000, len: 1 },
        // Traced as succeeding, fails in the model: mismatch.
        { t: 0, pid: 1, op: 'munmap', addr: 1, len: 4096, ret: 0 },
      ]),
    );
    const r = replayJsonlTrace(m, events);
    expect(r.ops.mprotect).toMatchObject({
      events: 1,
      ok: 0,
      model_errors: { ENOMEM: 1 },
      traced_errors: 1,
      mismatched: 0,
    });
    expect(r.ops.touch).toMatchObject({ model_errors: { SIGSEGV: 1 }, mismatched: 1 });
    expect(r.ops.munmap).toMatchObject({ model_errors: { EINVAL: 1 }, mismatched: 1 });
    expect(r.untranslated).toBe(3);
  });

  it('file-backed mmaps become anonymous, or are skipped', () => {
    const ev = parseJsonlTrace(
      jsonl([
        { t: 0, pid: 1, op: 'mmap', len: 8192, prot: 'PROT_READ', flags: 'MAP_PRIVATE', fd: 3, ret: A },
      ]),
    ).events;
    expect(replayJsonlTrace(cleanMachine({ memory: '64M' }), ev)).toMatchObject({ file_mmaps_as_anon: 1 });
    const r = replayJsonlTrace(cleanMachine({ memory: '64M' }), ev, { file_mmaps: 'skip' });
    expect(r).toMatchObject({ file_mmaps_as_anon: 0, skipped_file_mmaps: 1 });
  });

  it('a thread shares its parent address space', () => {
    const m = cleanMachine({ memory: '64M' });
    const r = replayJsonlTrace(
      m,
      parseJsonlTrace(
        jsonl([
          { t: 0, pid: 1, op: 'mmap', len: 4096, prot: RW, flags: ANON, ret: A },
          { t: 0, pid: 1, op: 'fork', child: 2, thread: true },
          { t: 0, pid: 2, op: 'touch', addr: A, len: 4096, write: true },
          { t: 0, pid: 2, op: 'exit' },
          { t: 0, pid: 1, op: 'touch', addr: A, len: 4096 },
        ]),
      ).events,
    );
    expect(r).toMatchObject({ spawned: 1, forked: 0, exited: 0 });
    expect(r.ops.touch).toMatchObject({ ok: 2 });
  });

  it('is deterministic: the same seed gives the same buddyinfo', () => {
    const { events } = parseJsonlTrace(jsonl(ALL_OPS));
    const run = () => {
      const m = cleanMachine({ memory: '128M', seed: 7 });
      const r = replayJsonlTrace(m, events);
      return [m.readFile('/proc/buddyinfo'), JSON.stringify(r)];
    };
    expect(run()).toEqual(run());
  });

  it('refuses bad options', () => {
    const m = cleanMachine({ memory: '64M' });
    expect(() => replayJsonlTrace(m, [], { time_scale: -1 })).toThrow(RangeError);
    expect(() => replayJsonlTrace(m, [], { max_events: 1.5 })).toThrow(RangeError);
  });
});
