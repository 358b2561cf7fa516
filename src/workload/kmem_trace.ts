/**
 * A real kernel's page allocator trace, replayed on the model: the text of the kmem tracepoints
 * mm_page_alloc, mm_page_free, mm_page_free_batched and mm_page_alloc_extfrag as
 * /sys/kernel/tracing/trace or `trace-cmd report` print them (include/trace/events/kmem.h
 * TP_printk, 6.18). See docs/kmem-trace.md.
 *
 * The allocations and frees drive machine.kernel in trace order; the kernel's extfrag events are
 * not replayed (they are a consequence), they are set next to the model's for comparison.
 */
import { __GFP_DIRECT_RECLAIM, __GFP_KSWAPD_RECLAIM, GFP_FLAG_NAMES, parse_gfp } from '../mm/gfp.ts';
import { MAX_PAGE_ORDER, MIGRATE_TYPES } from '../mm/mmzone.ts';
import type { Machine } from '../sim/machine.ts';

/** The largest trace text parseKmemTrace() accepts by default (64 MiB, ~450k events). */
export const KMEM_TRACE_MAX_BYTES = 64 << 20;
/** The longest line accepted: a kmem line is ~200 characters; anything far longer is not one. */
export const KMEM_TRACE_MAX_LINE = 4096;
/** The largest order a free may carry (a gigantic hugetlb folio is order 18 on x86-64). */
const MAX_FREE_ORDER = 30;

/** What every event line carries in its prefix. */
interface KmemEventBase {
  /** 1-based line number in the input. */
  line: number;
  comm: string;
  pid: number;
  /** The CPU that emitted the event (the `[001]` column). */
  cpu: number;
  /** The timestamp in nanoseconds (seconds.micro(nano)seconds as printed; a bare integer is taken as ns). */
  ts_ns: number;
}

/** kmem:mm_page_alloc. `pfn` is -1 for an allocation that failed in the kernel (page=NULL). */
export interface KmemPageAlloc extends KmemEventBase {
  kind: 'mm_page_alloc';
  pfn: number;
  order: number;
  migratetype: number;
  /** The gfp mask in the model's bits (src/mm/gfp.ts); flags the model lacks are dropped. */
  gfp: number;
  /** The gfp_flags text as printed, e.g. `GFP_KERNEL|__GFP_ZERO`. */
  gfp_text: string;
}

/** kmem:mm_page_free. */
export interface KmemPageFree extends KmemEventBase {
  kind: 'mm_page_free';
  pfn: number;
  order: number;
}

/** kmem:mm_page_free_batched: always order 0. */
export interface KmemPageFreeBatched extends KmemEventBase {
  kind: 'mm_page_free_batched';
  pfn: number;
  order: 0;
}

/** kmem:mm_page_alloc_extfrag: a fallback to another migratetype's free block. */
export interface KmemPageAllocExtfrag extends KmemEventBase {
  kind: 'mm_page_alloc_extfrag';
  pfn: number;
  alloc_order: number;
  fallback_order: number;
  pageblock_order: number;
  alloc_migratetype: number;
  fallback_migratetype: number;
  /** fallback_order < pageblock_order */
  fragmenting: boolean;
  /** The pageblock now has the allocation's migratetype (the model's `claimed`). */
  change_ownership: boolean;
}

export type KmemTraceEvent = KmemPageAlloc | KmemPageFree | KmemPageFreeBatched | KmemPageAllocExtfrag;

/** What parseKmemTrace() returns. */
export interface KmemTrace {
  events: KmemTraceEvent[];
  /** Event lines of other tracepoints, by event name (skipped). */
  skipped: Record<string, number>;
  /** Events the ring buffer lost (`CPU:1 [LOST 42 EVENTS]`). */
  lost_events: number;
  /** Lines read, headers and blank lines included. */
  lines: number;
}

export interface KmemTraceParseOptions {
  /** Names the input in error messages (a file name); default `trace`. */
  source?: string;
  /** Refuse longer input; default KMEM_TRACE_MAX_BYTES. */
  max_bytes?: number;
}

/** A bad line of a kmem trace: `source:line: what is wrong`. */
export class KmemTraceError extends Error {
  constructor(
    readonly source: string,
    readonly line: number,
    readonly reason: string,
  ) {
    super(line > 0 ? `${source}:${line}: ${reason}` : `${source}: ${reason}`);
    this.name = 'KmemTraceError';
  }
}

