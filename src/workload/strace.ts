/**
 * Import of `strace -f -tt -e trace=memory` output as JSONL trace events (jsonl_trace.ts), for
 * replay with replayJsonlTrace(). See docs/traces.md for the rules.
 *
 * Lines look like
 *   12345 10:20:30.123456 mmap(NULL, 8192, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7f12345000
 * with the pid column only under -f (or as `[pid 12345]` when strace writes to a terminal), the
 * time as -t, -tt (HH:MM:SS[.us]) or -ttt (seconds since the epoch). Split calls
 * (`<unfinished ...>` then `<... mmap resumed>`) are joined; `+++ exited with N +++` and
 * `+++ killed by SIG +++` become exit events; clone/fork/vfork (if traced too, e.g. with
 * `-e trace=memory,process`) become fork events, a successful execve an exit (the pid's next call
 * starts a fresh process).
 */
import type { JsonlEvent } from './jsonl_trace.ts';
import { parse_flags } from './jsonl_trace.ts';

/** The largest strace log accepted by default (64 MiB). */
export const STRACE_MAX_BYTES = 64 << 20;
/** The longest line accepted. */
export const STRACE_MAX_LINE = 16384;

export interface StraceParseOptions {
  /** Names the input in error messages; default `strace`. */
  source?: string;
  /** The pid of a log without a pid column (strace without -f); default 1. */
  pid?: number;
  max_bytes?: number;
}

export interface StraceImport {
  events: JsonlEvent[];
  /** Calls of syscalls the model does not replay, by name (skipped). */
  skipped: Record<string, number>;
  /** mmaps of a file (fd >= 0, no MAP_ANONYMOUS): kept, replayed as anonymous private mappings. */
  file_mmaps: number;
  /** Calls whose result strace could not print (`= ?`, the task died in the call): skipped. */
  unfinished: number;
  lines: number;
}

/** A bad line of a strace log: `source:line: field 'f': what is wrong`. */
export class StraceError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    readonly field: string,
    readonly reason: string,
  ) {
    const where = line > 0 ? `${source}:${line}` : source;
    super(field ? `${where}: field '${field}': ${reason}` : `${where}: ${reason}`);
    this.name = 'StraceError';
  }
}

const LINE_RE = /^(?:(?:\[pid\s+)?(\d+)\]?\s+)?(\d{1,2}:\d{2}:\d{2}(?:\.\d{1,9})?|\d+\.\d{1,9})\s+(.*)$/;
const EXIT_RE = /^\+\+\+ (?:exited with -?\d+|killed by SIG[A-Z0-9]+(?: \(core dumped\))?) \+\+\+$/;
const UNFINISHED_RE = /^([a-z_0-9]+)\((.*?)\s*<unfinished \.\.\.>$/;
const RESUMED_RE = /^<\.\.\. ([a-z_0-9]+) resumed>\s*(.*)$/;
const CALL_RE = /^([a-z_0-9]+)\((.*)$/;
const RESULT_RE = /^\)\s+=\s+(-?\d+|0x[0-9a-f]+|\?)(?:\s+(E[A-Z0-9]+)\b.*|\s+\(.*\))?$/;

/** Whether `line` looks like a strace -t/-tt/-ttt line (used to tell a trace's format). */
export function isStraceLine(line: string): boolean {
  const m = LINE_RE.exec(line);
  return (
    m !== null &&
    (CALL_RE.test(m[3]) || EXIT_RE.test(m[3]) || m[3].startsWith('<... ') || m[3].startsWith('--- '))
  );
}

const REPLAYED = new Set(['mmap', 'munmap', 'mprotect', 'madvise', 'mremap', 'brk', 'mlock', 'munlock']);
const FORKS = new Set(['clone', 'clone3', 'fork', 'vfork']);

/** Seconds of -t/-tt (since midnight) or -ttt (since the epoch) as ns. */
function parse_time(text: string): number {
  const [whole, frac = ''] = text.split('.');
  const ns = Number(frac.padEnd(9, '0'));
  if (!whole.includes(':')) return Number(whole) * 1e9 + ns;
  const [h, m, s] = whole.split(':').map(Number);
  return ((h * 60 + m) * 60 + s) * 1e9 + ns;
}

/** Split top-level arguments at commas (not inside braces, brackets or quotes). */
function split_args(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '\\') {
        cur += ch + (text[i + 1] ?? '');
        i++;
        continue;
      }
      if (ch === '"') quoted = false;
    } else if (ch === '"') quoted = true;
    else if (ch === '{' || ch === '[' || ch === '(') depth++;
    else if (ch === '}' || ch === ']' || ch === ')') depth--;
    else if (ch === ',' && depth === 0) {
      out.push(cur.trim());
      cur = '';
      continue;
    }
    cur += ch;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

