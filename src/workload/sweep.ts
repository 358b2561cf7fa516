/**
 * Parameter sweeps (docs/sweeps.md): a sweep file names a scenario, a grid of values for fields
 * of it and a list of seeds; every combination × seed is a *point*, run on a pool of worker
 * threads, each written to `points/NNNNN.json` (tmp + rename) the moment it finishes, so a killed
 * sweep resumes (`resume`) losing only the points that were running. `shard` runs every N-th
 * point; mergeSweep() joins shard directories into `sweep.json` + `sweep.csv`, the same bytes an
 * un-sharded run writes, because the un-sharded run writes them through mergeSweep() too.
 *
 * Point order: the grid's fields in file order, the first varying slowest, then the seeds
 * (fastest), like nested loops. With grid {a: [1, 2], b: [x, y]} and seeds [1, 2]:
 *
 *   0: a=1 b=x seed=1   1: a=1 b=x seed=2   2: a=1 b=y seed=1   3: a=1 b=y seed=2
 *   4: a=2 b=x seed=1   …                                        7: a=2 b=y seed=2
 *
 * so point i has seed seeds[i % S]. Shard I/N runs the points with i % N == I - 1.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import YAML, { LineCounter } from 'yaml';
import { z } from 'zod';
import './models.ts';
import { type RunResult, runScenario } from './run.ts';
import { closest, locate, parseScenario, type Scenario, ScenarioError } from './scenario.ts';
import { shown } from './units.ts';

export const SWEEP_FORMAT = 'mapcontig-sweep/1';
export const POINT_FORMAT = 'mapcontig-sweep-point/1';
export const MANIFEST_FORMAT = 'mapcontig-sweep-manifest/1';

/** A bad sweep file, or a point whose overrides make the scenario invalid: one line, as ScenarioError. */
export class SweepError extends ScenarioError {
  constructor(file: string, line: number, col: number, field: string, reason: string) {
    super(file, line, col, field, reason);
    this.name = 'SweepError';
  }
}

/** Something wrong with output directories (resume, merge): a message naming the directory. */
export class SweepOutputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SweepOutputError';
  }
}

// ---------------------------------------------------------------------------------------------
// Field paths: `machine.memory`, `phases[1].workloads[0].params.forks_per_s`, `sysfs['/proc/…']`

export type PathSegment = string | number;

/** Split a field path into keys and list indices; null when it is not one. */
export function parseFieldPath(text: string): PathSegment[] | null {
  const out: PathSegment[] = [];
  // key, [index] or ['quoted key'], each after a '.' or '[' (but the first).
  const segment = /\.?([A-Za-z_][\w-]*)|\[(\d+)\]|\[(?:'([^']*)'|"([^"]*)")\]/y;
  let i = 0;
  while (i < text.length) {
    segment.lastIndex = i;
    const m = segment.exec(text);
    if (!m || (m[1] !== undefined && (out.length === 0) !== (m[0][0] !== '.'))) return null;
    out.push(m[1] ?? (m[2] !== undefined ? Number(m[2]) : (m[3] ?? m[4])));
    i = segment.lastIndex;
  }
  return out.length ? out : null;
}

/** A path as scenario messages write it: `phases[1].duration`, `sysfs['/sys/…']`. */
export function formatFieldPath(path: readonly PathSegment[]): string {
  let s = '';
  for (const p of path) {
    if (typeof p === 'number') s += `[${p}]`;
    else if (!/^[A-Za-z_][\w-]*$/.test(p)) s += `['${p}']`;
    else s += s ? `.${p}` : p;
  }
  return s;
}