/*
 * The prefix. tracefs prints
 *   "         kcap.sh-14361   [000] ..... 35340.277137: mm_page_alloc: page=..."
 * (comm-pid, an optional "(tgid)" with options/record-tgid, [cpu], the irqs-off/need-resched/
 * hardirq/preempt/migrate-disable column, timestamp); trace-cmd report prints the same without
 * the flags column:
 *   "         kcap.sh-14361 [000] 35340.277137: mm_page_alloc:        page=..."
 * The comm may hold '-' and spaces, so it is matched greedily up to the last "-pid [cpu]".
 */
const PREFIX_RE =
  /^\s*(.+)-(\d+)\s+(?:\(\s*(?:\d+|-+)\)\s+)?\[(\d+)\]\s+(?:([^\s:]{4,6})\s+)?(\d+(?:\.\d+)?):\s+([A-Za-z_]\w*):\s*(.*)$/;
const LOST_RE = /^\s*CPU:\s*\d+\s+\[LOST\s+(\d+)\s+EVENTS\]\s*$/;
// trace-cmd report's header lines.
const TRACE_CMD_HEADER_RE = /^(?:version\s*=\s*\d+|cpus=\d+|CPU\s+\d+\s+is empty|trace-cmd:.*)\s*$/;

/**
 * Whether `line` looks like a tracefs or trace-cmd report line (an event, a lost-events line or
 * a trace-cmd header), used to tell a trace's format.
 */
export function isKmemTraceLine(line: string): boolean {
  return PREFIX_RE.test(line) || LOST_RE.test(line) || TRACE_CMD_HEADER_RE.test(line.trimStart());
}

const FIELDS: Record<KmemTraceEvent['kind'], readonly string[]> = {
  mm_page_alloc: ['page', 'pfn', 'order', 'migratetype', 'gfp_flags'],
  mm_page_free: ['page', 'pfn', 'order'],
  mm_page_free_batched: ['page', 'pfn', 'order'],
  mm_page_alloc_extfrag: [
    'page',
    'pfn',
    'alloc_order',
    'fallback_order',
    'pageblock_order',
    'alloc_migratetype',
    'fallback_migratetype',
    'fragmenting',
    'change_ownership',
  ],
};

/*
 * show_gfp_flags() names (include/trace/events/mmflags.h) the model's gfp.ts has no entry for:
 * __GFP_RECLAIM is both reclaim bits; the rest have no meaning in the model and are dropped.
 */
const GFP_EXTRA_NAMES = new Map<string, number>([
  ['__GFP_RECLAIM', __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM],
  ['__GFP_ZEROTAGS', 0],
  ['__GFP_SKIP_ZERO', 0],
  ['__GFP_SKIP_KASAN', 0],
  ['__GFP_NOLOCKDEP', 0],
  ['__GFP_NO_OBJ_EXT', 0],
]);
/** Every bit the model knows; a printed hex remainder keeps only these (6.18 bit numbers). */
const GFP_MODEL_MASK = GFP_FLAG_NAMES.reduce((m, [, bit]) => m | bit, 0);

/**
 * The gfp mask of a gfp_flags string as show_gfp_flags() prints it (`GFP_KERNEL|__GFP_ZERO`,
 * `none` for 0, unnamed bits as a hex remainder), in the model's bits. Throws a message on an
 * unknown name.
 */
export function parse_trace_gfp(text: string): number {
  if (text === 'none') return 0;
  let mask = 0;
  for (const name of text.split('|')) {
    if (/^0x[0-9a-f]+$/i.test(name)) {
      if (name.length > 18) throw new Error(`gfp_flags remainder '${name}' is wider than 64 bits`);
      // Bits above 31 do not fit a JS int; none of them is a model flag.
      mask |= Number.parseInt(name.slice(-8), 16) & GFP_MODEL_MASK;
      continue;
    }
    const extra = GFP_EXTRA_NAMES.get(name);
    if (extra !== undefined) {
      mask |= extra;
      continue;
    }
    if (!/^(?:__)?GFP_[A-Z0-9_]+$/.test(name)) throw new Error(`gfp_flags has a bad name '${name}'`);
    try {
      mask |= parse_gfp(name);
    } catch {
      throw new Error(`gfp_flags has an unknown flag '${name}'`);
    }
  }
  return mask;
}

