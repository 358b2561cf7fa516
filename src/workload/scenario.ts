/**
 * Scenario files (docs/scenarios.md): one YAML file describes a machine, what runs on it and for
 * how long, what happens at given times, what to sample, and which ways of getting a contiguous
 * buffer to compare at the end. parseScenario() validates the whole file and turns sizes and
 * durations into bytes and nanoseconds; a bad file gets ONE message naming the file, line,
 * column and field, e.g.
 *
 *   scenarios/x.yaml:12:15: phases[1].duration: 'forever' is not a duration (expected e.g. 500ms, 1.5s, 24h)
 *
 * The `machine:` section is the machine configuration of src/sim/config.ts, validated by its
 * schema and by parseMachineConfig(), so the two can never disagree.
 */
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import YAML, { isMap, isPair, isScalar, isSeq, LineCounter, type Node, type Pair } from 'yaml';
import { z } from 'zod';
import { contenders } from '../contig/compare.ts';
import { DEVICE_PROFILES } from '../contig/device_profiles.ts';
import { MAP_CONTIG_POLICIES } from '../contig/map_contig.ts';
import {
  node_stat_names,
  numa_stat_names,
  vm_event_names,
  vm_stat_names,
  zone_stat_names,
} from '../mm/vmstat_items.ts';
import { type MachineConfigInput, machineConfigSchema, parseMachineConfig } from '../sim/config.ts';
import * as uapi from '../vm/uapi.ts';
import { duration, shown, size } from './units.ts';

// ---------------------------------------------------------------------------------------------
// Registries: names a scenario may use. Lists, so the modules that implement them can add theirs.

/** Workload models a phase may run; each model validates its own `params` when it is built. */
export const WORKLOAD_MODELS: string[] = [
  'anon-churn',
  'page-cache',
  'slab-churn',
  'net-buffers',
  'page-tables',
  'longterm-pin',
  'fork-server',
  'stress-highalloc',
  'trace-replay',
];

/** Derived metrics `sample.metrics` may name; the runner computes them from the machine state. */
export const DERIVED_METRICS: string[] = [
  'largest_free_block',
  'free_by_order',
  'unusable_index',
  'fragmentation_index',
  'pageblocks_by_type',
  'mixed_pageblocks',
  'hugepages_1g_possible',
];

/**
 * Each model's parameter check (it throws an error with `param` and `reason`, as the models'
 * WorkloadParamError does): run on every phase's workloads when a scenario is parsed.
 */
const PARAM_CHECKS = new Map<string, (params: Record<string, unknown>) => unknown>();

/**
 * Each model's params that name files: resolved against the scenario's directory. trace-replay's
 * is known here, like its name, so a scenario parsed without the models loaded still resolves it.
 */
const FILE_PARAMS = new Map<string, readonly string[]>([['trace-replay', ['file']]]);

/**
 * Add a workload model name (idempotent), with the check of its `params` if it has one. `files`
 * names params that are file paths: a scenario resolves a relative one against its own
 * directory and reports a file it cannot read at that param's line, before the check runs.
 */
export function registerWorkloadModel(
  name: string,
  check?: (params: Record<string, unknown>) => unknown,
  opts: { files?: readonly string[] } = {},
): void {
  if (!WORKLOAD_MODELS.includes(name)) WORKLOAD_MODELS.push(name);
  if (check) PARAM_CHECKS.set(name, check);
  if (opts.files?.length) FILE_PARAMS.set(name, opts.files);
}

/** Add a derived metric name (idempotent). */
export function registerMetric(name: string): void {
  if (!DERIVED_METRICS.includes(name)) DERIVED_METRICS.push(name);
}

/** Every /proc/vmstat item a sample may name. */
const VMSTAT_NAMES: readonly string[] = [
  ...zone_stat_names,
  ...numa_stat_names,
  ...node_stat_names,
  ...vm_stat_names,
  ...vm_event_names,
];

/** Capability names (CAP_IPC_LOCK, …) to their numbers, from the uapi constants. */
const CAPS: Readonly<Record<string, number>> = Object.fromEntries(
  Object.entries(uapi).filter(([k, v]) => k.startsWith('CAP_') && typeof v === 'number') as [
    string,
    number,
  ][],
);

// ---------------------------------------------------------------------------------------------
// Leaf types: sizes and durations as strings, converted; messages say what was expected.

