/**
 * The integer sysctl handlers of kernel/sysctl.c: proc_dointvec() and proc_dointvec_minmax() on
 * top of __do_proc_dointvec(), proc_get_long() and proc_skip_spaces(), with Linux 6.18's parsing
 * quirks (docs/kernel-6.18-notes.md §8):
 *
 * - leading and trailing whitespace is skipped; whitespace alone is -EINVAL; an empty write is a
 *   successful no-op;
 * - numbers are read in base 0: `0x10` is 16, `010` is 8; a leading `+` is -EINVAL; `-` counts
 *   only when more input follows it;
 * - a number must be followed by space, tab or newline (or the end): `12abc` and `12\r` are
 *   -EINVAL;
 * - once every slot is filled, parsing stops: writing `12 13` to a single int stores 12 and
 *   consumes 3 bytes (a short write; the rest, written again at position 3, is ignored);
 * - out-of-range values (beyond int, or extra1/extra2) are -EINVAL and leave the slot unchanged,
 *   but earlier slots of an array stay written.
 *
 * Every write is taken to start at file position 0 (the VFS writes whole files); at a non-zero
 * position STRICT mode would ignore it.
 */
import { type ErrnoCode, errnos } from '../../lib/errno.ts';

/** PAGE_SIZE - 1: the longest write a handler looks at. */
const MAX_WRITE = 4095;
/** TMPBUFLEN - 1: proc_get_long() copies at most this many bytes. */
const TMPBUFLEN_MAX = 21;
const INT_MAX = 2147483647n;
const ULONG_MAX = (1n << 64n) - 1n;
/** -EINVAL, what the handlers return for a value they refuse. */
export const EINVAL = -errnos.EINVAL;

/** struct ctl_table, as far as the int handlers use it: a vector of ints and optional bounds. */
export interface CtlTable {
  procname: string;
  /** maxlen / sizeof(int): the number of ints. */
  maxlen: number;
  /** *valp of slot i. */
  get(i: number): number;
  /** WRITE_ONCE(*valp, v) for slot i. */
  set(i: number, v: number): void;
  /** Lower bound (extra1), if any. */
  extra1?: number;
  /** Upper bound (extra2), if any. */
  extra2?: number;
}

/** What a handler call gives back: its return value, *lenp, and for a read the text. */
export interface ProcIo {
  /** 0 or a negative errno. */
  err: number;
  /** *lenp: bytes consumed by a write (what write() returns on success), or read. */
  len: number;
  /** The text a read produced ('' for writes). */
  out: string;
}

/** A CtlTable over an int array the handler reads and writes in place. */
export function ctl_int_vec(procname: string, data: number[], extra1?: number, extra2?: number): CtlTable {
  return {
    procname,
    maxlen: data.length,
    get: (i) => data[i],
    set: (i, v) => {
      data[i] = v;
    },
    extra1,
    extra2,
  };
}

/** A CtlTable over one int field of an object. */
export function ctl_int<K extends string>(
  procname: string,
  obj: Record<K, number>,
  key: K,
  extra1?: number,
  extra2?: number,
): CtlTable {
  return {
    procname,
    maxlen: 1,
    get: () => obj[key],
    set: (_i, v) => {
      obj[key] = v;
    },
    extra1,
    extra2,
  };
}

/** The ErrnoCode of a negative errno a handler returned. */
export function errno_code(err: number): ErrnoCode {
  for (const [code, n] of Object.entries(errnos)) if (n === -err) return code as ErrnoCode;
  throw new RangeError(`unknown errno ${err}`);
}

// include/linux/ctype.h isspace(): \t \n \v \f \r, space, and Latin-1 NBSP.
function isspace(c: number): boolean {
  return (c >= 9 && c <= 13) || c === 32 || c === 160;
}
function isdigit(c: number): boolean {
  return c >= 48 && c <= 57;
}
function isxdigit(c: number): boolean {
  const lc = c | 0x20;
  return isdigit(c) || (lc >= 97 && lc <= 102);
}

/** A cursor over the NUL-terminated kernel copy of the user's buffer. */
interface Cursor {
  buf: Uint8Array;
  p: number;
  left: number;
}

// kernel: kernel/sysctl.c proc_skip_spaces()
function proc_skip_spaces(c: Cursor): void {
  while (c.left > 0 && isspace(c.buf[c.p])) {
    c.p++;
    c.left--;
  }
}

/**
 * kernel: lib/kstrtox.c _parse_integer_fixup_radix() + _parse_integer(), as strtoul_lenient()
 * uses them: base 0 picks 16 for `0x` followed by a hex digit, 8 for a leading 0, else 10.
 * Returns the digits consumed and the value, or null on unsigned long overflow (-ERANGE).
 */
