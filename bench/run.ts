/**
 * The benchmark runner: `npm run bench [-- [--quick] [--record] [name-filter...]]`.
 *
 * Runs every bench/*.bench.ts whose name contains one of the filters (all without filters), each
 * in its own node process (bench/lib/child.ts), and prints one table per benchmark. --quick
 * trims samples and skips the 256 GiB and 1 TiB boots (under 30 s in all). --record prepends the
 * run, with date, machine and commit, to bench/RESULTS.md. The last run is always saved as JSON
 * and Markdown in bench/out/.
 */
import { execFileSync, fork } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg } from 'node:os';
import { basename, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ChildMessage } from './lib/child.ts';
import type { Row } from './lib/harness.ts';

const BENCH_DIR = fileURLToPath(new URL('.', import.meta.url));
const CHILD = join(BENCH_DIR, 'lib', 'child.ts');
const OUT_DIR = join(BENCH_DIR, 'out');
const RESULTS = join(BENCH_DIR, 'RESULTS.md');
const SUFFIX = '.bench.ts';

/** One benchmark file's outcome. */
interface Outcome {
  name: string;
  title: string;
  rows: Row[];
  seconds: number;
  error?: string;
}

/** Where and on what the run happened. */
interface RunInfo {
  date: string;
  commit: string;
  cpu: string;
  nproc: number;
  node: string;
  gcc: string;
  quick: boolean;
  filters: string[];
  /** 1-minute load average before and after the run: other work on the box skews the numbers. */
  loadBefore: number;
  loadAfter: number;
}

function usage(): never {
  process.stdout.write(
    'usage: npm run bench -- [--quick] [--record] [name-filter...]\n' +
      `  benchmarks: ${discover([]).join(', ')}\n`,
  );
  process.exit(0);
}

/** Benchmark names (file names without .bench.ts) matching any filter, in name order. */
function discover(filters: string[]): string[] {
  return readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith(SUFFIX))
    .map((f) => basename(f, SUFFIX))
    .filter((n) => filters.length === 0 || filters.some((f) => n.includes(f)))
    .sort();
}