const id = z
  .number()
  .int()
  .min(0)
  .max(2 ** 32 - 2);
const name = z.string().regex(/^[A-Za-z0-9_.-]+$/, 'is not one word (letters, digits, - _ .)');
/** A sysctl or sysfs file: the only files a scenario may write. */
const writablePath = z
  .string()
  .refine((p) => /^\/(sys|proc\/sys)\/[^\s]+$/.test(p), 'is not a file under /sys/ or /proc/sys/');
const value = z.union([z.string(), z.number()]).transform(String);

// ---------------------------------------------------------------------------------------------
// The schema

const workload = z
  .object({
    /** A name in WORKLOAD_MODELS (checked after the schema: the list can grow at run time). */
    model: z.string(),
    /** The model's parameters; the model validates them. */
    params: z.record(z.string(), z.unknown()).default({}),
  })
  .strict();

const phase = z.object({ name, duration, workloads: z.array(workload).default([]) }).strict();

const mapContigEvent = z
  .object({
    at: duration,
    action: z.literal('map_contig'),
    bytes: size,
    uid: id.default(1000),
    gid: id.optional(),
    /** The machine's MAP_CONTIG policy for this request (default: the machine's). */
    policy: z.enum(['linux', ...MAP_CONTIG_POLICIES]).optional(),
    /** MAP_CONTIG_BEST_EFFORT: take the fewest, largest runs to be had. */
    best_effort: z.boolean().default(false),
  })
  .strict();

const events = z.discriminatedUnion('action', [
  mapContigEvent,
  z.object({ at: duration, action: z.literal('write'), path: writablePath, value }).strict(),
  z.object({ at: duration, action: z.literal('compact_memory') }).strict(),
  z
    .object({
      at: duration,
      action: z.literal('nr_hugepages'),
      count: z.number().int().min(0),
      /** The huge page size whose pool is resized: 2M or 1G. */
      size: size.default(2 ** 21),
    })
    .strict(),
  z
    .object({
      at: duration,
      action: z.literal('spawn'),
      name,
      uid: id.default(1000),
      gid: id.optional(),
      caps: z.array(z.enum(Object.keys(CAPS) as [string, ...string[]])).default([]),
      /** RLIMIT_MEMLOCK in bytes, or 'unlimited' (the default, as LimitMEMLOCK=infinity). */
      memlock: z.union([z.literal('unlimited'), size]).default('unlimited'),
    })
    .strict(),
  z.object({ at: duration, action: z.literal('exit'), name }).strict(),
  z
    .object({
      at: duration,
      action: z.literal('open_device'),
      path: z.string().regex(/^\/dev\/\S+$/, 'is not a device node under /dev/'),
      uid: id,
      gid: id.optional(),
    })
    .strict(),
]);

const sample = z
  .object({
    every: duration,
    files: z
      .array(z.string().regex(/^\/(proc|sys)\/\S+$/, 'is not a file under /proc/ or /sys/'))
      .default([]),
    counters: z.array(z.enum(VMSTAT_NAMES as [string, ...string[]])).default([]),
    /** Names in DERIVED_METRICS (checked after the schema). */
    metrics: z.array(z.string()).default([]),
  })
  .strict();

const compare = z
  .object({
    /** When the request is made; the end of the last phase by default. */
    at: duration.optional(),
    request: z
      .object({
        bytes: size,
        uid: id.default(1000),
        gid: id.optional(),
        /** Device profiles the buffer is for (DEVICE_PROFILES); the RDMA NIC by default. */
        devices: z.array(z.string()).default(['rdma-nic']),
      })
      .strict(),
    /** Contender names (src/contig/compare.ts). */
    policies: z.array(z.string()).min(1),
  })
  .strict();

const scenarioSchema = z
  .object({
    name,
    description: z.string().default(''),
    /** Seeds the workloads, and the machine too unless machine.seed is given. */
    seed: z.number().int().min(0).default(1),
    machine: machineConfigSchema,
    /** Writes made right after boot, in file order: path → value. */
    sysfs: z.record(writablePath, value).default({}),
    phases: z.array(phase).min(1),
    events: z.array(events).default([]),
    sample: sample.optional(),
    compare: compare.optional(),
  })
  .strict();

type Parsed = z.output<typeof scenarioSchema>;