function strtoul_lenient(s: Uint8Array, at: number): { end: number; val: bigint } | null {
  let base = 10;
  if (s[at] === 48) {
    if ((s[at + 1] | 0x20) === 120 && isxdigit(s[at + 2])) {
      base = 16;
      at += 2;
    } else {
      base = 8;
    }
  }
  let res = 0n;
  let overflow = false;
  const b = BigInt(base);
  for (;;) {
    const ch = s[at];
    if (ch === undefined) break;
    const lc = ch | 0x20;
    let val: number;
    if (isdigit(ch)) val = ch - 48;
    else if (lc >= 97 && lc <= 102) val = lc - 97 + 10;
    else break;
    if (val >= base) break;
    res = res * b + BigInt(val);
    if (res > ULONG_MAX) overflow = true;
    at++;
  }
  return overflow ? null : { end: at, val: res };
}

/**
 * kernel: kernel/sysctl.c proc_get_long()
 * One number from at most 21 bytes: an optional '-', a digit, base-0 digits, then a byte from
 * `trailers` or the end of the input.
 */
function proc_get_long(c: Cursor, trailers: number[]): { err: number; val: bigint; neg: boolean } {
  const fail = { err: EINVAL, val: 0n, neg: false };
  if (c.left <= 0) return fail;
  const len = Math.min(c.left, TMPBUFLEN_MAX);
  const tmp = new Uint8Array(len + 1); // NUL-terminated copy
  tmp.set(c.buf.subarray(c.p, c.p + len));
  let p = 0;
  let neg = false;
  if (tmp[p] === 45 && c.left > 1) {
    neg = true;
    p++;
  }
  if (!isdigit(tmp[p])) return fail;
  const parsed = strtoul_lenient(tmp.subarray(0, len), p);
  if (!parsed) return fail;
  const used = parsed.end;
  // A number filling the whole copy might continue beyond it: refuse rather than guess.
  if (used === TMPBUFLEN_MAX) return fail;
  if (used < c.left && !trailers.includes(tmp[used])) return fail;
  c.p += used;
  c.left -= used;
  return { err: 0, val: parsed.val, neg };
}

/** A conversion: store `neg`/`lval` into slot i of the table, or return -EINVAL. */
type IntConv = (table: CtlTable, i: number, neg: boolean, lval: bigint) => number;

// kernel: kernel/sysctl.c do_proc_dointvec_conv() (write side)
function int_from_long(neg: boolean, lval: bigint): number | null {
  if (neg) return lval > INT_MAX + 1n ? null : Number(-lval) || 0;
  return lval > INT_MAX ? null : Number(lval);
}

/** kernel: kernel/sysctl.c do_proc_dointvec_conv(): any value that fits an int. */
export const do_proc_dointvec_conv: IntConv = (table, i, neg, lval) => {
  const v = int_from_long(neg, lval);
  if (v === null) return EINVAL;
  table.set(i, v);
  return 0;
};

/**
 * kernel: kernel/sysctl.c do_proc_dointvec_minmax_conv()
 * Converted into a temporary first, so a value outside [extra1, extra2] never reaches the slot.
 */
export const do_proc_dointvec_minmax_conv: IntConv = (table, i, neg, lval) => {
  const tmp = int_from_long(neg, lval);
  if (tmp === null) return EINVAL;
  if (
    (table.extra1 !== undefined && table.extra1 > tmp) ||
    (table.extra2 !== undefined && table.extra2 < tmp)
  )
    return EINVAL;
  table.set(i, tmp);
  return 0;
};

const proc_wspace_sep = [32, 9, 10]; // ' ', '\t', '\n'

/** A read of a vector sysctl: the values separated by tabs, then a newline. */
function proc_read_vector(maxlen: number, get: (i: number) => number | bigint): ProcIo {
  const vals: string[] = [];
  for (let i = 0; i < maxlen; i++) vals.push(get(i).toString());
  const out = `${vals.join('\t')}\n`;
  return { err: 0, len: out.length, out };
}

/**
 * kernel: kernel/sysctl.c __do_proc_dointvec()
 * Reads print the ints separated by tabs, then a newline. Writes fill slots in order from the
 * text (see the file comment for the rules).
 */
