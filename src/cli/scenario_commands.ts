/**
 * `mapcontig run`, `compare` and `proc`: a scenario file run on the simulated machine, its
 * contiguous request asked of every contender, or any of its files read at a simulated time.
 */
import { readFileSync } from 'node:fs';
import { type Command, InvalidArgumentError } from 'commander';
import { contenders } from '../contig/compare.ts';
import { parseDuration } from '../lib/duration.ts';
import { parseSize } from '../lib/size.ts';
import { renderComparison } from '../report/comparison.ts';
import { renderRunSummary, writeRunReport } from '../report/run_report.ts';
import '../workload/models.ts'; // registers the workload models the scenario's phases name
import { type RunOptions, type RunResult, runScenario, scenarioUntil } from '../workload/run.ts';
import { loadScenario, type Scenario } from '../workload/scenario.ts';
import { simProgress } from './progress.ts';

interface Common {
  seed?: number;
  json: boolean;
  quiet: boolean;
}

const out = (text: string): void => {
  process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
};

export function seedOption(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 2 ** 32 - 1)
    throw new InvalidArgumentError('must be a whole number from 0 to 4294967295');
  return Number(v);
}

function durationOption(v: string): number {
  try {
    const ns = parseDuration(v);
    if (ns > 0) return ns;
  } catch {}
  throw new InvalidArgumentError(`'${v}' is not a duration (e.g. 90s, 2h, 1.5d)`);
}

export function sizeOption(v: string): number {
  try {
    const bytes = parseSize(v);
    if (bytes > 0 && bytes % 4096 === 0) return bytes;
  } catch {}
  throw new InvalidArgumentError(`'${v}' is not a size in whole pages (e.g. 700M, 1G)`);
}

/** The contender names, with the short `cma` for the CMA heap. */
const ALIASES: Readonly<Record<string, string>> = { cma: 'cma-heap' };

export function policiesOption(v: string): string[] {
  const known = contenders().map((c) => c.name);
  const names = v.split(',').map((p) => ALIASES[p.trim()] ?? p.trim());
  for (const n of names)
    if (!known.includes(n))
      throw new InvalidArgumentError(`'${n}' is not a contender (known: ${known.join(', ')})`);
  return names;
}

/** The scenario, with --seed replacing its seed and its machine's. */
function load(file: string, seed: number | undefined): Scenario {
  const s = loadScenario(file);
  return seed === undefined ? s : { ...s, seed, machine: { ...s.machine, seed } };
}

const scenarioEnd = (s: Scenario): number => s.phases.reduce((t, p) => t + p.duration, 0);

/** Run with a progress bar (stderr, terminals only). */
function runWithProgress(s: Scenario, o: Common, atEnd?: RunOptions['atEnd']): RunResult {
  const bar = simProgress(s.name, o.quiet || o.json);
  try {
    return runScenario(s, { onProgress: (now, end) => bar.update(now, end), atEnd });
  } finally {
    bar.stop();
  }
}

/** Only the two samples at the ends: commands that answer one question need no time series. */
const noSampling = (s: Scenario, end: number): Scenario => ({
  ...s,
  sample: { every: end, files: [], counters: [], metrics: [] },
});