/** `value` as a point's key writes it: plain when that cannot be misread, JSON otherwise. */
export function valueLabel(v: unknown): string {
  if (typeof v === 'string') return /^[^\s,="'[\]{}]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? 'null';
}

// ---------------------------------------------------------------------------------------------
// Points

/** One grid field and the values it takes. */
export interface GridAxis {
  /** As written in the sweep file. */
  path: string;
  values: unknown[];
}

/** One combination of grid values and a seed. */
export interface PointSpec {
  index: number;
  /** `path=value … seed=N`, unique within the sweep. */
  key: string;
  /** Grid path → the value written in the sweep file. */
  params: Record<string, unknown>;
  seed: number;
}

/** Every point of a grid × seeds, in the order of the module comment. */
export function expandGrid(grid: readonly GridAxis[], seeds: readonly number[]): PointSpec[] {
  const combos = grid.reduce((n, a) => n * a.values.length, 1);
  const out: PointSpec[] = [];
  for (let c = 0; c < combos; c++) {
    // Mixed-radix digits of c, the last axis the least significant.
    const picks: number[] = new Array(grid.length);
    let rest = c;
    for (let a = grid.length - 1; a >= 0; a--) {
      picks[a] = rest % grid[a].values.length;
      rest = Math.floor(rest / grid[a].values.length);
    }
    for (const seed of seeds) {
      const params: Record<string, unknown> = {};
      const parts: string[] = [];
      grid.forEach((a, i) => {
        const v = a.values[picks[i]];
        params[a.path] = v;
        parts.push(`${a.path}=${valueLabel(v)}`);
      });
      parts.push(`seed=${seed}`);
      out.push({ index: out.length, key: parts.join(' '), params, seed });
    }
  }
  return out;
}

/** Whether shard `shard` (1-based I of N) runs point `index`. */
export function inShard(index: number, shard: Shard | null): boolean {
  return shard === null || index % shard.count === shard.index - 1;
}

export interface Shard {
  /** 1-based. */
  index: number;
  count: number;
}

/** `I/N` with 1 <= I <= N; null when it is not one. */
export function parseShard(text: string): Shard | null {
  const m = /^(\d+)\/(\d+)$/.exec(text);
  if (!m) return null;
  const index = Number(m[1]);
  const count = Number(m[2]);
  return index >= 1 && index <= count ? { index, count } : null;
}

// ---------------------------------------------------------------------------------------------
// The sweep file

const sweepSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'is not one word (letters, digits, - _ .)')
      .optional(),
    description: z.string().default(''),
    /** The scenario file, relative to the sweep file. */
    scenario: z.string().min(1, 'is empty (expected the path of a scenario file)'),
    /** A count N (seeds 1..N) or a list; the scenario's own seed when absent. */
    seeds: z.union([z.number().int().min(1), z.array(z.number().int().min(0)).min(1)]).optional(),
    /** Field path → the values it takes. */
    grid: z.record(z.string(), z.array(z.unknown()).min(1)).default({}),
  })
  .strict();

const SWEEP_KEYS = Object.keys(sweepSchema.shape);

/** A validated sweep, with every point's scenario checked. */
export interface Sweep {
  /** The sweep file as given. */
  file: string;
  name: string;
  description: string;
  /** `scenario:` as written, and the file it names. */
  scenarioRef: string;
  scenarioFile: string;
  scenario: Scenario;
  grid: GridAxis[];
  seeds: number[];
  /** sha256 of the sweep file and the scenario file: shards and resumes must agree on it. */
  hash: string;
  points: SweepPoint[];
}

/** A point and the scenario text it runs. */
export interface SweepPoint extends PointSpec {
  /** The scenario with the point's values and seed, as YAML for parseScenario(). */
  text: string;
}

function didYouMean(word: string, known: readonly string[]): string {
  const best = closest(word, known);
  return best ? `did you mean '${best}'?` : `known: ${known.join(', ')}`;
}

/** A sweep-file field as messages write it: `seeds[2]`, `grid['machine.memory'][1]`. */
function sweepField(path: readonly PathSegment[]): string {
  if (path[0] === 'grid' && path.length > 1)
    return `grid['${String(path[1])}']${path
      .slice(2)
      .map((p) => `[${String(p)}]`)
      .join('')}`;
  return formatFieldPath(path) || '(top level)';
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  record: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
};

/** One zod issue of the sweep schema as the words after the field. */
function describe(
  issue: z.core.$ZodIssue,
  data: unknown,
): { path: PathSegment[]; reason: string; atKey: boolean } {
  const path = issue.path as PathSegment[];
  const got = path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k], data);
  switch (issue.code) {
    case 'unrecognized_keys':
      return {
        path: [...path, issue.keys[0]],
        reason: `unknown key '${issue.keys[0]}' (${didYouMean(issue.keys[0], SWEEP_KEYS)})`,
        atKey: true,
      };
    case 'invalid_type':
      return {
        path,
        reason:
          got === undefined
            ? 'is required'
            : `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${shown(got)}`,
        atKey: false,
      };
    case 'invalid_union':
      // Only `seeds` is a union.
      return { path, reason: `expected a count or a list of seeds, got ${shown(got)}`, atKey: false };
    case 'too_small':
      return {
        path,
        reason:
          issue.origin === 'array'
            ? 'needs at least one value'
            : issue.origin === 'string'
              ? issue.message
              : `must be at least ${issue.minimum}, got ${shown(got)}`,
        atKey: false,
      };
    default:
      return {
        path,
        reason: got !== undefined ? `${shown(got)} ${issue.message}` : issue.message,
        atKey: false,
      };
  }
}