export function __do_proc_dointvec(table: CtlTable, write: boolean, buffer: string, conv: IntConv): ProcIo {
  if (!write) return proc_read_vector(table.maxlen, (i) => table.get(i));
  const bytes = new TextEncoder().encode(buffer);
  if (table.maxlen === 0 || bytes.length === 0) return { err: 0, len: 0, out: '' };
  const c: Cursor = { buf: bytes, p: 0, left: Math.min(bytes.length, MAX_WRITE) };
  let vleft = table.maxlen;
  let first = true;
  let err = 0;
  for (let i = 0; c.left && vleft-- > 0; i++, first = false) {
    proc_skip_spaces(c);
    if (!c.left) break;
    const got = proc_get_long(c, proc_wspace_sep);
    err = got.err;
    if (err) break;
    if (conv(table, i, got.neg, got.val)) {
      err = EINVAL;
      break;
    }
  }
  if (!err && c.left) proc_skip_spaces(c);
  // Nothing stored: an error, and *lenp is left as the caller passed it.
  if (first) return { err: err || EINVAL, len: bytes.length, out: '' };
  return { err, len: bytes.length - c.left, out: '' };
}

/** kernel: kernel/sysctl.c proc_dointvec(): ints with no bounds beyond the int range. */
export function proc_dointvec(table: CtlTable, write: boolean, buffer = ''): ProcIo {
  return __do_proc_dointvec(table, write, buffer, do_proc_dointvec_conv);
}

/** kernel: kernel/sysctl.c proc_dointvec_minmax(): ints within [extra1, extra2] (each optional). */
export function proc_dointvec_minmax(table: CtlTable, write: boolean, buffer = ''): ProcIo {
  return __do_proc_dointvec(table, write, buffer, do_proc_dointvec_minmax_conv);
}

/** A vector of unsigned longs and optional bounds, for proc_doulongvec_minmax(). */
export interface CtlULongTable {
  procname: string;
  /** maxlen / sizeof(unsigned long). */
  maxlen: number;
  get(i: number): bigint;
  set(i: number, v: bigint): void;
  extra1?: bigint;
  extra2?: bigint;
}

/**
 * The exact values last written through ctl_ulong() tables over an object's fields, kept in the
 * object itself under this symbol (a Map from field name to value): out of sight of its string
 * keys, but part of the machine's state, so Machine.clone() copies it.
 */
const ULONG_EXACT = Symbol('ulong_exact');

type WithExact = { [ULONG_EXACT]?: Map<string, bigint> };

/**
 * A CtlULongTable over one numeric field of an object. The field holds a JavaScript number; the
 * value as written is kept too (shared by every table over the field), so values beyond 2^53
 * read back exactly while the field still holds them.
 */
export function ctl_ulong<K extends string>(procname: string, obj: Record<K, number>, key: K): CtlULongTable {
  const o = obj as Record<K, number> & WithExact;
  return {
    procname,
    maxlen: 1,
    get: () => {
      const exact = o[ULONG_EXACT]?.get(key);
      return exact !== undefined && Number(exact) === obj[key] ? exact : BigInt(obj[key]);
    },
    set: (_i, v) => {
      const m = o[ULONG_EXACT] ?? new Map<string, bigint>();
      o[ULONG_EXACT] = m;
      m.set(key, v);
      obj[key] = Number(v);
    },
  };
}

/**
 * kernel: kernel/sysctl.c __do_proc_doulongvec_minmax() (convmul = convdiv = 1)
 * Like the int handlers (same tokenizer), but a value is an unsigned long: any '-' (even "-0")
 * is -EINVAL, the range is 0..ULONG_MAX, and extra1/extra2 bound it.
 */
export function proc_doulongvec_minmax(table: CtlULongTable, write: boolean, buffer = ''): ProcIo {
  if (!write) return proc_read_vector(table.maxlen, (i) => table.get(i));
  const bytes = new TextEncoder().encode(buffer);
  if (table.maxlen === 0 || bytes.length === 0) return { err: 0, len: 0, out: '' };
  const c: Cursor = { buf: bytes, p: 0, left: Math.min(bytes.length, MAX_WRITE) };
  let vleft = table.maxlen;
  let first = true;
  let err = 0;
  for (let i = 0; c.left && vleft-- > 0; i++, first = false) {
    proc_skip_spaces(c);
    if (!c.left) break;
    const got = proc_get_long(c, proc_wspace_sep);
    if (got.err || got.neg) {
      err = EINVAL;
      break;
    }
    if (
      (table.extra1 !== undefined && got.val < table.extra1) ||
      (table.extra2 !== undefined && got.val > table.extra2)
    ) {
      err = EINVAL;
      break;
    }
    table.set(i, got.val);
  }
  if (!err && c.left) proc_skip_spaces(c);
  if (first) return { err: err || EINVAL, len: bytes.length, out: '' };
  return { err, len: bytes.length - c.left, out: '' };
}