/** An address or size: NULL, 0x..., or decimal (strace -y may append `<path>` to an fd). */
function num(field: string, text: string | undefined): number {
  if (text === undefined) throw new Error(`${field}: missing`);
  if (text === 'NULL') return 0;
  const m = /^(-?\d+|0x[0-9a-f]+)(?:<.*>)?$/i.exec(text);
  if (!m) throw new Error(`${field}: '${text}' is not a number`);
  const v = Number(m[1]);
  if (!Number.isSafeInteger(v)) throw new Error(`${field}: '${text}' is too large`);
  return v;
}

function flags(field: string, text: string | undefined, prefix: string): number {
  if (text === undefined) throw new Error(`${field}: missing`);
  try {
    return parse_flags(text, prefix);
  } catch (e) {
    throw new Error(`${field}: ${(e as Error).message}`);
  }
}

/** One finished call as an event, or undefined to skip it. */
function to_event(
  name: string,
  args: string[],
  ret: number,
  errno: string | undefined,
  base: { line: number; t: number; pid: number },
  out: StraceImport,
): JsonlEvent | undefined {
  const e: JsonlEvent = { ...base, op: 'mmap' };
  const a = (i: number, field: string) => num(field, args[i]);
  if (FORKS.has(name)) {
    if (errno !== undefined || ret <= 0) return undefined;
    // clone(...flags=CLONE_VM|...) is a thread (or a vfork, which execs at once: a fork then).
    const thread = name.startsWith('clone') && /CLONE_THREAD/.test(args.join(','));
    return { ...base, op: 'fork', child: ret, thread };
  }
  if (name === 'execve' || name === 'execveat') {
    // A new address space: the model process exits; the pid's next event spawns a fresh one.
    if (errno !== undefined) return undefined;
    return { ...base, op: 'exit' };
  }
  if (!REPLAYED.has(name)) {
    out.skipped[name] = (out.skipped[name] ?? 0) + 1;
    return undefined;
  }
  switch (name) {
    case 'mmap':
      Object.assign(e, {
        addr: a(0, 'addr'),
        len: a(1, 'len'),
        prot: flags('prot', args[2], 'PROT_'),
        flags: flags('flags', args[3], 'MAP_'),
        fd: a(4, 'fd'),
        offset: a(5, 'offset'),
      });
      if (e.fd !== undefined && e.fd >= 0 && !((e.flags ?? 0) & 0x20)) out.file_mmaps++;
      break;
    case 'munmap':
    case 'mlock':
    case 'munlock':
      Object.assign(e, { op: name, addr: a(0, 'addr'), len: a(1, 'len') });
      break;
    case 'mprotect':
      Object.assign(e, {
        op: name,
        addr: a(0, 'addr'),
        len: a(1, 'len'),
        prot: flags('prot', args[2], 'PROT_'),
      });
      break;
    case 'madvise': {
      const adv = args[2];
      if (adv === undefined) throw new Error('advice: missing');
      let advice: number;
      try {
        advice = parse_flags(adv, 'MADV_');
      } catch (err) {
        throw new Error(`advice: ${(err as Error).message}`);
      }
      Object.assign(e, { op: name, addr: a(0, 'addr'), len: a(1, 'len'), advice });
      break;
    }
    case 'mremap':
      Object.assign(e, {
        op: name,
        addr: a(0, 'addr'),
        len: a(1, 'len'),
        new_len: a(2, 'new_len'),
        flags: args[3] === undefined ? 0 : flags('flags', args[3], 'MREMAP_'),
        new_addr: args[4] === undefined ? 0 : a(4, 'new_addr'),
      });
      break;
    case 'brk':
      Object.assign(e, { op: name, addr: a(0, 'addr') });
      break;
  }
  if (errno !== undefined) {
    e.ret = -1;
    e.errno = errno;
  } else e.ret = ret;
  return e;
}