/** A validated scenario: sizes in bytes, durations in ns, the machine as written (plus seed). */
export type Scenario = Omit<Parsed, 'machine'> & { machine: MachineConfigInput };
export type ScenarioPhase = Parsed['phases'][number];
export type ScenarioEvent = Parsed['events'][number];
export type ScenarioSample = NonNullable<Parsed['sample']>;
export type ScenarioCompare = NonNullable<Parsed['compare']>;

/** Capability numbers for a spawn event's `caps`. */
export function capNumbers(caps: readonly string[]): number[] {
  return caps.map((c) => CAPS[c]);
}

// ---------------------------------------------------------------------------------------------
// Errors

/** A bad scenario file: `message` is the one line to show; the parts are kept for programs. */
export class ScenarioError extends Error {
  constructor(
    readonly file: string,
    readonly line: number,
    readonly col: number,
    readonly field: string,
    readonly reason: string,
  ) {
    super(`${file}:${line}:${col}: ${field ? `${field}: ` : ''}${reason}`);
    this.name = 'ScenarioError';
  }
}

type Path = readonly PropertyKey[];

/** `phases[1].duration` */
function fieldPath(path: Path): string {
  let s = '';
  for (const p of path) {
    const k = String(p);
    if (typeof p === 'number') s += `[${p}]`;
    else if (!/^[A-Za-z_][\w-]*$/.test(k))
      s += `['${k}']`; // a path as a key: sysfs['/sys/…']
    else s += s ? `.${k}` : k;
  }
  return s || '(top level)';
}

function levenshtein(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0];
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const t = prev[j];
      prev[j] = Math.min(prev[j] + 1, prev[j - 1] + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = t;
    }
  }
  return prev[b.length];
}

