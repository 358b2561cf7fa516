/**
 * Derive fidelity/qemu/tolerance.json, the per-shape tolerances of test/fidelity/qemu.test.ts,
 * from repeated guest runs (docs/fidelity-qemu.md, "Tolerance").
 *
 *   npx tsx fidelity/qemu/calibrate.ts            predict every calibration run, write tolerance.json
 *   npx tsx fidelity/qemu/calibrate.ts --dry-run  the same, printing instead of writing
 *   npx tsx fidelity/qemu/calibrate.ts --add DIR  first copy the runs of a run-batch.mjs --out DIR
 *                                                 (snapshot/ + result.json) into calibration/;
 *                                                 may be given more than once
 *
 * Runs with a snapshot (samples/<shape>/, calibration/<shape>-<n>/) give the model's error,
 * predicted − delivered. Runs of the same protocol with or without a snapshot (those, plus the
 * current-protocol rows of measured/*.jsonl, which include the samples) give the kernel's own
 * spread from boot to boot. For each shape and each number (before / after compact_memory):
 *
 *   tolerance = ceil(max |predicted − delivered| over the runs with a snapshot
 *                    + 2 × sd of delivered over all the runs), at least MIN_TOLERANCE.
 */
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const SHAPES = ['anon-holes', 'page-cache', 'unmovable', 'mixed'];
/** The protocol of the current `init` in measured/*.jsonl (the others are not comparable). */
const PROTOCOL = 'v2: two writes before and after compact_memory (current init)';
const MIN_TOLERANCE = 5;
const SD_FACTOR = 2;
/**
 * Not asserted, for comparison: what the kernel's own spread allows a model that predicts its
 * typical value (3 sd). A tolerance far above it means the model's error, not the kernel, sets it.
 */
const KERNEL_ONLY_SD_FACTOR = 3;

interface Result {
  shape: string;
  memory_mib: number;
  accel: string;
  cpus: number;
  seed: number;
  kernel_release: string;
  protocol?: string;
  run?: string;
  hugepages: { asked: number; delivered_before_compaction: number; delivered_after_compaction: number };
}

const args = process.argv.slice(2);
const dryRun = args.includes('--dry-run');
const addFrom = args.flatMap((a, i) => (a === '--add' ? [args[i + 1]] : []));
const readJson = (f: string) => JSON.parse(readFileSync(f, 'utf8'));
const calDir = join(here, 'calibration');

/** The comparable set: 1 GiB, TCG, 1 vCPU, seed 0, Debian 12's kernel. */
const comparable = (r: Result) => r.memory_mib === 1024 && r.accel === 'tcg' && r.cpus === 1 && r.seed === 0;

// A boot's result.json (timings included) is unique, so a run added twice is recognised.
const known = new Set(
  (existsSync(calDir) ? readdirSync(calDir) : [])
    .map((d) => join(calDir, d, 'result.json'))
    .filter((f) => existsSync(f))
    .map((f) => readFileSync(f, 'utf8')),
);
for (const from of addFrom) {
  if (!from || !existsSync(from)) throw new Error('--add takes a run-batch.mjs output directory');
  mkdirSync(calDir, { recursive: true });
  for (const d of readdirSync(from).sort()) {
    const src = join(from, d);
    if (!existsSync(join(src, 'result.json')) || !existsSync(join(src, 'snapshot'))) continue;
    const r = readJson(join(src, 'result.json')) as Result;
    if (!comparable(r)) {
      console.log(`calibrate: ${src} is not 1 GiB / TCG / 1 vCPU / seed 0; not added`);
      continue;
    }
    const text = readFileSync(join(src, 'result.json'), 'utf8');
    if (known.has(text)) {
      console.log(`calibrate: ${src} is in calibration/ already`);
      continue;
    }
    known.add(text);
    let n = 1;
    while (existsSync(join(calDir, `${r.shape}-${n}`))) n++;
    const dst = join(calDir, `${r.shape}-${n}`);
    cpSync(join(src, 'snapshot'), join(dst, 'snapshot'), { recursive: true });
    cpSync(join(src, 'result.json'), join(dst, 'result.json'));
    console.log(`calibrate: added ${relative(here, dst)} from ${src}`);
  }
}