function tryRun(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

function runInfo(quick: boolean, filters: string[]): RunInfo {
  let cpu = 'unknown';
  try {
    cpu = /^model name\s*:\s*(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? cpu;
  } catch {
    // not Linux: leave it unknown
  }
  let commit = tryRun('git', ['rev-parse', '--short', 'HEAD']);
  // Numbers from a tree with uncommitted model changes must not pass for the commit's.
  if (tryRun('git', ['status', '--porcelain', '--', 'src']) !== '') commit += '+dirty src';
  return {
    date: tryRun('date', []),
    commit,
    cpu,
    nproc: Number(tryRun('nproc', [])) || availableParallelism(),
    node: process.version,
    gcc: tryRun('gcc', ['--version']).split('\n')[0],
    quick,
    filters,
    loadBefore: loadavg()[0],
    loadAfter: Number.NaN,
  };
}

/** Run one benchmark file in a child process and collect its rows. */
function runOne(name: string, quick: boolean): Promise<Outcome> {
  const file = join(BENCH_DIR, `${name}${SUFFIX}`);
  process.stderr.write(`\n▸ ${name}\n`);
  const t0 = performance.now();
  return new Promise((resolve) => {
    let msg: ChildMessage | undefined;
    const child = fork(CHILD, [file, ...(quick ? ['--quick'] : [])], {
      // --expose-gc lets mitata collect garbage before sampling.
      execArgv: ['--import', import.meta.resolve('tsx'), '--expose-gc'],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (m) => {
      msg = m as ChildMessage;
    });
    child.on('exit', (code, signal) => {
      const seconds = (performance.now() - t0) / 1000;
      if (msg && code === 0) resolve({ name, title: msg.title, rows: msg.rows, seconds });
      else
        resolve({
          name,
          title: name,
          rows: msg?.rows ?? [],
          seconds,
          error: `exited with ${signal ?? `code ${code}`}`,
        });
    });
  });
}

/** 12345678 → '12.35 M'. */
function si(v: number): string {
  if (v >= 1e9) return `${(v / 1e9).toFixed(2)} G`;
  if (v >= 1e6) return `${(v / 1e6).toFixed(2)} M`;
  if (v >= 1e3) return `${(v / 1e3).toFixed(2)} k`;
  return v.toFixed(2);
}

function formatValue(r: Row): string {
  switch (r.unit) {
    case 'ops/s':
      return `${si(r.value)}ops/s`;
    case 'ms':
      return `${Math.round(r.value).toLocaleString('en-US')} ms`;
    case 'MB':
      return `${Math.round(r.value).toLocaleString('en-US')} MB`;
    case 'x':
      return `${r.value.toFixed(2)}x`;
    default:
      return `${r.value.toFixed(2)} ${r.unit}`;
  }
}

function formatTarget(r: Row): string {
  if (r.target === undefined) return '';
  return `${r.met ? 'met' : 'MISSED'} (${r.target})`;
}

const HEAD = ['case', 'metric', 'value', 'target', 'detail'];

function cells(r: Row): string[] {
  return [r.case, r.metric, formatValue(r), formatTarget(r), r.detail ?? ''];
}

/** A plain aligned table for the terminal. */
function textTable(o: Outcome): string {
  const lines = [HEAD, ...o.rows.map(cells)];
  const widths = HEAD.map((_, i) => Math.max(...lines.map((l) => l[i].length)));
  const fmt = (l: string[]): string =>
    l
      .map((c, i) => (i === 2 ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  const out = [`${o.title}  [${o.name}, ${o.seconds.toFixed(1)} s]`, fmt(lines[0])];
  out.push(widths.map((w) => '-'.repeat(w)).join('  '));
  for (const l of lines.slice(1)) out.push(fmt(l));
  if (o.error) out.push(`!! ${o.error}`);
  return out.join('\n');
}

function markdown(info: RunInfo, outcomes: Outcome[], totalSeconds: number): string {
  const args = [...(info.quick ? ['--quick'] : []), ...info.filters];
  const out = [
    `## ${info.date} — ${info.commit}${info.quick ? ' (quick)' : ''}`,
    '',
    `- machine: ${info.cpu}, ${info.nproc} CPUs; node ${info.node}; ${info.gcc}`,
    `- load average (1 min): ${info.loadBefore.toFixed(2)} before, ${info.loadAfter.toFixed(2)} after`,
    `- commit: \`${info.commit}\`; total ${totalSeconds.toFixed(0)} s`,
    `- reproduce: \`npm run bench${args.length ? ` -- ${args.join(' ')}` : ''}\``,
  ];
  for (const o of outcomes) {
    out.push('', `### ${o.title} (\`${o.name}\`)`, '');
    out.push(`| ${HEAD.join(' | ')} |`, `|${HEAD.map((_, i) => (i === 2 ? '---:' : '---')).join('|')}|`);
    // A `|` inside a cell (MAP_CONTIG | MAP_CONTIG_BEST_EFFORT) would end it.
    for (const r of o.rows)
      out.push(
        `| ${cells(r)
          .map((c) => c.replaceAll('|', '\\|'))
          .join(' | ')} |`,
      );
    if (o.error) out.push('', `**failed:** ${o.error}`);
  }
  return `${out.join('\n')}\n`;
}

const RESULTS_INTRO = `# Benchmark results

A log of \`npm run bench\` runs, newest on top. Each run names its date, machine and commit
(\`+dirty src\` when the model had uncommitted changes). \`npm run bench -- --record\` adds one.
`;

/** Put `section` above the newest run in bench/RESULTS.md. */
function record(section: string): void {
  let text = RESULTS_INTRO;
  try {
    text = readFileSync(RESULTS, 'utf8');
  } catch {
    // first run: start the file
  }
  const at = text.indexOf('\n## ');
  const next =
    at < 0 ? `${text.trimEnd()}\n\n${section}` : `${text.slice(0, at + 1)}${section}\n${text.slice(at + 1)}`;
  writeFileSync(RESULTS, next);
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  if (args.includes('--help') || args.includes('-h')) usage();
  const quick = args.includes('--quick');
  const doRecord = args.includes('--record');
  const unknown = args.filter((a) => a.startsWith('-') && !['--quick', '--record'].includes(a));
  if (unknown.length) {
    process.stderr.write(`unknown option ${unknown.join(', ')}\n`);
    process.exit(2);
  }
  const filters = args.filter((a) => !a.startsWith('-'));
  const names = discover(filters);
  if (names.length === 0) {
    process.stderr.write(`no benchmark matches ${filters.join(', ')}; have ${discover([]).join(', ')}\n`);
    process.exit(2);
  }
  const info = runInfo(quick, filters);
  process.stderr.write(`running ${names.length} benchmark(s)${quick ? ' (quick)' : ''} on ${info.commit}\n`);
  const t0 = performance.now();
  const outcomes: Outcome[] = [];
  for (const name of names) outcomes.push(await runOne(name, quick));
  const total = (performance.now() - t0) / 1000;
  info.loadAfter = loadavg()[0];

  process.stdout.write('\n');
  for (const o of outcomes) process.stdout.write(`${textTable(o)}\n\n`);
  const missed = outcomes.flatMap((o) =>
    o.rows.filter((r) => r.met === false).map((r) => `${o.name}: ${r.case}`),
  );
  process.stdout.write(
    `${names.length} benchmark(s) in ${total.toFixed(1)} s; ` +
      `${outcomes.filter((o) => o.error).length} failed; targets missed: ${missed.length ? missed.join('; ') : 'none'}\n`,
  );

  const md = markdown(info, outcomes, total);
  mkdirSync(OUT_DIR, { recursive: true });
  writeFileSync(join(OUT_DIR, 'last-run.json'), `${JSON.stringify({ info, outcomes, total }, null, 2)}\n`);
  writeFileSync(join(OUT_DIR, 'last-run.md'), md);
  if (doRecord) {
    record(md);
    process.stdout.write(`recorded in ${RESULTS}\n`);
  }
  if (outcomes.some((o) => o.error)) process.exitCode = 1;
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
