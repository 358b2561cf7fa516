/**
 * A JSONL trace of timed memory syscalls and kernel page allocations, replayed on the model:
 * one JSON object per line, `{"t": ..., "pid": ..., "op": ..., ...args}`. See docs/traces.md.
 *
 * Traced addresses are not the model's: each pid keeps a map from the start of every mapping the
 * trace created (the call's `ret`) to the model's start, and later addresses inside one are
 * translated. Errors the model returns (ErrnoError, a FaultError from touch) are counted per op
 * and compared with the traced result, not thrown.
 */
import { z } from 'zod';
import { parseDuration } from '../lib/duration.ts';
import { ErrnoError } from '../lib/errno.ts';
import type { Machine } from '../sim/machine.ts';
import { FaultError, type Process } from '../vm/process.ts';
import * as uapi from '../vm/uapi.ts';
import { parse_trace_gfp } from './kmem_trace.ts';

/** The largest trace text parseJsonlTrace() accepts by default (64 MiB). */
export const JSONL_TRACE_MAX_BYTES = 64 << 20;
/** The longest line accepted. */
export const JSONL_TRACE_MAX_LINE = 4096;

export const JSONL_OPS = [
  'mmap',
  'munmap',
  'mprotect',
  'madvise',
  'mremap',
  'brk',
  'mlock',
  'munlock',
  'touch',
  'fork',
  'exit',
  'alloc_pages',
  'free_pages',
] as const;
export type JsonlOp = (typeof JSONL_OPS)[number];

/** One replayable event; numbers are already decoded (flags as masks, times in ns). */
export interface JsonlEvent {
  /** 1-based line number in the source (the JSONL file or the strace log). */
  line: number;
  /** Traced time, ns. */
  t: number;
  pid: number;
  op: JsonlOp;
  addr?: number;
  len?: number;
  prot?: number;
  flags?: number;
  fd?: number;
  offset?: number;
  advice?: number;
  new_len?: number;
  new_addr?: number;
  write?: boolean;
  /** fork: the child's traced pid; `thread` makes it share the parent's address space. */
  child?: number;
  thread?: boolean;
  order?: number;
  gfp?: number;
  /** alloc_pages/free_pages: the traced pfn (frees are matched to allocations by it). */
  pfn?: number;
  cpu?: number;
  /** What the traced call returned (an address for mmap/mremap/brk). */
  ret?: number;
  /** The traced call failed with this errno (e.g. `ENOMEM`). */
  errno?: string;
}

export interface JsonlTrace {
  events: JsonlEvent[];
  /** Lines read, blank and comment lines included. */
  lines: number;
}

export interface JsonlTraceParseOptions {
  /** Names the input in error messages (a file name); default `trace`. */
  source?: string;
  /** Refuse longer input; default JSONL_TRACE_MAX_BYTES. */
  max_bytes?: number;
}

/** A bad line of a JSONL trace: `source:line: field 'f': what is wrong`. */
export class JsonlTraceError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    readonly field: string,
    readonly reason: string,
  ) {
    const where = line > 0 ? `${source}:${line}` : source;
    super(field ? `${where}: field '${field}': ${reason}` : `${where}: ${reason}`);
    this.name = 'JsonlTraceError';
  }
}

const UAPI = uapi as unknown as Record<string, unknown>;

/**
 * A flag mask: a number, or names joined by `|` (`PROT_READ|PROT_WRITE`, `MAP_PRIVATE|0x40`),
 * each a uapi.ts constant starting with `prefix`, or a hex/decimal number. Throws a message.
 */
export function parse_flags(text: string | number, prefix: string): number {
  if (typeof text === 'number') {
    if (!Number.isInteger(text) || text < 0 || text > 0xffffffff)
      throw new Error(`${text} is not a flag mask (an integer in 0 .. 2^32 - 1)`);
    return text;
  }
  let mask = 0;
  for (const raw of text.split('|')) {
    const name = raw.trim();
    if (/^(?:0x[0-9a-f]{1,8}|\d{1,10})$/i.test(name)) {
      mask = (mask | Number(name)) >>> 0;
      continue;
    }
    const v = name.startsWith(prefix) ? UAPI[name] : undefined;
    if (typeof v !== 'number')
      throw new Error(`unknown flag '${name}' (expected ${prefix}* names or a number)`);
    mask = (mask | v) >>> 0;
  }
  return mask;
}