let predictHugepages: typeof import('../../src/snapshot/predict.ts').predictHugepages;
let readSnapshot: typeof import('../../src/snapshot/read.ts').readSnapshot;
try {
  ({ predictHugepages } = await import('../../src/snapshot/predict.ts'));
  ({ readSnapshot } = await import('../../src/snapshot/read.ts'));
} catch (e) {
  console.error(`calibrate: cannot load the predictor (src/snapshot/predict.ts): ${(e as Error).message}`);
  process.exit(1);
}

// Runs with a snapshot.
const snapRuns = [
  ...SHAPES.map((s) => join(here, 'samples', s)),
  ...(existsSync(calDir) ? readdirSync(calDir).sort() : []).map((d) => join(calDir, d)),
].filter((d) => existsSync(join(d, 'result.json')) && existsSync(join(d, 'snapshot')));

interface Row {
  run: string;
  shape: string;
  asked: number;
  delivered: { now: number; after_compaction: number };
  predicted: { now: number; after_compaction: number };
  predict_ms: number;
}
const rows: Row[] = [];
for (const dir of snapRuns) {
  const r = readJson(join(dir, 'result.json')) as Result;
  if (!comparable(r)) continue;
  const snap = await readSnapshot(join(dir, 'snapshot'));
  const t0 = performance.now();
  const p = predictHugepages(snap, { count: r.hugepages.asked });
  const predict_ms = Math.round(performance.now() - t0);
  rows.push({
    run: relative(here, dir),
    shape: r.shape,
    asked: r.hugepages.asked,
    delivered: {
      now: r.hugepages.delivered_before_compaction,
      after_compaction: r.hugepages.delivered_after_compaction,
    },
    predicted: { now: p.now, after_compaction: p.after_compaction },
    predict_ms,
  });
  console.log(
    `calibrate: ${relative(here, dir)}: predicted ${p.now} / ${p.after_compaction}, delivered ${r.hugepages.delivered_before_compaction} / ${r.hugepages.delivered_after_compaction} (before / after compact_memory), ${predict_ms} ms`,
  );
}

// The kernel's spread: every comparable run of the current protocol, each boot once. The samples
// are rows of measured/*.jsonl already (run 1 of each shape), so only calibration/ is added.
const spread: Result[] = [];
for (const f of readdirSync(join(here, 'measured'))
  .filter((f) => f.endsWith('.jsonl'))
  .sort())
  for (const line of readFileSync(join(here, 'measured', f), 'utf8').split('\n'))
    if (line.trim()) {
      const r = JSON.parse(line) as Result;
      if (r.protocol === PROTOCOL && comparable(r)) spread.push(r);
    }
for (const row of rows.filter((r) => r.run.startsWith('calibration/')))
  spread.push(readJson(join(here, row.run, 'result.json')) as Result);

function sd(xs: number[]): number {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  return xs.length > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (xs.length - 1)) : 0;
}
const round1 = (x: number) => Math.round(x * 10) / 10;

const shapes: Record<string, unknown> = {};
for (const shape of SHAPES) {
  const mine = rows.filter((r) => r.shape === shape);
  const boots = spread.filter((r) => r.shape === shape);
  if (mine.length === 0 || boots.length < 2) throw new Error(`calibrate: too few runs of ${shape}`);
  const entry: Record<string, unknown> = {};
  for (const m of ['now', 'after_compaction'] as const) {
    const errors = mine.map((r) => r.predicted[m] - r.delivered[m]);
    const delivered = boots.map((r) =>
      m === 'now' ? r.hugepages.delivered_before_compaction : r.hugepages.delivered_after_compaction,
    );
    const maxAbs = Math.max(...errors.map(Math.abs));
    const s = sd(delivered);
    entry[m] = {
      tolerance: Math.max(MIN_TOLERANCE, Math.ceil(maxAbs + SD_FACTOR * s)),
      max_abs_error: maxAbs,
      mean_error: round1(errors.reduce((a, b) => a + b, 0) / errors.length),
      errors,
      kernel_sd: round1(s),
      kernel_only_tolerance: Math.max(MIN_TOLERANCE, Math.ceil(KERNEL_ONLY_SD_FACTOR * s)),
      kernel_min: Math.min(...delivered),
      kernel_max: Math.max(...delivered),
      kernel_runs: delivered.length,
      runs_with_snapshot: mine.length,
    };
  }
  shapes[shape] = entry;
}