/** The closest known name when it is close enough to be a typo. */
export function closest(word: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(word.length / 3)) + 1;
  for (const k of known) {
    const d = levenshtein(word.toLowerCase(), k.toLowerCase());
    if (d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

/** "'x' is not … (did you mean 'y'?)" or "(known: a, b, c)". */
function unknownName(what: string, word: unknown, known: readonly string[]): string {
  const hint = typeof word === 'string' ? closest(word, known) : undefined;
  const rest =
    known.length === 0
      ? 'none known'
      : known.length > 15
        ? `not one of the ${known.length} known names`
        : `known: ${known.join(', ')}`;
  return `unknown ${what} ${shown(word)} (${hint ? `did you mean '${hint}'?` : rest})`;
}

/** The keys an object schema accepts at `path` of the input (for "did you mean"). */
function keysAt(schema: z.ZodType, path: Path, data: unknown): string[] {
  let s: z.ZodType = schema;
  let d: unknown = data;
  const unwrap = () => {
    for (;;) {
      const def = s._zod.def as { type: string; innerType?: z.ZodType; in?: z.ZodType };
      if ((def.type === 'optional' || def.type === 'default' || def.type === 'nullable') && def.innerType)
        s = def.innerType;
      else if (def.type === 'pipe' && def.in) s = def.in;
      else if (def.type === 'union' && 'discriminator' in def) {
        // The option whose discriminator matches the data.
        const options = (def as unknown as { options: z.ZodObject[]; discriminator: string }).options;
        const key = (def as unknown as { discriminator: string }).discriminator;
        const tag = (d as Record<string, unknown> | undefined)?.[key];
        const hit = options.find((o) =>
          (o.shape[key] as z.ZodLiteral)._zod.def.values.includes(tag as never),
        );
        if (!hit) return;
        s = hit;
      } else return;
    }
  };
  for (const p of path) {
    unwrap();
    const def = s._zod.def as { type: string; element?: z.ZodType; valueType?: z.ZodType };
    if (def.type === 'object') s = (s as z.ZodObject).shape[String(p)] as z.ZodType;
    else if (def.type === 'array' && def.element) s = def.element;
    else if (def.type === 'record' && def.valueType) s = def.valueType;
    else return [];
    if (!s) return [];
    d = (d as Record<PropertyKey, unknown> | undefined)?.[p as never];
  }
  unwrap();
  return s._zod.def.type === 'object' ? Object.keys((s as z.ZodObject).shape) : [];
}

const TYPE_NAMES: Record<string, string> = {
  object: 'a mapping',
  array: 'a list',
  string: 'a string',
  number: 'a number',
  int: 'a whole number',
  boolean: 'true or false',
};

/** What an enum's values are called in messages, by the field's name. */
const VALUE_NAMES: Record<string, string> = {
  counters: 'vmstat counter',
  caps: 'capability',
  policy: 'policy',
  thp: 'THP mode',
  fallback: 'fallback',
  map_contig: 'MAP_CONTIG policy',
  deferred_init: 'deferred_init mode',
};

/** One zod issue as the words after the field path; `atKey` when the key itself is at fault. */
function describe(issue: z.core.$ZodIssue, data: unknown): { reason: string; path: Path; atKey: boolean } {
  const got = issue.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k as never], data);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const key = issue.keys[0];
      return {
        reason: unknownName('key', key, keysAt(scenarioSchema, issue.path, data)),
        path: [...issue.path, key],
        atKey: true,
      };
    }
    case 'invalid_type':
      if (got === undefined) return { reason: 'is required', path: issue.path, atKey: false };
      return {
        reason: `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${shown(got)}`,
        path: issue.path,
        atKey: false,
      };
    case 'invalid_value':
      return {
        reason: unknownName(
          VALUE_NAMES[String([...issue.path].reverse().find((p) => typeof p !== 'number'))] ?? 'value',
          got,
          issue.values.map(String),
        ),
        path: issue.path,
        atKey: false,
      };
    case 'invalid_union': {
      if ('discriminator' in issue && issue.discriminator) {
        const options = (issue as unknown as { options: unknown[] }).options.map(String);
        if (got === undefined)
          return { reason: `is required (one of: ${options.join(', ')})`, path: issue.path, atKey: false };
        return { reason: unknownName(issue.discriminator, got, options), path: issue.path, atKey: false };
      }
      // A plain union (string or number, …): name what each branch expected.
      const wanted = issue.errors
        .map((branch) => branch[0])
        .map((i) => (i?.code === 'invalid_type' ? (TYPE_NAMES[i.expected] ?? i.expected) : undefined))
        .filter((w): w is string => w !== undefined);
      const want = wanted.length ? [...new Set(wanted)].join(' or ') : 'another kind of value';
      return { reason: `expected ${want}, got ${shown(got)}`, path: issue.path, atKey: false };
    }
    case 'too_small':
      return {
        reason:
          issue.origin === 'array'
            ? `needs at least ${issue.minimum} ${issue.minimum === 1 ? 'entry' : 'entries'}`
            : `must be at least ${issue.minimum}, got ${shown(got)}`,
        path: issue.path,
        atKey: false,
      };
    case 'too_big':
      return {
        reason: `must be at most ${issue.maximum}, got ${shown(got)}`,
        path: issue.path,
        atKey: false,
      };
    case 'invalid_key': {
      // A record's key: the subject is the key, not its value.
      const key = issue.path.at(-1);
      return {
        reason: `${shown(key)} ${issue.issues[0]?.message ?? issue.message}`,
        path: issue.path,
        atKey: true,
      };
    }
    default:
      // Refinements say "is not …" about the value; transforms write whole sentences.
      return {
        reason:
          /^(is|must) /.test(issue.message) && got !== undefined
            ? `${shown(got)} ${issue.message}`
            : issue.message,
        path: issue.path,
        atKey: false,
      };
  }
}