/** "35340.277137" → 35340277137000 ns; a bare integer is taken as ns. */
function parse_ts(text: string): number {
  const dot = text.indexOf('.');
  if (dot < 0) return Number(text);
  const frac = text.slice(dot + 1);
  if (frac.length > 9) throw new Error(`timestamp '${text}' has more than 9 decimals`);
  return Number(text.slice(0, dot)) * 1e9 + Number(frac.padEnd(9, '0'));
}

function dec(key: string, value: string, min: number, max: number): number {
  if (!/^-?\d{1,10}$/.test(value)) throw new Error(`${key}=${value} is not a decimal number`);
  const n = Number(value);
  if (n < min || n > max) throw new Error(`${key}=${value} is out of range [${min}, ${max}]`);
  return n;
}

function hex_pfn(value: string): number {
  // 13 hex digits: 2^52 pfns, the most a double holds exactly with room to spare.
  if (!/^0x[0-9a-f]{1,13}$/i.test(value)) throw new Error(`pfn=${value} is not a hex pfn (0x...)`);
  return Number.parseInt(value.slice(2), 16);
}

function bool01(key: string, value: string): boolean {
  if (value !== '0' && value !== '1') throw new Error(`${key}=${value} is not 0 or 1`);
  return value === '1';
}

/** The `key=value` fields of a body, which must be exactly `keys`, in that order. */
function fields(event: string, body: string, keys: readonly string[]): string[] {
  const tokens = body.trim().split(/\s+/);
  const values: string[] = [];
  for (let i = 0; i < keys.length; i++) {
    const tok = tokens[i];
    const eq = tok === undefined ? -1 : tok.indexOf('=');
    if (tok === undefined || eq < 0 || tok.slice(0, eq) !== keys[i] || eq === tok.length - 1)
      throw new Error(
        `${event}: expected ${keys[i]}=<value> as field ${i + 1} (${keys.map((k) => `${k}=`).join(' ')}), got '${tok ?? ''}'`,
      );
    values.push(tok.slice(eq + 1));
  }
  if (tokens.length > keys.length)
    throw new Error(`${event}: unexpected text after ${keys.at(-1)}=: '${tokens[keys.length]}'`);
  return values;
}

/** NULL as %p prints it (vsprintf ptr_to_id prints NULL unhashed). */
function is_null_page(page: string): boolean {
  return /^0+$/.test(page) || page === '(null)';
}

function parse_event(kind: KmemTraceEvent['kind'], body: string, base: KmemEventBase): KmemTraceEvent {
  const v = fields(kind, body, FIELDS[kind]);
  switch (kind) {
    case 'mm_page_alloc': {
      const pfn = hex_pfn(v[1]);
      const order = dec('order', v[2], 0, MAX_PAGE_ORDER);
      const migratetype = dec('migratetype', v[3], 0, MIGRATE_TYPES - 1);
      const gfp = parse_trace_gfp(v[4]);
      // __alloc_pages() traces its failures too, with page=NULL and pfn=0.
      const failed = pfn === 0 && is_null_page(v[0]);
      return { ...base, kind, pfn: failed ? -1 : pfn, order, migratetype, gfp, gfp_text: v[4] };
    }
    case 'mm_page_free':
      return { ...base, kind, pfn: hex_pfn(v[1]), order: dec('order', v[2], 0, MAX_FREE_ORDER) };
    case 'mm_page_free_batched':
      if (v[2] !== '0') throw new Error(`mm_page_free_batched: order=${v[2]}, the kernel prints order=0`);
      return { ...base, kind, pfn: hex_pfn(v[1]), order: 0 };
    case 'mm_page_alloc_extfrag':
      return {
        ...base,
        kind,
        pfn: hex_pfn(v[1]),
        alloc_order: dec('alloc_order', v[2], 0, MAX_PAGE_ORDER),
        fallback_order: dec('fallback_order', v[3], 0, MAX_PAGE_ORDER),
        pageblock_order: dec('pageblock_order', v[4], 0, MAX_PAGE_ORDER),
        alloc_migratetype: dec('alloc_migratetype', v[5], 0, MIGRATE_TYPES - 1),
        fallback_migratetype: dec('fallback_migratetype', v[6], 0, MIGRATE_TYPES - 1),
        fragmenting: bool01('fragmenting', v[7]),
        change_ownership: bool01('change_ownership', v[8]),
      };
  }
}

/**
 * Parse the text of /sys/kernel/tracing/trace (or trace_pipe) or `trace-cmd report`. Comment
 * (`#`), blank and trace-cmd header lines are skipped; lines of other tracepoints are skipped and
 * counted in `skipped`; anything else, or a kmem line whose fields are wrong, throws one
 * KmemTraceError naming the line.
 */