/** Set `path` in plain YAML data, making missing mappings on the way; a reason when it cannot. */
function setIn(data: unknown, path: readonly PathSegment[], value: unknown): string | null {
  let node = data as Record<PropertyKey, unknown> | unknown[];
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    const here = formatFieldPath(path.slice(0, i)) || 'the scenario';
    const last = i === path.length - 1;
    if (typeof seg === 'number') {
      if (!Array.isArray(node)) return `${here} is not a list`;
      if (seg >= node.length) return `${here} has ${node.length} entries, so there is no [${seg}]`;
      if (last) node[seg] = value;
      else node = node[seg] as typeof node;
    } else {
      if (node === null || typeof node !== 'object' || Array.isArray(node)) return `${here} is not a mapping`;
      if (last) (node as Record<string, unknown>)[seg] = value;
      else {
        // A section the scenario leaves out (`sample:`, a phase's `params:`) is made.
        if (
          (node as Record<string, unknown>)[seg] === undefined ||
          (node as Record<string, unknown>)[seg] === null
        )
          (node as Record<string, unknown>)[seg] = {};
        node = (node as Record<string, unknown>)[seg] as typeof node;
      }
    }
  }
  return null;
}

function sha256(parts: readonly string[]): string {
  const h = createHash('sha256');
  // Lengths first, so no two different (sweep, scenario) pairs hash the same text.
  for (const p of parts) h.update(`${Buffer.byteLength(p)}\n`).update(p);
  return h.digest('hex');
}