export function addScenarioCommands(program: Command): void {
  program
    .command('run')
    .description('run a scenario: its phases, events, samples and comparison; write a report folder')
    .argument('<scenario>', 'scenario file (YAML; see docs/scenarios.md)')
    .option('-o, --out <dir>', 'report folder (default: reports/<scenario name>)')
    .option('--seed <n>', "replace the scenario's seed (and its machine's)", seedOption)
    .option('--json', 'print the whole result as JSON on stdout instead of the summary', false)
    .option('-q, --quiet', 'print nothing but errors (the report is still written)', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mapcontig run scenarios/rdma-webserver.yaml
  $ mapcontig run scenarios/thread-700m.yaml --seed 7 --out /tmp/t700
  $ mapcontig run scenarios/camera-board.yaml --json | jq '.events[] | {what, ok, errno}'

The report folder holds run.json, samples.csv, events.csv, comparison.csv, fragmentation.json
(mcgrof/plot-fragmentation's format), report.md, report.html and plots/*.svg (docs/reports.md).`,
    )
    .action(async (file: string, o: Common & { out?: string }) => {
      const s = load(file, o.seed);
      const wall = performance.now();
      const result = runWithProgress(s, o);
      const dir = o.out ?? `reports/${s.name}`;
      await writeRunReport(dir, result, { scenarioText: readFileSync(file, 'utf8') });
      if (o.json) out(JSON.stringify(result, null, 2));
      else if (!o.quiet) {
        out(renderRunSummary(result));
        out(
          `report: ${dir}/report.html (and report.md, run.json, CSV files, plots/) — ${((performance.now() - wall) / 1000).toFixed(1)} s`,
        );
      }
    });

  program
    .command('compare')
    .description(
      'ask every contender for the same contiguous buffer, on copies of the scenario machine at one moment',
    )
    .argument('<scenario>', 'scenario file (YAML)')
    .option(
      '-p, --policies <list>',
      `contenders, comma-separated (default: the scenario's, else all: ${contenders()
        .map((c) => c.name)
        .join(',')})`,
      policiesOption,
    )
    .option(
      '-s, --size <size>',
      "bytes to ask for (default: the scenario's compare.request.bytes)",
      sizeOption,
    )
    .option(
      '--at <time>',
      "when to ask (default: the scenario's compare.at, else the end of its phases)",
      durationOption,
    )
    .option('--uid <n>', "user that asks (default: the scenario's, else 1000)", seedOption)
    .option('--seed <n>', "replace the scenario's seed (and its machine's)", seedOption)
    .option('--json', 'print the comparison as JSON', false)
    .option('-q, --quiet', 'no progress bar', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mapcontig compare scenarios/thread-700m.yaml
  $ mapcontig compare scenarios/rdma-webserver.yaml --policies rfc-poc,rfc,bounded,best-effort,device,dma-heap,hugetlb,cma,thp
  $ mapcontig compare scenarios/thread-700m.yaml --size 256M --at 6h --json`,
    )
    .action((file: string, o: Common & { policies?: string[]; size?: number; at?: number; uid?: number }) => {
      const s = load(file, o.seed);
      const end = scenarioEnd(s);
      const bytes = o.size ?? s.compare?.request.bytes;
      if (bytes === undefined)
        throw new Error(`${file} has no compare: section; say how much to ask for with --size`);
      const at = o.at ?? s.compare?.at ?? end;
      const request = {
        uid: 1000,
        devices: ['rdma-nic'],
        ...s.compare?.request,
        bytes,
        ...(o.uid === undefined ? {} : { uid: o.uid, gid: o.uid }),
      };
      const policies = o.policies ?? s.compare?.policies ?? contenders().map((c) => c.name);
      const asked = noSampling(scenarioUntil({ ...s, compare: { at, request, policies } }, at), at);
      const c = runWithProgress(asked, o).comparison;
      if (!c) throw new Error('internal: the comparison did not run');
      out(o.json ? JSON.stringify(c, null, 2) : renderComparison(c));
    });

  program
    .command('proc')
    .description("print files of the scenario's simulated machine as they are at a simulated time")
    .argument('<scenario>', 'scenario file (YAML)')
    .argument('<files...>', 'files under /proc or /sys, e.g. /proc/buddyinfo')
    .requiredOption('--at <time>', 'simulated time since boot (e.g. 2h, 90min)', durationOption)
    .option('--seed <n>', "replace the scenario's seed (and its machine's)", seedOption)
    .option('--json', 'print {"<file>": "<text>", …} as JSON', false)
    .option('-q, --quiet', 'no progress bar', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mapcontig proc scenarios/rdma-webserver.yaml --at 2h /proc/buddyinfo
  $ mapcontig proc scenarios/thread-700m.yaml --at 24h /proc/pagetypeinfo /proc/vmstat

With several files each is headed '==> FILE <==', as head(1) does.`,
    )
    .action((file: string, files: string[], o: Common & { at: number }) => {
      for (const f of files)
        if (!/^\/(proc|sys)\//.test(f)) throw new Error(`${f}: not a file under /proc or /sys`);
      const s = load(file, o.seed);
      const texts = new Map<string, string>();
      const missing: string[] = [];
      runWithProgress(noSampling(scenarioUntil({ ...s, compare: undefined }, o.at), o.at), o, (m) => {
        for (const f of files) {
          try {
            texts.set(f, m.readFile(f));
          } catch (e) {
            missing.push(`${f}: ${(e as Error).message}`);
          }
        }
      });
      if (o.json) out(JSON.stringify(Object.fromEntries(texts), null, 2));
      else if (files.length === 1) process.stdout.write(texts.get(files[0]) ?? '');
      else process.stdout.write([...texts].map(([f, t]) => `==> ${f} <==\n${t}`).join('\n'));
      if (missing.length) throw new Error(missing.join('\nmapcontig: '));
    });
}