/** Where `path` is in the document: the value's node, or the key's, or the nearest existing parent. */
export function locate(doc: YAML.Document, path: Path, atKey: boolean): number {
  let node: Node | null = doc.contents;
  let pos = node?.range?.[0] ?? 0;
  for (let i = 0; i < path.length && node; i++) {
    const seg = path[i];
    if (isMap(node)) {
      const pair = node.items.find((p: Pair) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (!pair) return pos;
      const keyPos = (pair.key as Node).range?.[0] ?? pos;
      const value = pair.value as Node | null;
      if (i === path.length - 1 && atKey) return keyPos;
      // An empty value (`duration:`) has no range worth pointing at: point at the key.
      pos = value?.range && !(isScalar(value) && value.value === null) ? value.range[0] : keyPos;
      node = value;
    } else if (isSeq(node)) {
      const item = node.items[Number(seg)] as Node | undefined;
      if (!item || isPair(item)) return pos;
      pos = item.range?.[0] ?? pos;
      node = item;
    } else return pos;
  }
  return pos;
}

// ---------------------------------------------------------------------------------------------
// Checks across fields, after the schema

interface Issue {
  path: Path;
  reason: string;
  atKey?: boolean;
}

/**
 * Resolve the file params of `w` (FILE_PARAMS) against `base` in place; the first one that is
 * not a readable file is an issue at its value.
 */
function resolveFiles(
  w: { model: string; params: Record<string, unknown> },
  base: string,
  at: Path,
): Issue | undefined {
  for (const key of FILE_PARAMS.get(w.model) ?? []) {
    const v = w.params[key];
    // Not a string: the model's own check says what is wrong with it.
    if (typeof v !== 'string' || v === '') continue;
    const path = isAbsolute(v) ? v : resolve(base, v);
    let why: string | undefined;
    try {
      if (!statSync(path).isFile()) why = 'is not a file';
      else accessSync(path, constants.R_OK);
    } catch (e) {
      why = `cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`;
    }
    if (why)
      return {
        path: [...at, 'params', key],
        reason: `'${v}' ${why}${isAbsolute(v) ? '' : `; relative paths are from the scenario's directory: ${path}`}`,
      };
    w.params = { ...w.params, [key]: path };
  }
  return undefined;
}

function crossChecks(
  s: Parsed,
  raw: Record<string, unknown>,
  policies: readonly string[],
  base: string,
): Issue[] {
  const out: Issue[] = [];
  // The machine's checks outside its schema (memory ≥ 64M, one CPU per node, …) answer with
  // "invalid machine configuration:\n  <field>[, <field>]: <why>": point at that field.
  try {
    parseMachineConfig(raw.machine as MachineConfigInput);
  } catch (e) {
    const m = /^\s+([\w.]+)(?:, [\w.]+)*: (.*)$/m.exec((e as Error).message);
    out.push({ path: ['machine', ...(m ? m[1].split('.') : [])], reason: m ? m[2] : (e as Error).message });
  }
  const phaseNames = new Set<string>();
  let total = 0;
  s.phases.forEach((p, i) => {
    if (phaseNames.has(p.name))
      out.push({ path: ['phases', i, 'name'], reason: `'${p.name}' names an earlier phase too` });
    phaseNames.add(p.name);
    if (p.duration <= 0) out.push({ path: ['phases', i, 'duration'], reason: 'must be longer than 0' });
    total += p.duration;
    p.workloads.forEach((w, j) => {
      if (!WORKLOAD_MODELS.includes(w.model))
        out.push({
          path: ['phases', i, 'workloads', j, 'model'],
          reason: unknownName('model', w.model, WORKLOAD_MODELS),
        });
      else {
        const missing = resolveFiles(w, base, ['phases', i, 'workloads', j]);
        if (missing) {
          out.push(missing);
          return;
        }
        try {
          PARAM_CHECKS.get(w.model)?.(w.params);
        } catch (e) {
          const { param, reason } = e as { param?: string; reason?: string };
          if (param === undefined || reason === undefined) throw e;
          const known = Object.hasOwn(w.params, param);
          out.push({
            path: ['phases', i, 'workloads', j, known ? 'params' : 'model', ...(known ? [param] : [])],
            reason: known ? reason : `params.${param}: ${reason}`,
            atKey: reason.startsWith('unknown parameter'),
          });
        }
      }
    });
  });
  const rawEvents = (raw.events ?? []) as Array<Record<string, unknown>>;
  let last = 0;
  const live = new Set<string>();
  s.events.forEach((ev, i) => {
    const at = ['events', i, 'at'];
    if (ev.at < last)
      out.push({
        path: at,
        reason: `'${rawEvents[i].at}' is earlier than the event before it; list events in time order`,
      });
    else if (ev.at > total)
      out.push({ path: at, reason: `'${rawEvents[i].at}' is after the phases end (${fmt(total)})` });
    last = Math.max(last, ev.at);
    if (ev.action === 'nr_hugepages' && ev.size !== 2 ** 21 && ev.size !== 2 ** 30)
      out.push({
        path: ['events', i, 'size'],
        reason: `'${rawEvents[i].size}' is not a huge page size (2M or 1G)`,
      });
    if (ev.action === 'spawn') {
      if (live.has(ev.name))
        out.push({ path: ['events', i, 'name'], reason: `'${ev.name}' is already running` });
      live.add(ev.name);
    }
    if (ev.action === 'exit') {
      if (!live.has(ev.name))
        out.push({
          path: ['events', i, 'name'],
          reason: `no process '${ev.name}' is running (spawn it in an earlier event)`,
        });
      live.delete(ev.name);
    }
  });
  if (s.sample) {
    if (s.sample.every <= 0) out.push({ path: ['sample', 'every'], reason: 'must be longer than 0' });
    s.sample.metrics.forEach((m, i) => {
      if (!DERIVED_METRICS.includes(m))
        out.push({ path: ['sample', 'metrics', i], reason: unknownName('metric', m, DERIVED_METRICS) });
    });
  }
  if (s.compare) {
    const c = s.compare;
    if (c.at !== undefined && c.at > total)
      out.push({
        path: ['compare', 'at'],
        reason: `'${(raw.compare as { at: unknown }).at}' is after the phases end (${fmt(total)})`,
      });
    if (c.request.bytes <= 0)
      out.push({ path: ['compare', 'request', 'bytes'], reason: 'must be more than 0' });
    c.request.devices.forEach((d, i) => {
      if (!Object.hasOwn(DEVICE_PROFILES, d))
        out.push({
          path: ['compare', 'request', 'devices', i],
          reason: unknownName('device profile', d, Object.keys(DEVICE_PROFILES)),
        });
    });
    c.policies.forEach((p, i) => {
      if (!policies.includes(p))
        out.push({ path: ['compare', 'policies', i], reason: unknownName('policy', p, policies) });
    });
  }
  s.events.forEach((ev, i) => {
    if (ev.action === 'map_contig' && ev.bytes <= 0)
      out.push({ path: ['events', i, 'bytes'], reason: 'must be more than 0' });
  });
  return out;
}

const fmt = (ns: number): string => {
  for (const [u, n] of [
    ['d', 86400e9],
    ['h', 3600e9],
    ['min', 60e9],
    ['s', 1e9],
    ['ms', 1e6],
  ] as const)
    if (ns >= n) return `${+(ns / n).toFixed(3)}${u}`;
  return `${ns}ns`;
};

// ---------------------------------------------------------------------------------------------
// Entry points

export interface ScenarioOptions {
  /** Contender names `compare.policies` may use (default: those registered in contig/compare.ts). */
  policies?: readonly string[];
  /** The directory relative file params (a trace's `file`) are read from; default: `file`'s. */
  base_dir?: string;
}

/** Validate a scenario's text; `file` is only used in messages. Throws one ScenarioError. */
export function parseScenario(text: string, file: string, opts: ScenarioOptions = {}): Scenario {
  const lc = new LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  const fail = (pos: number, field: string, reason: string): never => {
    const { line, col } = lc.linePos(pos);
    throw new ScenarioError(file, line, col, field, reason);
  };
  if (doc.errors.length) {
    const e = doc.errors[0];
    fail(e.pos[0], '', `YAML syntax: ${e.message.split('\n')[0]}`);
  }
  const data: unknown = doc.toJS();
  if (data === null || data === undefined)
    fail(0, '', 'the file is empty (a scenario needs at least name, machine and phases)');
  if (typeof data !== 'object' || Array.isArray(data))
    fail(doc.contents?.range?.[0] ?? 0, '(top level)', `expected a mapping, got ${shown(data)}`);

  // Report the problem that comes first in the file, whichever part of the schema found it.
  const report = (issues: Issue[]): never => {
    let best = issues[0];
    let bestPos = Number.POSITIVE_INFINITY;
    for (const i of issues) {
      const pos = locate(doc, i.path, i.atKey ?? false);
      if (pos < bestPos) {
        best = i;
        bestPos = pos;
      }
    }
    return fail(bestPos, fieldPath(best.path), best.reason);
  };

  const result = scenarioSchema.safeParse(data);
  if (!result.success) report(result.error.issues.map((i) => describe(i, data)));
  const parsed = (result as { data: Parsed }).data;
  const raw = data as Record<string, unknown>;
  const problems = crossChecks(
    parsed,
    raw,
    opts.policies ?? contenders().map((c) => c.name),
    opts.base_dir ?? dirname(file),
  );
  if (problems.length) report(problems);

  // The machine as written, so it can be booted (Machine.boot applies the defaults itself).
  const machine = { ...(raw.machine as MachineConfigInput) };
  if (machine.seed === undefined) machine.seed = parsed.seed;
  return { ...parsed, machine };
}

/** Read and validate a scenario file. */
export function loadScenario(path: string, opts: ScenarioOptions = {}): Scenario {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(
      path,
      1,
      1,
      '',
      `cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return parseScenario(text, path, opts);
}