export function parseKmemTrace(text: string, opts: KmemTraceParseOptions = {}): KmemTrace {
  const source = opts.source ?? 'trace';
  const max_bytes = opts.max_bytes ?? KMEM_TRACE_MAX_BYTES;
  if (text.length > max_bytes)
    throw new KmemTraceError(source, 0, `${text.length} bytes is more than the limit of ${max_bytes}`);
  const events: KmemTraceEvent[] = [];
  const skipped: Record<string, number> = {};
  let lost_events = 0;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  for (let i = 0; i < lines.length; i++) {
    const lineno = i + 1;
    const line = lines[i].endsWith('\r') ? lines[i].slice(0, -1) : lines[i];
    if (line.length > KMEM_TRACE_MAX_LINE)
      throw new KmemTraceError(
        source,
        lineno,
        `line of ${line.length} characters is longer than ${KMEM_TRACE_MAX_LINE}`,
      );
    const trimmed = line.trimStart();
    if (trimmed === '' || trimmed.startsWith('#') || TRACE_CMD_HEADER_RE.test(trimmed)) continue;
    const lost = LOST_RE.exec(line);
    if (lost) {
      lost_events += Number(lost[1]);
      continue;
    }
    const m = PREFIX_RE.exec(line);
    if (!m)
      throw new KmemTraceError(
        source,
        lineno,
        `not a trace event line (expected 'comm-pid [cpu] timestamp: event: fields'): '${line.slice(0, 80)}'`,
      );
    const name = m[6];
    if (!(name in FIELDS)) {
      skipped[name] = (skipped[name] ?? 0) + 1;
      continue;
    }
    try {
      const base: KmemEventBase = {
        line: lineno,
        comm: m[1].trim(),
        pid: Number(m[2]),
        cpu: Number(m[3]),
        ts_ns: parse_ts(m[5]),
      };
      events.push(parse_event(name as KmemTraceEvent['kind'], m[7], base));
    } catch (e) {
      throw new KmemTraceError(source, lineno, (e as Error).message);
    }
  }
  return { events, skipped, lost_events, lines: lines.length };
}

/** One extfrag event, the kernel's or the model's. */
export interface ExtfragEvent {
  pfn: number;
  alloc_order: number;
  fallback_order: number;
  alloc_migratetype: number;
  fallback_migratetype: number;
  change_ownership: boolean;
}

/** How many extfrag events each side had for one (alloc_order, fallback_migratetype). */
export interface ExtfragCount {
  alloc_order: number;
  fallback_migratetype: number;
  kernel: number;
  model: number;
}

export interface KmemReplayOptions {
  /**
   * Simulated time per traced time (1: as traced; 0: the clock moves only by the model's own
   * kernel CPU time). The clock never runs backwards: an event earlier than `now` runs at `now`.
   */
  time_scale?: number;
  /** Replay only the first this many events (all by default). */
  max_events?: number;
}

/** What replayKmemTrace() did. */
export interface KmemReplayResult {
  /** Allocations and frees the model carried out. */
  replayed_allocs: number;
  replayed_frees: number;
  /** Allocations the model could not satisfy (alloc_pages() returned -1). */
  failed_allocs: number;
  /** Allocations that failed in the traced kernel (page=NULL): not replayed. */
  kernel_failed_allocs: number;
  /** Frees of pfns never seen allocated (allocated before tracing started): skipped. */
  unmatched_frees: number;
  /**
   * Frees whose order differs from their allocation's (split_page() users free a high-order
   * block page by page): skipped, the model's block stays allocated.
   */
  order_mismatched_frees: number;
  /**
   * mm_page_free_batched events that followed an mm_page_free of the same pfn: in 6.18
   * free_unref_folios() traces both for one free (__free_pages_prepare(), then the batch), so
   * the second is not replayed. A batched event alone frees order 0.
   */
  batched_after_free: number;
  /** Allocations of a pfn the trace never freed: the older model block is freed first. */
  implicit_frees: number;
  /** Traced allocations whose model block is still allocated at the end. */
  live_blocks: number;
  /** Simulated time the replay took, ns. */
  elapsed_ns: number;
  kernel_extfrag: ExtfragEvent[];
  model_extfrag: ExtfragEvent[];
  /** Extfrag counts side by side, by (alloc_order, fallback_migratetype) ascending. */
  extfrag_compare: ExtfragCount[];
}