/**
 * Parse a strace log into trace events, in log order. Lines that are not calls, exits or
 * signals (`--- SIGCHLD ... ---`) throw one StraceError naming the line; so do calls of the
 * replayed syscalls whose arguments do not parse (naming the argument).
 */
export function parseStrace(text: string, opts: StraceParseOptions = {}): StraceImport {
  const source = opts.source ?? 'strace';
  const max_bytes = opts.max_bytes ?? STRACE_MAX_BYTES;
  if (text.length > max_bytes)
    throw new StraceError(source, 0, '', `${text.length} bytes is more than the limit of ${max_bytes}`);
  const out: StraceImport = { events: [], skipped: {}, file_mmaps: 0, unfinished: 0, lines: 0 };
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  out.lines = lines.length;
  // pid → the first half of a split call
  const pending = new Map<number, { name: string; args: string; line: number }>();
  let day = 0;
  let last_t = -1;
  for (let i = 0; i < lines.length; i++) {
    const lineno = i + 1;
    const line = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (line.length > STRACE_MAX_LINE)
      throw new StraceError(
        source,
        lineno,
        '',
        `line of ${line.length} characters is longer than ${STRACE_MAX_LINE}`,
      );
    if (line.trim() === '') continue;
    const m = LINE_RE.exec(line);
    if (!m)
      throw new StraceError(
        source,
        lineno,
        '',
        `not a strace -tt line (expected '[pid] HH:MM:SS.us call(args) = ret'): '${line.slice(0, 80)}'`,
      );
    const pid = m[1] === undefined ? (opts.pid ?? 1) : Number(m[1]);
    let t = parse_time(m[2]) + day;
    // -t/-tt restart at midnight.
    if (m[2].includes(':') && t + 12 * 3600e9 < last_t) {
      day += 86400e9;
      t += 86400e9;
    }
    last_t = t;
    const body = m[3];
    const base = { line: lineno, t, pid };
    if (EXIT_RE.test(body)) {
      pending.delete(pid);
      out.events.push({ ...base, op: 'exit' });
      continue;
    }
    if (body.startsWith('--- ')) continue;
    let name: string;
    let rest: string;
    const unf = UNFINISHED_RE.exec(body);
    if (unf) {
      pending.set(pid, { name: unf[1], args: unf[2], line: lineno });
      continue;
    }
    const res = RESUMED_RE.exec(body);
    if (res) {
      const p = pending.get(pid);
      if (p === undefined || p.name !== res[1])
        throw new StraceError(
          source,
          lineno,
          '',
          `'<... ${res[1]} resumed>' without its '<unfinished ...>' line`,
        );
      pending.delete(pid);
      name = p.name;
      rest = p.args + res[2];
    } else {
      const call = CALL_RE.exec(body);
      if (!call)
        throw new StraceError(
          source,
          lineno,
          '',
          `not a system call, exit or signal line: '${body.slice(0, 80)}'`,
        );
      name = call[1];
      rest = call[2];
    }
    const close = rest.lastIndexOf(') ');
    const rm = close < 0 ? null : RESULT_RE.exec(rest.slice(close));
    if (!rm) throw new StraceError(source, lineno, 'ret', `no ') = result' in '${body.slice(0, 80)}'`);
    if (rm[1] === '?') {
      // exit_group() never returns; a replayed call the task died in is dropped.
      if (REPLAYED.has(name)) out.unfinished++;
      else out.skipped[name] = (out.skipped[name] ?? 0) + 1;
      continue;
    }
    try {
      const ev = to_event(name, split_args(rest.slice(0, close)), Number(rm[1]), rm[2], base, out);
      if (ev) out.events.push(ev);
    } catch (e) {
      const msg = (e as Error).message;
      const colon = msg.indexOf(': ');
      throw new StraceError(source, lineno, `${name}.${msg.slice(0, colon)}`, msg.slice(colon + 2));
    }
  }
  return out;
}