/** Validate a sweep's text; the scenario is read relative to `file`. Throws one SweepError or ScenarioError. */
export function parseSweep(text: string, file: string): Sweep {
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const fail = (pos: number, field: string, reason: string): never => {
    const { line, col } = lc.linePos(pos);
    throw new SweepError(file, line, col, field, reason);
  };
  const failAt = (path: readonly PathSegment[], reason: string, atKey = false): never =>
    fail(locate(doc, path, atKey), sweepField(path), reason);
  if (doc.errors.length)
    fail(doc.errors[0].pos[0], '', `YAML syntax: ${doc.errors[0].message.split('\n')[0]}`);
  const data: unknown = doc.toJS();
  if (data === null || data === undefined)
    fail(0, '', 'the file is empty (a sweep needs at least scenario and grid or seeds)');
  if (typeof data !== 'object' || Array.isArray(data))
    fail(doc.contents?.range?.[0] ?? 0, '(top level)', `expected a mapping, got ${shown(data)}`);

  const parsed = sweepSchema.safeParse(data);
  if (!parsed.success) {
    // The first problem in the file, whichever the schema found first.
    const found = parsed.error.issues.map((i) => describe(i, data));
    found.sort((a, b) => locate(doc, a.path, a.atKey) - locate(doc, b.path, b.atKey));
    failAt(found[0].path, found[0].reason, found[0].atKey);
  }
  const s = (parsed as { data: z.output<typeof sweepSchema> }).data;

  // The grid's paths, before reading the scenario: a typo in the sweep file is the sweep's fault.
  const grid: GridAxis[] = [];
  const segments: PathSegment[][] = [];
  for (const [path, values] of Object.entries(s.grid)) {
    const segs = parseFieldPath(path);
    if (!segs)
      failAt(
        ['grid', path],
        `'${path}' is not a field path (expected e.g. machine.memory, phases[1].workloads[0].params.rss, sysfs['/proc/sys/vm/x'])`,
        true,
      );
    const p = segs as PathSegment[];
    if (p.length === 1 && p[0] === 'seed')
      failAt(['grid', path], "the seed is swept by 'seeds:', not by the grid", true);
    const norm = formatFieldPath(p);
    segments.forEach((other, k) => {
      const a = formatFieldPath(other);
      if (a === norm) failAt(['grid', path], `'${path}' is the same field as '${grid[k].path}'`, true);
      const [short, long] = other.length < p.length ? [other, p] : [p, other];
      if (short.every((x, i) => x === long[i]))
        failAt(['grid', path], `'${path}' overlaps '${grid[k].path}': sweep one or the other`, true);
    });
    const labels = new Map<string, number>();
    values.forEach((v, j) => {
      const l = valueLabel(v);
      if (labels.has(l))
        failAt(
          ['grid', path, j],
          `${valueLabel(v)} is already value [${labels.get(l)}]: every point would run twice`,
        );
      labels.set(l, j);
    });
    grid.push({ path, values });
    segments.push(p);
  }
  if (Array.isArray(s.seeds)) {
    const seen = new Map<number, number>();
    s.seeds.forEach((seed, j) => {
      if (seen.has(seed)) failAt(['seeds', j], `seed ${seed} is already seeds[${seen.get(seed)}]`);
      seen.set(seed, j);
    });
  }

  // The scenario, as a file of its own: its mistakes are reported against it.
  const scenarioFile = isAbsolute(s.scenario) ? s.scenario : join(dirname(file), s.scenario);
  let scenarioText = '';
  try {
    scenarioText = readFileSync(scenarioFile, 'utf8');
  } catch (e) {
    failAt(
      ['scenario'],
      `cannot read '${scenarioFile}': ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  const scenario = parseScenario(scenarioText, scenarioFile);
  const seeds =
    s.seeds === undefined
      ? [scenario.seed]
      : typeof s.seeds === 'number'
        ? Array.from({ length: s.seeds }, (_, i) => i + 1)
        : s.seeds;
  const base = YAML.parse(scenarioText) as Record<string, unknown>;

  // Every point's scenario, checked now, so a bad combination stops the sweep before it starts.
  const points: SweepPoint[] = expandGrid(grid, seeds).map((spec) => {
    const where = `point ${spec.index} (${spec.key})`;
    const data = structuredClone(base);
    grid.forEach((axis, a) => {
      const why = setIn(data, segments[a], spec.params[axis.path]);
      if (why) failAt(['grid', axis.path], `${where}: ${why}`, true);
    });
    data.seed = spec.seed;
    const pointText = YAML.stringify(data);
    try {
      parseScenario(pointText, scenarioFile);
    } catch (e) {
      if (!(e instanceof ScenarioError)) throw e;
      // Blame the grid field the complaint is about. Else the combination is at fault: a field
      // away from its first value (point 0 has them all there), the one sharing most of the
      // complaint's path, the fastest-varying on a tie.
      const why = `${where}: ${e.field ? `${e.field}: ` : ''}${e.reason}`;
      if (grid.length === 0) failAt(['seeds'], why); // only the seed changed
      const field = e.field;
      const all = grid.map((_, a) => a);
      const named = all.find((a) => {
        const p = formatFieldPath(segments[a]);
        return field === p || field.startsWith(`${p}.`) || field.startsWith(`${p}[`);
      });
      let blame = named;
      if (blame === undefined) {
        const moved = all.filter((a) => grid[a].values.indexOf(spec.params[grid[a].path]) > 0);
        blame = grid.length - 1;
        let best = -1;
        for (let i = moved.length - 1; i >= 0; i--) {
          const share = commonPrefix(formatFieldPath(segments[moved[i]]), field);
          if (share > best) {
            best = share;
            blame = moved[i];
          }
        }
      }
      const axis = grid[blame];
      failAt(['grid', axis.path, axis.values.indexOf(spec.params[axis.path])], why);
    }
    return { ...spec, text: pointText };
  });

  return {
    file,
    name: s.name ?? `${scenario.name}-sweep`,
    description: s.description,
    scenarioRef: s.scenario,
    scenarioFile,
    scenario,
    grid,
    seeds,
    hash: sha256([SWEEP_FORMAT, text, scenarioText]),
    points,
  };
}

function commonPrefix(a: string, b: string): number {
  let i = 0;
  while (i < a.length && i < b.length && a[i] === b[i]) i++;
  return i;
}

/** Read and validate a sweep file. */
export function loadSweep(path: string): Sweep {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new SweepError(
      path,
      1,
      1,
      '',
      `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return parseSweep(text, path);
}

// ---------------------------------------------------------------------------------------------
// What a point keeps of its RunResult

/** The headline numbers of one run: small enough for thousands of points. */
export interface PointSummary {
  /** Simulated ns the run covered. */
  end_ns: number;
  /** At the last sample (the end of the run). */
  final: {
    free_pages: number;
    unusable_index: number;
    fragmentation_index: number;
    /** Bytes; null unless sample.metrics has largest_free_block. */
    largest_free_block: number | null;
  };
  events: Array<{
    at_ns: number;
    action: string;
    ok: boolean;
    errno: string | null;
    /** For map_contig: the requester's time in the kernel, and the physical segments it got. */
    latency_ns: number | null;
    segments: number | null;
  }>;
  compare: {
    at_ns: number;
    bytes: number;
    contenders: Array<{
      name: string;
      skipped: string | null;
      ok: boolean;
      errno: string | null;
      latency_ns: number | null;
      pages_migrated: number | null;
      segments: number | null;
      largest_segment_bytes: number | null;
      /** Collateral damage: the probe after the request minus the baseline's (null if no probe). */
      collateral: {
        thp_fallback_rate: number;
        kernel_failures: number;
        pgscan: number;
        compact_stalls: number;
        oom_kills: number;
      } | null;
    }>;
  } | null;
}

/** The summary a point file keeps of a run. */
export function summarize(r: RunResult): PointSummary {
  const last = r.samples.t_ns.length - 1;
  const lfb = r.samples.metrics.largest_free_block;
  const c = r.comparison;
  return {
    end_ns: r.end_ns,
    final: {
      free_pages: r.samples.free_by_order[last].reduce((n, blocks, o) => n + blocks * 2 ** o, 0),
      unusable_index: r.samples.unusable_index[last],
      fragmentation_index: r.samples.fragmentation_index[last],
      largest_free_block: lfb ? lfb[last] : null,
    },
    events: r.events.map((e) => ({
      at_ns: e.at_ns,
      action: e.action,
      ok: e.ok,
      errno: e.errno,
      latency_ns: e.cost?.latency_ns ?? null,
      segments: e.segments,
    })),
    compare: c && {
      at_ns: c.at_ns,
      bytes: c.request.bytes,
      contenders: c.results.map((k) => {
        const d = k.collateral;
        return {
          name: k.name,
          skipped: k.skipped,
          ok: k.ok,
          errno: k.errno,
          latency_ns: k.cost?.latency_ns ?? null,
          pages_migrated: k.cost?.pages_migrated ?? null,
          segments: k.ok ? (k.benefit[0]?.segments ?? null) : null,
          largest_segment_bytes: k.ok ? (k.benefit[0]?.largest_segment_bytes ?? null) : null,
          collateral: d && {
            thp_fallback_rate: d.thp.fallback_rate,
            kernel_failures: d.kernel.atomic_failures + d.kernel.noretry_failures,
            pgscan: d.reclaim.pgscan_kswapd + d.reclaim.pgscan_direct,
            compact_stalls: d.compaction.stalls,
            oom_kills: d.oom_kills,
          },
        };
      }),
    },
  };
}

/** What became of a point: its summary, or the error that ended it. */
export interface PointOutcome {
  summary: PointSummary | null;
  /**
   * `thrown`: the run threw (deterministic: the same point throws again, so a resume keeps it);
   * `crashed`: its worker died (out of memory, …), which a resume runs again.
   */
  error: { kind: 'thrown' | 'crashed'; message: string } | null;
}

/** Run one point's scenario text; a thrown error becomes the outcome's error. */
export function runPoint(text: string, file: string): PointOutcome {
  try {
    return { summary: summarize(runScenario(parseScenario(text, file))), error: null };
  } catch (e) {
    // name: message only: a stack holds paths (src/…ts or dist/…js) that would differ between runs.
    const err = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return { summary: null, error: { kind: 'thrown', message: err } };
  }
}

// ---------------------------------------------------------------------------------------------
// Output files

/** points/NNNNN.json: one finished point. */
export interface PointRecord extends PointSpec, PointOutcome {
  format: typeof POINT_FORMAT;
  /** The sweep's hash: a point of another sweep is never mistaken for one of this. */
  sweep: string;
}

/** manifest.json: what a directory's points belong to; everything sweep.json needs but the points. */
export interface Manifest {
  format: typeof MANIFEST_FORMAT;
  sweep: string;
  name: string;
  description: string;
  scenario: { file: string; name: string };
  grid: GridAxis[];
  seeds: number[];
  points: number;
  /** The shard this directory was last run as (informational: merge uses the point files). */
  shard: Shard | null;
}

/** sweep.json. */
export interface SweepResult {
  format: typeof SWEEP_FORMAT;
  sweep: string;
  name: string;
  description: string;
  scenario: { file: string; name: string };
  grid: GridAxis[];
  seeds: number[];
  /** Points run without an error, and with one. */
  ok: number;
  failed: number;
  points: Array<PointSpec & PointOutcome>;
}

export function manifestOf(s: Sweep, shard: Shard | null): Manifest {
  return {
    format: MANIFEST_FORMAT,
    sweep: s.hash,
    name: s.name,
    description: s.description,
    scenario: { file: s.scenarioRef, name: s.scenario.name },
    grid: s.grid,
    seeds: s.seeds,
    points: s.points.length,
    shard,
  };
}

export const pointFile = (index: number): string => `${String(index).padStart(5, '0')}.json`;

/** Write `text` to `path` so that a reader sees the old file or the new one, never part of one. */
export function writeAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w');
  try {
    writeSync(fd, text);
    // On disk before the rename makes it visible: a power cut cannot leave an empty point.
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

function readJson(path: string): unknown {
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch {
    return undefined;
  }
}

function readManifest(dir: string): Manifest | null {
  const m = readJson(join(dir, 'manifest.json')) as Manifest | undefined;
  return m?.format === MANIFEST_FORMAT ? m : null;
}

/** The point record in `file` if it is a valid point `spec` of sweep `hash`. */
function validPoint(file: string, hash: string, spec: PointSpec): PointRecord | null {
  const r = readJson(file) as PointRecord | undefined;
  if (!r || r.format !== POINT_FORMAT || r.sweep !== hash || r.index !== spec.index || r.key !== spec.key)
    return null;
  if ((r.summary === null) === (r.error === null)) return null;
  return r;
}

const sameManifest = (a: Manifest, b: Manifest): boolean =>
  json({ ...a, shard: null }) === json({ ...b, shard: null });

/** The point file names in `dir`/points; leftover tmp files of a killed run are removed. */
function pointFiles(dir: string): string[] {
  const pdir = join(dir, 'points');
  if (!existsSync(pdir)) return [];
  const out: string[] = [];
  for (const f of readdirSync(pdir)) {
    if (/\.tmp-\d+$/.test(f)) unlinkSync(join(pdir, f));
    else if (/^\d+\.json$/.test(f)) out.push(f);
  }
  return out.sort();
}

// ---------------------------------------------------------------------------------------------
// sweep.json and sweep.csv

function csvCell(v: unknown): string {
  const s = v === null || v === undefined ? '' : typeof v === 'string' ? v : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One CSV row per point as [column, value] pairs, in column order. */
function csvRow(p: PointSpec & PointOutcome, grid: readonly GridAxis[]): Array<[string, unknown]> {
  const row: Array<[string, unknown]> = [
    ['index', p.index],
    ['key', p.key],
    ...grid.map((a): [string, unknown] => [a.path, valueLabel(p.params[a.path])]),
    ['seed', p.seed],
    ['error', p.error ? `${p.error.kind}: ${p.error.message}` : null],
  ];
  const s = p.summary;
  if (!s) return row;
  row.push(
    ['end_ns', s.end_ns],
    ['free_pages', s.final.free_pages],
    ['unusable_index', s.final.unusable_index],
    ['fragmentation_index', s.final.fragmentation_index],
    ['largest_free_block', s.final.largest_free_block],
  );
  s.events.forEach((e, i) => {
    const c = `events[${i}].${e.action}`;
    row.push([`${c}.ok`, e.ok], [`${c}.errno`, e.errno]);
    if (e.action === 'map_contig') row.push([`${c}.latency_ns`, e.latency_ns], [`${c}.segments`, e.segments]);
  });
  for (const k of s.compare?.contenders ?? []) {
    const c = k.name;
    row.push(
      [`${c}.ok`, k.ok],
      [`${c}.errno`, k.errno ?? (k.skipped ? 'skipped' : null)],
      [`${c}.latency_ns`, k.latency_ns],
      [`${c}.pages_migrated`, k.pages_migrated],
      [`${c}.segments`, k.segments],
      [`${c}.largest_segment_bytes`, k.largest_segment_bytes],
      [`${c}.thp_fallback_rate`, k.collateral?.thp_fallback_rate],
      [`${c}.kernel_failures`, k.collateral?.kernel_failures],
      [`${c}.pgscan`, k.collateral?.pgscan],
      [`${c}.compact_stalls`, k.collateral?.compact_stalls],
      [`${c}.oom_kills`, k.collateral?.oom_kills],
    );
  }
  return row;
}

/** The CSV of all points: the header is every column any point has, in first-seen order. */
export function sweepCsv(result: SweepResult): string {
  const rows = result.points.map((p) => new Map(csvRow(p, result.grid)));
  const columns = new Set<string>();
  for (const r of rows) for (const k of r.keys()) columns.add(k);
  const lines = [[...columns].map(csvCell).join(',')];
  for (const r of rows) lines.push([...columns].map((c) => csvCell(r.get(c))).join(','));
  return `${lines.join('\n')}\n`;
}

export interface MergeOutcome {
  result: SweepResult;
  /** The files written. */
  json: string;
  csv: string;
}

/**
 * Join the point files of `dirs` (shards of one sweep, or one whole run) into `out`/sweep.json and
 * `out`/sweep.csv. Refuses directories of different sweeps, a point found twice, and missing points.
 */
export function mergeSweep(dirs: readonly string[], out: string): MergeOutcome {
  if (dirs.length === 0) throw new SweepOutputError('merge: no directories given');
  let manifest: Manifest | null = null;
  let first = '';
  for (const dir of dirs) {
    const m = readManifest(dir);
    if (!m) throw new SweepOutputError(`${dir}: no sweep here (no valid manifest.json)`);
    if (!manifest) {
      manifest = m;
      first = dir;
    } else if (!sameManifest(manifest, m))
      throw new SweepOutputError(
        m.sweep !== manifest.sweep
          ? `${dir} holds sweep '${m.name}' (${m.sweep.slice(0, 12)}) but ${first} holds '${manifest.name}' (${manifest.sweep.slice(0, 12)}): not shards of one sweep (the sweep or scenario file changed?)`
          : `${dir} and ${first} disagree about the sweep's manifest`,
      );
  }
  const mf = manifest as Manifest;
  const specs = expandGrid(mf.grid, mf.seeds);
  const found: Array<{ rec: PointRecord; dir: string } | undefined> = new Array(specs.length);
  for (const dir of dirs) {
    for (const f of pointFiles(dir)) {
      const index = Number(f.slice(0, -5));
      const path = join(dir, 'points', f);
      const spec = specs[index];
      const rec = spec && validPoint(path, mf.sweep, spec);
      if (!rec)
        throw new SweepOutputError(
          `${path}: not a valid point of sweep '${mf.name}'; delete it and run the sweep with --resume`,
        );
      const had = found[index];
      if (had && resolve(had.dir) !== resolve(dir))
        throw new SweepOutputError(
          `point ${index} (${spec.key}) is in both ${had.dir} and ${dir}; give each point's directory once`,
        );
      found[index] = { rec, dir };
    }
  }
  const missing = specs.filter((s) => !found[s.index]);
  if (missing.length) {
    const shown = missing.slice(0, 5).map((s) => `${s.index} (${s.key})`);
    throw new SweepOutputError(
      `${missing.length} of ${specs.length} points of sweep '${mf.name}' are missing: ${shown.join(', ')}${missing.length > 5 ? ', …' : ''}; run them with \`mapcontig sweep SWEEP --resume --out DIR\` (with the shard's --shard I/N)`,
    );
  }
  const points = found.map((f) => {
    const { format: _f, sweep: _s, ...rest } = (f as { rec: PointRecord }).rec;
    return {
      index: rest.index,
      key: rest.key,
      params: rest.params,
      seed: rest.seed,
      summary: rest.summary,
      error: rest.error,
    };
  });
  const failed = points.filter((p) => p.error).length;
  const result: SweepResult = {
    format: SWEEP_FORMAT,
    sweep: mf.sweep,
    name: mf.name,
    description: mf.description,
    scenario: mf.scenario,
    grid: mf.grid,
    seeds: mf.seeds,
    ok: points.length - failed,
    failed,
    points,
  };
  mkdirSync(out, { recursive: true });
  const jsonPath = join(out, 'sweep.json');
  const csvPath = join(out, 'sweep.csv');
  writeAtomic(jsonPath, json(result));
  writeAtomic(csvPath, sweepCsv(result));
  return { result, json: jsonPath, csv: csvPath };
}

// ---------------------------------------------------------------------------------------------
// Running: the worker pool

/** A job for a worker, and its answer. */
export interface WorkerJob {
  index: number;
  text: string;
  file: string;
}
export interface WorkerAnswer extends PointOutcome {
  index: number;
}

// From source (tsx, vitest) the worker is a .ts file, from dist/ a .js one.
const EXT = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

function startWorker(): Worker {
  const url = new URL(`./sweep_worker${EXT}`, import.meta.url);
  if (EXT === '.ts') {
    // Node 20 does not apply the parent's --import loader hooks in worker threads: register tsx
    // in the worker first, then load the entry.
    let tsx: string | null = null;
    try {
      tsx = import.meta.resolve('tsx/esm/api');
    } catch {
      // No tsx: whatever runs this .ts file may run the worker's too.
    }
    if (tsx)
      return new Worker(
        `import(${JSON.stringify(tsx)}).then((t) => { t.register(); return import(${JSON.stringify(url.href)}); });`,
        { eval: true },
      );
  }
  return new Worker(url);
}

export interface SweepRunOptions {
  /** The output directory (made if missing). */
  out: string;
  /** Worker threads (default: os.availableParallelism()). */
  workers?: number;
  /** Keep the valid point files already in `out` and run only the others. */
  resume?: boolean;
  shard?: Shard | null;
  /** Called once the work is known. */
  onStart?: (info: {
    total: number;
    selected: number;
    resumed: number;
    pending: number;
    workers: number;
  }) => void;
  /** Called after each point file is written. */
  onPoint?: (rec: PointRecord) => void;
  /** Aborting stops the workers; the points written stay. */
  signal?: AbortSignal;
}

export interface SweepOutcome {
  /** Points in the sweep, and in this shard. */
  total: number;
  selected: number;
  /** Kept from an earlier run (--resume), run now, and of all the shard's points, failed. */
  resumed: number;
  ran: number;
  failed: number;
  interrupted: boolean;
  /** sweep.json and sweep.csv, when this run was un-sharded and every point is done. */
  merged: MergeOutcome | null;
}

/** Run a sweep's points (those of `shard`), writing each as it finishes; then, if whole, sweep.json. */
export async function runSweep(s: Sweep, opts: SweepRunOptions): Promise<SweepOutcome> {
  const shard = opts.shard ?? null;
  const out = opts.out;
  const pdir = join(out, 'points');
  const manifest = manifestOf(s, shard);
  const old = existsSync(join(out, 'manifest.json')) ? readManifest(out) : null;
  if (existsSync(join(out, 'manifest.json')) || pointFiles(out).length) {
    if (!opts.resume)
      throw new SweepOutputError(
        `${out} already holds sweep results; pass --resume to continue that sweep, or choose another --out`,
      );
    if (!old)
      throw new SweepOutputError(`${out}: manifest.json is unreadable; this is not a sweep's directory`);
    if (!sameManifest(old, manifest))
      throw new SweepOutputError(
        `${out} holds ${old.sweep === manifest.sweep ? 'a different manifest of this sweep' : `sweep '${old.name}' (${old.sweep.slice(0, 12)}), not '${s.name}' (${s.hash.slice(0, 12)}): the sweep or scenario file changed since`}; choose another --out`,
      );
  }
  mkdirSync(pdir, { recursive: true });
  writeAtomic(join(out, 'manifest.json'), json(manifest));

  const selected = s.points.filter((p) => inShard(p.index, shard));
  const pending: SweepPoint[] = [];
  let resumed = 0;
  let failed = 0;
  for (const p of selected) {
    const rec = opts.resume ? validPoint(join(pdir, pointFile(p.index)), s.hash, p) : null;
    // A crashed worker is no property of the point: run it again.
    if (rec && rec.error?.kind !== 'crashed') {
      resumed++;
      if (rec.error) failed++;
    } else pending.push(p);
  }
  const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), pending.length));
  opts.onStart?.({
    total: s.points.length,
    selected: selected.length,
    resumed,
    pending: pending.length,
    workers,
  });

  let ran = 0;
  const record = (p: SweepPoint, o: PointOutcome): void => {
    const rec: PointRecord = {
      format: POINT_FORMAT,
      sweep: s.hash,
      index: p.index,
      key: p.key,
      params: p.params,
      seed: p.seed,
      summary: o.summary,
      error: o.error,
    };
    writeAtomic(join(pdir, pointFile(p.index)), json(rec));
    ran++;
    if (rec.error) failed++;
    opts.onPoint?.(rec);
  };
  const interrupted =
    pending.length > 0 && (await runPool(pending, workers, s.scenarioFile, record, opts.signal));
  const complete = !interrupted && shard === null;
  return {
    total: s.points.length,
    selected: selected.length,
    resumed,
    ran,
    failed,
    interrupted,
    merged: complete ? mergeSweep([out], out) : null,
  };
}

/** Run `pending` on `n` workers; true when stopped by `signal`. */
function runPool(
  pending: readonly SweepPoint[],
  n: number,
  file: string,
  record: (p: SweepPoint, o: PointOutcome) => void,
  signal: AbortSignal | undefined,
): Promise<boolean> {
  return new Promise((resolveRun, rejectRun) => {
    let next = 0;
    let live = 0;
    let stopped = false;
    const busy = new Map<Worker, SweepPoint>();
    const all = new Set<Worker>();

    const finish = (interrupted: boolean, error?: unknown): void => {
      if (stopped) return;
      stopped = true;
      signal?.removeEventListener('abort', onAbort);
      // terminate() ends a running point mid-way; nothing of it was written.
      Promise.all([...all].map((w) => w.terminate())).then(
        () => (error ? rejectRun(error) : resolveRun(interrupted)),
        rejectRun,
      );
    };
    const onAbort = (): void => finish(true);
    if (signal?.aborted) return resolveRun(true);
    signal?.addEventListener('abort', onAbort);

    const feed = (w: Worker): void => {
      if (stopped) return;
      if (next >= pending.length) {
        busy.delete(w);
        all.delete(w);
        void w.terminate();
        if (--live === 0) finish(false);
        return;
      }
      const p = pending[next++];
      busy.set(w, p);
      w.postMessage({ index: p.index, text: p.text, file } satisfies WorkerJob);
    };
    const spawn = (): void => {
      const w = startWorker();
      all.add(w);
      live++;
      w.on('message', (a: WorkerAnswer) => {
        const p = busy.get(w);
        if (stopped || !p || p.index !== a.index) return;
        busy.delete(w);
        try {
          record(p, a);
        } catch (e) {
          finish(false, e); // cannot write: stop, the points written so far stay
          return;
        }
        feed(w);
      });
      const died = (why: string): void => {
        if (stopped || !all.has(w)) return;
        all.delete(w);
        live--;
        const p = busy.get(w);
        busy.delete(w);
        if (p) {
          try {
            record(p, { summary: null, error: { kind: 'crashed', message: why } });
          } catch (e) {
            finish(false, e);
            return;
          }
        }
        // A replacement takes the rest of the queue.
        if (next < pending.length) spawn();
        else if (live === 0) finish(false);
      };
      w.on('error', (e) => died(`worker died: ${e.name}: ${e.message}`));
      w.on('exit', (code) => died(`worker exited with code ${code}`));
      w.once('online', () => feed(w));
    };
    for (let i = 0; i < n; i++) spawn();
  });
}

/** The sweep's name for output paths: `sweep-<name>`, and `…-shard-I-of-N` for a shard. */
export function defaultOut(s: Sweep, shard: Shard | null): string {
  return `sweep-${s.name}${shard ? `-shard-${shard.index}-of-${shard.count}` : ''}`;
}