/*
 * A live traced allocation is packed into one number: model pfn * 32 + order (order <= 10 fits
 * in 5 bits; a pfn below 2^47 keeps the product exact).
 */
const ORDER_BITS = 32;

/**
 * The replay's state between events, so a trace can be replayed a few events at a time (the
 * `trace-replay` workload model steps it slice by slice while other models run): the map from
 * real pfns to the model blocks their allocations got. The model's extfrag events are collected
 * only between attach() and detach(): a machine holding a function cannot be cloned, so the hook
 * must not outlive a step. `release()` frees every block the replay still holds.
 */
export class KmemReplayer {
  private readonly r: KmemReplayResult = {
    replayed_allocs: 0,
    replayed_frees: 0,
    failed_allocs: 0,
    kernel_failed_allocs: 0,
    unmatched_frees: 0,
    order_mismatched_frees: 0,
    batched_after_free: 0,
    implicit_frees: 0,
    live_blocks: 0,
    elapsed_ns: 0,
    kernel_extfrag: [],
    model_extfrag: [],
    extfrag_compare: [],
  };
  /** real pfn → model pfn * ORDER_BITS + order */
  private readonly live = new Map<number, number>();
  /**
   * Real pfns an mm_page_free named since their last allocation: a later mm_page_free_batched
   * of one is the same free.
   */
  private readonly freed = new Set<number>();
  private readonly start: number;
  private saved: Machine['mm']['trace']['mm_page_alloc_extfrag'] | undefined;
  private attached = false;

  constructor(private readonly machine: Machine) {
    this.start = machine.now;
  }

  /** Collect the model's extfrag events (chaining to any hook already there) until detach(). */
  attach(): void {
    if (this.attached) return;
    const trace = this.machine.mm.trace;
    const saved = trace.mm_page_alloc_extfrag;
    const model_extfrag = this.r.model_extfrag;
    this.saved = saved;
    this.attached = true;
    trace.mm_page_alloc_extfrag = (pfn, alloc_order, fallback_order, alloc_mt, fallback_mt, claimed) => {
      model_extfrag.push({
        pfn,
        alloc_order,
        fallback_order,
        alloc_migratetype: alloc_mt,
        fallback_migratetype: fallback_mt,
        change_ownership: claimed,
      });
      saved?.(pfn, alloc_order, fallback_order, alloc_mt, fallback_mt, claimed);
    };
  }

  /** Put back the hook attach() found. */
  detach(): void {
    if (!this.attached) return;
    this.machine.mm.trace.mm_page_alloc_extfrag = this.saved ?? null;
    this.saved = undefined;
    this.attached = false;
  }

  private free_traced(real_pfn: number, order: number, cpu: number): void {
    const r = this.r;
    const got = this.live.get(real_pfn);
    if (got === undefined) {
      r.unmatched_frees++;
      return;
    }
    if (got % ORDER_BITS !== order) {
      r.order_mismatched_frees++;
      return;
    }
    this.live.delete(real_pfn);
    this.machine.kernel.free_pages(Math.floor(got / ORDER_BITS), order, { cpu });
    r.replayed_frees++;
  }