const out = {
  about:
    'Per-shape tolerances of test/fidelity/qemu.test.ts, in 2 MiB hugepages: |predicted - delivered| must not exceed them. Made by `npx tsx fidelity/qemu/calibrate.ts`; the rule is explained in docs/fidelity-qemu.md ("Tolerance").',
  rule: `tolerance = max(${MIN_TOLERANCE}, ceil(max |predicted - delivered| over the runs with a snapshot + ${SD_FACTOR} x sd of delivered over all comparable boots)); "now" is the first nr_hugepages write before compact_memory, "after_compaction" the first write after it`,
  kernel_only_rule: `kernel_only_tolerance = max(${MIN_TOLERANCE}, ceil(${KERNEL_ONLY_SD_FACTOR} x sd of delivered)): not asserted; what the kernel's spread alone would allow`,
  guest: {
    kernel_release: rows.length
      ? (readJson(join(here, rows[0].run, 'result.json')) as Result).kernel_release
      : null,
    memory_mib: 1024,
    accel: 'tcg',
    cpus: 1,
    seed: 0,
    asked: rows[0]?.asked,
  },
  generated: new Date().toISOString().slice(0, 10),
  shapes,
  runs: rows,
};
const text = `${JSON.stringify(out, null, 2)}\n`;

// The table in docs/fidelity-qemu.md, between its markers, so the page follows the file.
type Metric = {
  tolerance: number;
  max_abs_error: number;
  mean_error: number;
  kernel_sd: number;
  kernel_min: number;
  kernel_max: number;
  kernel_runs: number;
  runs_with_snapshot: number;
  kernel_only_tolerance: number;
};
const docRows = SHAPES.flatMap((shape) => {
  const e = shapes[shape] as Record<'now' | 'after_compaction', Metric>;
  return (['now', 'after_compaction'] as const).map((m) => {
    const x = e[m];
    const label = m === 'now' ? 'before' : 'after';
    return `| ${shape} | ${label} | ${x.kernel_min}–${x.kernel_max}, sd ${x.kernel_sd} (${x.kernel_runs}) | ${x.mean_error > 0 ? '+' : ''}${x.mean_error} / ${x.max_abs_error} (${x.runs_with_snapshot}) | **±${x.tolerance}** | ±${x.kernel_only_tolerance} |`;
  });
});
const table = [
  `Made by \`calibrate.ts\` on ${out.generated} from the predictor as it was then; asked ${out.guest.asked}.`,
  '',
  '| shape | first write | kernel delivered: min–max, sd (boots) | model error: mean / max \\|err\\| (runs) | tolerance | kernel only (3 sd) |',
  '| --- | --- | --- | --- | --- | --- |',
  ...docRows,
].join('\n');
const docFile = join(here, '../../docs/fidelity-qemu.md');
const BEGIN = '<!-- tolerance-table:begin (calibrate.ts) -->';
const END = '<!-- tolerance-table:end -->';

if (dryRun) {
  process.stdout.write(text);
  console.log(table);
} else {
  const tolFile = join(here, 'tolerance.json');
  writeFileSync(tolFile, text);
  // In the layout `npm run lint` (biome) expects: short arrays on one line.
  const biome = join(here, '../../node_modules/.bin/biome');
  if (spawnSync(biome, ['format', '--write', tolFile], { stdio: 'ignore' }).status !== 0)
    console.log(`calibrate: could not run ${biome} format on ${tolFile}; run \`npm run format\``);
  console.log(`calibrate: wrote ${relative(process.cwd(), tolFile)}`);
  const doc = existsSync(docFile) ? readFileSync(docFile, 'utf8') : '';
  const a = doc.indexOf(BEGIN);
  const b = doc.indexOf(END);
  if (a >= 0 && b > a) {
    writeFileSync(docFile, `${doc.slice(0, a + BEGIN.length)}\n${table}\n${doc.slice(b)}`);
    console.log(`calibrate: updated the table in ${relative(process.cwd(), docFile)}`);
  } else console.log(`calibrate: no table markers in ${docFile}; not updated`);
}
for (const shape of SHAPES) {
  const e = shapes[shape] as Record<string, { tolerance: number; max_abs_error: number; kernel_sd: number }>;
  console.log(
    `calibrate: ${shape}: before ±${e.now.tolerance} (max |err| ${e.now.max_abs_error}, kernel sd ${e.now.kernel_sd}), after ±${e.after_compaction.tolerance} (max |err| ${e.after_compaction.max_abs_error}, kernel sd ${e.after_compaction.kernel_sd})`,
  );
}