/** A value that must be a single named constant (madvise advice): a number or `MADV_*`. */
function parse_const(text: string | number, prefix: string): number {
  if (typeof text === 'number') {
    if (!Number.isInteger(text) || text < 0) throw new Error(`${text} is not a non-negative integer`);
    return text;
  }
  if (/^\d{1,10}$/.test(text)) return Number(text);
  const v = text.startsWith(prefix) ? UAPI[text] : undefined;
  if (typeof v !== 'number')
    throw new Error(`unknown value '${text}' (expected a ${prefix}* name or a number)`);
  return v;
}

// An unsigned long: a number or a "0x..." / decimal string (exact up to 2^53).
const ulong = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const n = typeof v === 'number' ? v : /^(?:0x[0-9a-fA-F]{1,13}|\d{1,16})$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 0) {
    ctx.addIssue({
      code: 'custom',
      message: `${JSON.stringify(v)} is not an unsigned integer (a number or a 0x... hex string, below 2^53)`,
    });
    return z.NEVER;
  }
  return n;
});
const sint = z
  .number()
  .int()
  .min(-(2 ** 31))
  .max(2 ** 31 - 1);
const time = z.union([z.number(), z.string()]).transform((v, ctx) => {
  try {
    return parseDuration(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});
const flags = (prefix: string, one = false) =>
  z.union([z.number(), z.string()]).transform((v, ctx) => {
    try {
      return one ? parse_const(v, prefix) : parse_flags(v, prefix);
    } catch (e) {
      ctx.addIssue({ code: 'custom', message: (e as Error).message });
      return z.NEVER;
    }
  });
const gfp = z.union([z.number().int().min(0), z.string()]).transform((v, ctx) => {
  if (typeof v === 'number') return v;
  try {
    return parse_trace_gfp(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
});

const common = {
  t: time,
  pid: z
    .number()
    .int()
    .min(0)
    .max(2 ** 31 - 1),
  ret: z.union([sint, ulong]).optional(),
  errno: z
    .string()
    .regex(/^E[A-Z0-9]+$/, 'expected an errno name such as ENOMEM')
    .optional(),
};
const range = { addr: ulong, len: ulong };
const ev = <T extends JsonlOp, S extends z.ZodRawShape>(op: T, shape: S) =>
  z.object({ ...common, op: z.literal(op), ...shape }).strict();

const EVENT = z.discriminatedUnion('op', [
  ev('mmap', {
    addr: ulong.default(0),
    len: ulong,
    prot: flags('PROT_'),
    flags: flags('MAP_'),
    fd: sint.default(-1),
    offset: ulong.default(0),
  }),
  ev('munmap', range),
  ev('mprotect', { ...range, prot: flags('PROT_') }),
  ev('madvise', { ...range, advice: flags('MADV_', true) }),
  ev('mremap', {
    ...range,
    new_len: ulong,
    flags: flags('MREMAP_').default(0),
    new_addr: ulong.default(0),
  }),
  ev('brk', { addr: ulong }),
  ev('mlock', range),
  ev('munlock', range),
  ev('touch', { ...range, write: z.boolean().default(false) }),
  ev('fork', {
    child: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31 - 1),
    thread: z.boolean().default(false),
  }),
  ev('exit', {}),
  ev('alloc_pages', {
    order: z.number().int().min(0).max(10),
    gfp,
    pfn: ulong.optional(),
    cpu: z.number().int().min(0).optional(),
  }),
  ev('free_pages', {
    order: z.number().int().min(0).max(10),
    pfn: ulong,
    cpu: z.number().int().min(0).optional(),
  }),
]);

/** Decode one parsed JSON value as an event; throws JsonlTraceError naming the field. */
export function parseJsonlEvent(value: unknown, source: string, line: number): JsonlEvent {
  const r = EVENT.safeParse(value);
  if (!r.success) {
    const issue = r.error.issues[0];
    let field = issue.path.map(String).join('.');
    let message = issue.message;
    if (issue.code === 'unrecognized_keys') {
      field = issue.keys[0];
      message = 'unknown field for this op';
    } else if (field === 'op' || (field === '' && /discriminat/i.test(message))) {
      field = 'op';
      message = `expected one of ${JSONL_OPS.join(', ')}`;
    } else if (issue.path.length === 1 && (value as Record<string, unknown>)[field] === undefined) {
      message = `missing (required by op '${String((value as Record<string, unknown>).op)}')`;
    }
    throw new JsonlTraceError(source, line, field, message);
  }
  const e = { line, ...r.data } as JsonlEvent;
  if (e.op === 'alloc_pages' && e.pfn === undefined && e.ret !== undefined) e.pfn = e.ret;
  return e;
}

/**
 * Parse JSONL text: blank lines and lines starting with `#` or `//` are skipped; every other
 * line must be one event object. The first bad line throws one JsonlTraceError naming the line
 * and the field.
 */
export function parseJsonlTrace(text: string, opts: JsonlTraceParseOptions = {}): JsonlTrace {
  const source = opts.source ?? 'trace';
  const max_bytes = opts.max_bytes ?? JSONL_TRACE_MAX_BYTES;
  if (text.length > max_bytes)
    throw new JsonlTraceError(source, 0, '', `${text.length} bytes is more than the limit of ${max_bytes}`);
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  const events: JsonlEvent[] = [];
  for (let i = 0; i < lines.length; i++) {
    const lineno = i + 1;
    const line = lines[i].trim();
    if (line.length > JSONL_TRACE_MAX_LINE)
      throw new JsonlTraceError(
        source,
        lineno,
        '',
        `line of ${line.length} characters is longer than ${JSONL_TRACE_MAX_LINE}`,
      );
    if (line === '' || line.startsWith('#') || line.startsWith('//')) continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch (e) {
      throw new JsonlTraceError(source, lineno, '', `not JSON: ${(e as Error).message}`);
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      throw new JsonlTraceError(source, lineno, '', 'expected a JSON object');
    events.push(parseJsonlEvent(value, source, lineno));
  }
  return { events, lines: lines.length };
}

const FIELD_ORDER = [
  't',
  'pid',
  'op',
  'addr',
  'len',
  'prot',
  'flags',
  'fd',
  'offset',
  'advice',
  'new_len',
  'new_addr',
  'write',
  'child',
  'thread',
  'order',
  'gfp',
  'pfn',
  'cpu',
  'ret',
  'errno',
] as const;

/** One event as a JSONL line (numbers only; no `line`), in a fixed field order. */
export function formatJsonlEvent(e: JsonlEvent): string {
  const o: Record<string, unknown> = {};
  for (const k of FIELD_ORDER) if (e[k] !== undefined) o[k] = e[k];
  return JSON.stringify(o);
}

/** Per-op counts of a replay. */
export interface JsonlOpCount {
  events: number;
  /** The model's call succeeded. */
  ok: number;
  /** The model's call failed, by errno code (a touch fault counts as its signal, e.g. SIGSEGV). */
  model_errors: Record<string, number>;
  /** The traced call failed (`errno` set, or a negative `ret`). */
  traced_errors: number;
  /** Events where exactly one side failed, or both failed with different errnos. */
  mismatched: number;
}

export interface JsonlReplayOptions {
  /** Simulated time per traced time (1: as traced; 0: the clock moves only by kernel CPU time). */
  time_scale?: number;
  /** Replay only the first this many events. */
  max_events?: number;
  /**
   * Replay file-backed mmaps (fd >= 0, no MAP_ANONYMOUS) as anonymous private mappings of the
   * same size (default), or skip them (`skip`, counted in skipped_file_mmaps).
   */
  file_mmaps?: 'anon' | 'skip';
}

export interface JsonlReplayResult {
  ops: Partial<Record<JsonlOp, JsonlOpCount>>;
  /** Model processes spawned for traced pids first seen without a fork. */
  spawned: number;
  forked: number;
  exited: number;
  file_mmaps_as_anon: number;
  skipped_file_mmaps: number;
  /**
   * Calls whose address lies in no mapping the trace created (made by execve, before tracing):
   * passed to the model untranslated.
   */
  untranslated: number;
  /** Frees of a pfn never allocated in the trace (skipped). */
  unmatched_frees: number;
  /** Traced kernel blocks still allocated at the end. */
  live_blocks: number;
  /** Traced pids → model pids, for the processes still alive at the end. */
  pids: Record<number, number>;
  elapsed_ns: number;
}

/** A traced pid's model process and its address translation. */
interface Task {
  proc: Process;
  /** Traced mapping starts, lengths and model starts; newest last (searched newest first). */
  real: number[];
  lens: number[];
  model: number[];
}

const PAGE = 4096;

/** The model address of a traced one, or -1 when no traced mapping holds it. */
function translate(task: Task, addr: number): number {
  for (let i = task.real.length - 1; i >= 0; i--) {
    const off = addr - task.real[i];
    if (off >= 0 && off < task.lens[i]) return task.model[i] + off;
  }
  return -1;
}

function remember(task: Task, real: number, len: number, model: number): void {
  const l = Math.ceil(len / PAGE) * PAGE;
  // The same traced start again (a MAP_FIXED over it, a moved mremap): replace.
  for (let i = 0; i < task.real.length; i++) {
    if (task.real[i] === real) {
      task.real.splice(i, 1);
      task.lens.splice(i, 1);
      task.model.splice(i, 1);
      break;
    }
  }
  task.real.push(real);
  task.lens.push(l);
  task.model.push(model);
}

/** The counts of one op, created on its first event. */
function opCount(r: JsonlReplayResult, op: JsonlOp): JsonlOpCount {
  let c = r.ops[op];
  if (c === undefined) {
    c = { events: 0, ok: 0, model_errors: {}, traced_errors: 0, mismatched: 0 };
    r.ops[op] = c;
  }
  return c;
}

/**
 * The replay's state between events, so a trace can be replayed a few events at a time (the
 * `trace-replay` workload model steps it slice by slice while other models run): the traced
 * pids' model processes and translations, and the traced kernel blocks still allocated. It
 * holds no closures the machine sees; `release()` gives back everything the replay still holds.
 */
export class JsonlReplayer {
  private readonly r: JsonlReplayResult = {
    ops: {},
    spawned: 0,
    forked: 0,
    exited: 0,
    file_mmaps_as_anon: 0,
    skipped_file_mmaps: 0,
    untranslated: 0,
    unmatched_frees: 0,
    live_blocks: 0,
    pids: {},
    elapsed_ns: 0,
  };
  private readonly tasks = new Map<number, Task>();
  /** traced pfn → model pfn * 32 + order */
  private readonly live = new Map<number, number>();
  private readonly file_mmaps: 'anon' | 'skip';
  private readonly start: number;
  private readonly task_of = (pid: number): Task => {
    let t = this.tasks.get(pid);
    if (t === undefined || t.proc.exited) {
      t = { proc: this.machine.spawn({ cpu: pid % this.machine.mm.nr_cpus }), real: [], lens: [], model: [] };
      this.tasks.set(pid, t);
      this.r.spawned++;
    }
    return t;
  };

  constructor(
    private readonly machine: Machine,
    opts: Pick<JsonlReplayOptions, 'file_mmaps'> = {},
  ) {
    this.file_mmaps = opts.file_mmaps ?? 'anon';
    this.start = machine.now;
  }

  /**
   * Replay one event now (the caller moves the clock). A model error is counted, not thrown;
   * anything else is rethrown as `line N (op): …`.
   */
  replay(e: JsonlEvent): void {
    const c = opCount(this.r, e.op);
    c.events++;
    const traced_failed = e.errno !== undefined || (e.ret !== undefined && e.ret < 0);
    if (traced_failed) c.traced_errors++;
    let model_error: string | undefined;
    try {
      step(this.machine, e, traced_failed, this.task_of, this.tasks, this.live, this.r, this.file_mmaps);
    } catch (err) {
      if (err instanceof ErrnoError) model_error = err.code;
      else if (err instanceof FaultError) model_error = err.signal;
      else throw new Error(`line ${e.line} (${e.op}): ${(err as Error).message}`, { cause: err });
    }
    if (model_error === undefined) c.ok++;
    else c.model_errors[model_error] = (c.model_errors[model_error] ?? 0) + 1;
    if (
      traced_failed !== (model_error !== undefined) ||
      (model_error !== undefined && e.errno !== undefined && e.errno !== model_error)
    )
      c.mismatched++;
  }

  /** The counts so far, with the live pids and blocks as they are now. */
  result(): JsonlReplayResult {
    const r = this.r;
    r.live_blocks = this.live.size;
    r.pids = {};
    for (const [pid, t] of [...this.tasks.entries()].sort((a, b) => a[0] - b[0]))
      if (!t.proc.exited) r.pids[pid] = t.proc.pid;
    r.elapsed_ns = this.machine.now - this.start;
    return r;
  }

  /**
   * Give back what the replay holds: exit the traced processes still running and free the
   * traced kernel blocks still allocated (a trace cut before its frees). Counts are kept.
   */
  release(): void {
    const k = this.machine.kernel;
    for (const [, got] of [...this.live.entries()].sort((a, b) => a[0] - b[0]))
      k.free_pages(Math.floor(got / 32), got % 32);
    this.live.clear();
    const seen = new Set<Task>();
    for (const [, t] of [...this.tasks.entries()].sort((a, b) => a[0] - b[0])) {
      if (seen.has(t)) continue;
      seen.add(t);
      if (!t.proc.exited) {
        t.proc.exit();
        this.r.exited++;
      }
    }
    this.tasks.clear();
  }
}

/**
 * Drive `machine` with a parsed trace in order: a model process per traced pid (spawned on its
 * first event, or by a fork event), the clock following the timestamps. Model errors are counted
 * per op, not thrown; anything else (a bug, a bad argument the model refuses with a RangeError)
 * is rethrown naming the line. What the trace leaves running stays (see JsonlReplayer.release).
 */
export function replayJsonlTrace(
  machine: Machine,
  events: readonly JsonlEvent[],
  opts: JsonlReplayOptions = {},
): JsonlReplayResult {
  const scale = opts.time_scale ?? 1;
  if (!Number.isFinite(scale) || scale < 0)
    throw new RangeError(`replayJsonlTrace: time_scale ${scale} is not a finite number >= 0`);
  const max_events = opts.max_events ?? events.length;
  if (!Number.isInteger(max_events) || max_events < 0)
    throw new RangeError(`replayJsonlTrace: max_events ${max_events} is not an integer >= 0`);
  const n = Math.min(events.length, max_events);
  const replayer = new JsonlReplayer(machine, opts);
  const start = machine.now;
  const t0 = n > 0 ? events[0].t : 0;
  for (let i = 0; i < n; i++) {
    const e = events[i];
    if (scale > 0) {
      const at = start + Math.round((e.t - t0) * scale);
      if (at > machine.now) machine.advance(at - machine.now);
    }
    try {
      replayer.replay(e);
    } catch (err) {
      throw new Error(`replayJsonlTrace: ${(err as Error).message}`, { cause: (err as Error).cause });
    }
  }
  return replayer.result();
}

function step(
  machine: Machine,
  e: JsonlEvent,
  traced_failed: boolean,
  task_of: (pid: number) => Task,
  tasks: Map<number, Task>,
  live: Map<number, number>,
  r: JsonlReplayResult,
  file_mmaps: 'anon' | 'skip',
): void {
  const addr = e.addr ?? 0;
  const len = e.len ?? 0;
  switch (e.op) {
    case 'alloc_pages': {
      const cpu = (e.cpu ?? 0) % machine.mm.nr_cpus;
      const pfn = machine.kernel.alloc_pages(e.gfp ?? 0, e.order ?? 0, { cpu });
      if (pfn < 0) throw new ErrnoError('ENOMEM', 'alloc_pages');
      if (e.pfn !== undefined) {
        const old = live.get(e.pfn);
        if (old !== undefined) machine.kernel.free_pages(Math.floor(old / 32), old % 32, { cpu });
        live.set(e.pfn, pfn * 32 + (e.order ?? 0));
      }
      return;
    }
    case 'free_pages': {
      const cpu = (e.cpu ?? 0) % machine.mm.nr_cpus;
      const got = live.get(e.pfn ?? -1);
      if (got === undefined || got % 32 !== e.order) {
        r.unmatched_frees++;
        return;
      }
      live.delete(e.pfn ?? -1);
      machine.kernel.free_pages(Math.floor(got / 32), got % 32, { cpu });
      return;
    }
    case 'fork': {
      const parent = task_of(e.pid);
      const child = e.child ?? 0;
      if (e.thread) {
        // A thread shares the address space and its translation.
        tasks.set(child, parent);
        return;
      }
      const proc = parent.proc.fork();
      tasks.set(child, { proc, real: [...parent.real], lens: [...parent.lens], model: [...parent.model] });
      r.forked++;
      return;
    }
    case 'exit': {
      const t = tasks.get(e.pid);
      tasks.delete(e.pid);
      if (t === undefined || t.proc.exited) return;
      // A thread's exit leaves the process to the others sharing it.
      for (const other of tasks.values()) if (other === t) return;
      t.proc.exit();
      r.exited++;
      return;
    }
  }
  const task = task_of(e.pid);
  const p = task.proc;
  let a = addr === 0 ? 0 : translate(task, addr);
  if (a < 0) {
    // Not in a mapping the trace made (the executable, ld.so, the stack: mapped by execve):
    // passed as traced; the model likely has nothing there.
    a = addr;
    if (e.op !== 'brk') r.untranslated++;
  }
  switch (e.op) {
    case 'mmap': {
      let f = e.flags ?? 0;
      let fd = e.fd ?? -1;
      let offset = e.offset ?? 0;
      if (!(f & uapi.MAP_ANONYMOUS)) {
        if (file_mmaps === 'skip') {
          r.skipped_file_mmaps++;
          return;
        }
        f = (f & ~uapi.MAP_TYPE) | uapi.MAP_PRIVATE | uapi.MAP_ANONYMOUS;
        fd = -1;
        offset = 0;
        r.file_mmaps_as_anon++;
      }
      const got = p.mmap(
        f & (uapi.MAP_FIXED | uapi.MAP_FIXED_NOREPLACE) || addr === 0 ? a : 0,
        len,
        e.prot ?? 0,
        f,
        fd,
        offset,
      );
      if (!traced_failed && e.ret !== undefined) remember(task, e.ret, len, got);
      return;
    }
    case 'munmap':
      p.munmap(a, len);
      return;
    case 'mprotect':
      p.mprotect(a, len, e.prot ?? 0);
      return;
    case 'madvise':
      p.madvise(a, len, e.advice ?? 0);
      return;
    case 'mremap': {
      const new_len = e.new_len ?? 0;
      const moved = e.new_addr ? translate(task, e.new_addr) : 0;
      const new_addr = moved < 0 ? (e.new_addr ?? 0) : moved;
      const got = p.mremap(a, len, new_len, e.flags ?? 0, new_addr);
      if (!traced_failed && e.ret !== undefined) remember(task, e.ret, new_len, got);
      return;
    }
    case 'brk': {
      if (addr === 0) {
        const got = p.brk(0);
        // The heap: the traced break maps to the model's (up to 1 GiB of growth).
        if (e.ret !== undefined && !traced_failed) remember(task, e.ret, 1 << 30, got);
        return;
      }
      p.brk(a);
      return;
    }
    case 'mlock':
      p.mlock(a, len);
      return;
    case 'munlock':
      p.munlock(a, len);
      return;
    case 'touch':
      p.touch(a, len, { write: e.write ?? false });
      return;
  }
}