  /** Replay one event now (the caller moves the clock); a model error is rethrown as `line N: …`. */
  replay(ev: KmemTraceEvent): void {
    const machine = this.machine;
    const r = this.r;
    const live = this.live;
    const cpu = ev.cpu % machine.mm.nr_cpus;
    try {
      switch (ev.kind) {
        case 'mm_page_alloc': {
          this.freed.delete(ev.pfn);
          if (ev.pfn < 0) {
            r.kernel_failed_allocs++;
            break;
          }
          const old = live.get(ev.pfn);
          if (old !== undefined) {
            // The kernel freed it without a traced free: keep the model in step.
            live.delete(ev.pfn);
            machine.kernel.free_pages(Math.floor(old / ORDER_BITS), old % ORDER_BITS, { cpu });
            r.implicit_frees++;
          }
          const pfn = machine.kernel.alloc_pages(ev.gfp, ev.order, { cpu });
          if (pfn < 0) {
            r.failed_allocs++;
            break;
          }
          live.set(ev.pfn, pfn * ORDER_BITS + ev.order);
          r.replayed_allocs++;
          break;
        }
        case 'mm_page_free':
          this.freed.add(ev.pfn);
          this.free_traced(ev.pfn, ev.order, cpu);
          break;
        case 'mm_page_free_batched':
          // free_unref_folios() traced this pfn's mm_page_free already (with its true order).
          if (this.freed.delete(ev.pfn)) r.batched_after_free++;
          else this.free_traced(ev.pfn, 0, cpu);
          break;
        case 'mm_page_alloc_extfrag':
          r.kernel_extfrag.push({
            pfn: ev.pfn,
            alloc_order: ev.alloc_order,
            fallback_order: ev.fallback_order,
            alloc_migratetype: ev.alloc_migratetype,
            fallback_migratetype: ev.fallback_migratetype,
            change_ownership: ev.change_ownership,
          });
          break;
      }
    } catch (e) {
      throw new Error(`line ${ev.line}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** The counts so far, with the live blocks and the extfrag comparison as they are now. */
  result(): KmemReplayResult {
    const r = this.r;
    r.live_blocks = this.live.size;
    r.elapsed_ns = this.machine.now - this.start;
    r.extfrag_compare = compareExtfrag(r.kernel_extfrag, r.model_extfrag);
    return r;
  }

  /** Free every model block a traced allocation still holds, and detach. Counts are kept. */
  release(): void {
    this.detach();
    const k = this.machine.kernel;
    for (const [, got] of [...this.live.entries()].sort((a, b) => a[0] - b[0]))
      k.free_pages(Math.floor(got / ORDER_BITS), got % ORDER_BITS);
    this.live.clear();
    this.freed.clear();
  }
}

/**
 * Drive `machine` with a parsed trace, in trace order: each mm_page_alloc becomes
 * machine.kernel.alloc_pages(gfp, order) on the traced CPU modulo the machine's CPUs; each free
 * frees the model block its pfn's allocation got (real pfn → model pfn); mm_page_free_batched
 * frees order 0 unless an mm_page_free of that pfn came first (6.18 traces a batched free
 * twice). The clock follows the trace timestamps (scaled). The model's extfrag events are
 * recorded through mm.trace.mm_page_alloc_extfrag, attached only for the replay. An error the
 * model throws is rethrown naming the trace line. The blocks still allocated at the end stay
 * (see KmemReplayer.release).
 */
export function replayKmemTrace(
  machine: Machine,
  events: readonly KmemTraceEvent[],
  opts: KmemReplayOptions = {},
): KmemReplayResult {
  const scale = opts.time_scale ?? 1;
  if (!Number.isFinite(scale) || scale < 0)
    throw new RangeError(`replayKmemTrace: time_scale ${scale} is not a finite number >= 0`);
  const max_events = opts.max_events ?? events.length;
  if (!Number.isInteger(max_events) || max_events < 0)
    throw new RangeError(`replayKmemTrace: max_events ${max_events} is not an integer >= 0`);
  const n = Math.min(events.length, max_events);
  const replayer = new KmemReplayer(machine);
  const start = machine.now;
  const t0 = n > 0 ? events[0].ts_ns : 0;
  replayer.attach();
  try {
    for (let i = 0; i < n; i++) {
      const ev = events[i];
      if (scale > 0) {
        const at = start + Math.round((ev.ts_ns - t0) * scale);
        if (at > machine.now) machine.advance(at - machine.now);
      }
      try {
        replayer.replay(ev);
      } catch (e) {
        throw new Error(`replayKmemTrace: ${(e as Error).message}`, { cause: (e as Error).cause });
      }
    }
  } finally {
    // Machines must stay cloneable: no closure may outlive the replay.
    replayer.detach();
  }
  return replayer.result();
}

/** Extfrag counts of both sides by (alloc_order, fallback_migratetype), ascending. */
export function compareExtfrag(
  kernel: readonly ExtfragEvent[],
  model: readonly ExtfragEvent[],
): ExtfragCount[] {
  const rows = new Map<number, ExtfragCount>();
  const row = (e: ExtfragEvent): ExtfragCount => {
    const key = e.alloc_order * 256 + e.fallback_migratetype;
    let c = rows.get(key);
    if (c === undefined) {
      c = { alloc_order: e.alloc_order, fallback_migratetype: e.fallback_migratetype, kernel: 0, model: 0 };
      rows.set(key, c);
    }
    return c;
  };
  for (const e of kernel) row(e).kernel++;
  for (const e of model) row(e).model++;
  return [...rows.entries()].sort((a, b) => a[0] - b[0]).map(([, c]) => c);
}
