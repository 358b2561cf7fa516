/**
 * `mapcontig sweep` and `mapcontig merge` (docs/sweeps.md): a grid of scenario values × seeds on
 * a pool of worker threads, each point written the moment it finishes; shards joined by merge.
 *
 * Exit codes, as the rest of the CLI (main.ts): 0 every point ran (an errno in a result is an
 * answer, not an error); 1 bad input (the sweep or scenario file, an output directory of another
 * sweep) or a point whose run threw (its error is in its point file and in sweep.json); 2 bad
 * usage (commander's message); 130 / 143 stopped by SIGINT / SIGTERM, every finished point kept.
 */
import { availableParallelism } from 'node:os';
import cliProgress from 'cli-progress';
import { type Command, InvalidArgumentError } from 'commander';
import {
  defaultOut,
  loadSweep,
  mergeSweep,
  type PointRecord,
  parseShard,
  runSweep,
  type Shard,
  type SweepOutcome,
} from '../workload/sweep.ts';

interface SweepFlags {
  out?: string;
  workers?: number;
  resume: boolean;
  shard?: Shard;
  quiet: boolean;
  json: boolean;
}

function workersOption(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 1024)
    throw new InvalidArgumentError('must be a whole number from 1 to 1024');
  return Number(v);
}

function shardOption(v: string): Shard {
  const s = parseShard(v);
  if (!s) throw new InvalidArgumentError('must be I/N with 1 <= I <= N, e.g. 2/4');
  return s;
}

const say = (text: string): void => {
  process.stdout.write(`${text}\n`);
};

/** Points done / total on stderr: a bar on a terminal, a line per point in a log, nothing if quiet. */
function pointProgress(name: string, quiet: boolean) {
  if (quiet) return { start() {}, point(_r: PointRecord) {}, stop() {} };
  if (!process.stderr.isTTY) {
    let done = 0;
    let total = 0;
    return {
      start(t: number, d: number) {
        total = t;
        done = d;
      },
      point(r: PointRecord) {
        done++;
        process.stderr.write(
          `[${done}/${total}] point ${r.index} ${r.key}${r.error ? `: ${r.error.kind}: ${r.error.message}` : ''}\n`,
        );
      },
      stop() {},
    };
  }
  const bar = new cliProgress.SingleBar(
    {
      stream: process.stderr,
      format: `${name} [{bar}] {value}/{total} points | {failed} failed | ETA {eta_formatted}`,
      hideCursor: true,
      clearOnComplete: true,
      etaBuffer: 20,
    },
    cliProgress.Presets.shades_classic,
  );
  let failed = 0;
  return {
    start(total: number, done: number) {
      bar.start(total, done, { failed });
    },
    point(r: PointRecord) {
      if (r.error) failed++;
      bar.increment(1, { failed });
    },
    stop() {
      bar.stop();
    },
  };
}

async function sweepAction(file: string, o: SweepFlags): Promise<void> {
  const s = loadSweep(file);
  const shard = o.shard ?? null;
  const out = o.out ?? defaultOut(s, shard);
  const workers = o.workers ?? availableParallelism();
  const progress = pointProgress(s.name, o.quiet || o.json);
  // Ctrl-C or kill: stop the workers; the points already written stay for --resume.
  const stop = new AbortController();
  let signal: NodeJS.Signals | null = null;
  const onSignal = (sig: NodeJS.Signals): void => {
    signal = sig;
    stop.abort();
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  const wall = performance.now();
  let r: SweepOutcome;
  try {
    r = await runSweep(s, {
      out,
      workers,
      resume: o.resume,
      shard,
      signal: stop.signal,
      onStart: (i) => progress.start(i.selected, i.resumed),
      onPoint: (rec) => progress.point(rec),
    });
  } finally {
    progress.stop();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  const seconds = (performance.now() - wall) / 1000;
  const where = shard ? `shard ${shard.index}/${shard.count}: ` : '';
  if (o.json)
    say(
      JSON.stringify(
        {
          sweep: s.name,
          out,
          shard: shard && `${shard.index}/${shard.count}`,
          points: r.total,
          selected: r.selected,
          resumed: r.resumed,
          ran: r.ran,
          failed: r.failed,
          interrupted: r.interrupted,
          results: r.merged && { json: r.merged.json, csv: r.merged.csv },
          seconds: Math.round(seconds * 10) / 10,
        },
        null,
        2,
      ),
    );
  else if (!o.quiet) {
    const used = Math.min(workers, r.ran);
    say(
      `sweep ${s.name}: ${where}${r.selected} of ${r.total} points (${r.ran} run, ${r.resumed} kept from before, ${r.failed} failed) in ${seconds.toFixed(1)} s${used ? ` on ${used} worker${used === 1 ? '' : 's'}` : ''}`,
    );
    if (r.merged) say(`results: ${r.merged.json}, ${r.merged.csv}`);
    else if (shard && !r.interrupted)
      say(`points: ${out}/points/ — join the shards with \`mapcontig merge DIR... --out DIR\``);
  }
  if (r.interrupted) {
    const written = r.resumed + r.ran;
    process.stderr.write(
      `mapcontig: interrupted: ${written} of ${r.selected} points are in ${out}/points; run the same command with --resume to finish\n`,
    );
    process.exitCode = signal === 'SIGTERM' ? 143 : 130;
  } else if (r.failed) {
    process.stderr.write(
      `mapcontig: ${r.failed} of ${r.selected} points failed; their errors are in ${out}/points${r.merged ? ' and sweep.json' : ''}\n`,
    );
    process.exitCode = 1;
  }
}

/** Add `sweep` and `merge` to the program. */
export function addSweepCommands(program: Command): void {
  program
    .command('sweep')
    .description('run a scenario over a grid of values × seeds on worker threads; resumable, shardable')
    .argument('<sweep>', 'sweep file (YAML; see docs/sweeps.md)')
    .option('-o, --out <dir>', 'output directory (default: sweep-<name>, or sweep-<name>-shard-I-of-N)')
    .option(
      '-w, --workers <n>',
      `worker threads (default: the CPUs, here ${availableParallelism()})`,
      workersOption,
    )
    .option('--resume', 'keep the points already in --out and run the rest', false)
    .option(
      '--shard <I/N>',
      'run only the points whose index % N == I-1 (join shards with merge)',
      shardOption,
    )
    .option('--json', 'print what was done as JSON on stdout', false)
    .option('-q, --quiet', 'no progress and no summary (errors still go to stderr)', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mapcontig sweep scenarios/sweeps/thread-700m-sizes.yaml
  $ mapcontig sweep scenarios/sweeps/thread-700m-sizes.yaml --workers 4 --out /tmp/sizes
  $ mapcontig sweep scenarios/sweeps/thread-700m-sizes.yaml --out /tmp/sizes --resume   # after Ctrl-C
  $ mapcontig sweep scenarios/sweeps/thread-700m-sizes.yaml --shard 1/2 --out /tmp/a    # one machine
  $ mapcontig sweep scenarios/sweeps/thread-700m-sizes.yaml --shard 2/2 --out /tmp/b    # another
  $ mapcontig merge /tmp/a /tmp/b --out /tmp/sizes

Each finished point is written at once to DIR/points/NNNNN.json; a whole (un-sharded) run ends
with DIR/sweep.json and DIR/sweep.csv, one row per point. Exit codes: 0 every point ran; 1 bad
input or a point that failed; 2 bad usage; 130/143 interrupted (finish with --resume).`,
    )
    .exitOverride()
    .action(sweepAction);

  program
    .command('merge')
    .description("join sweep shards' point files into one sweep.json and sweep.csv")
    .argument('<dirs...>', 'output directories of `mapcontig sweep --shard I/N`')
    .requiredOption('-o, --out <dir>', 'where to write sweep.json and sweep.csv')
    .option('--json', 'print what was done as JSON on stdout', false)
    .option('-q, --quiet', 'print nothing but errors', false)
    .addHelpText(
      'after',
      `
Examples:
  $ mapcontig merge /tmp/a /tmp/b --out /tmp/sizes
  $ mapcontig merge shards/* --out results

The directories must hold points of the same sweep (the same sweep and scenario files), each
point exactly once and none missing; the result is byte for byte what one un-sharded run writes.
Exit codes: 0 merged; 1 directories of different sweeps, a point twice, or points missing; 2 bad usage.`,
    )
    .exitOverride()
    .action((dirs: string[], o: { out: string; json: boolean; quiet: boolean }) => {
      const m = mergeSweep(dirs, o.out);
      if (o.json)
        say(
          JSON.stringify(
            {
              sweep: m.result.name,
              points: m.result.points.length,
              failed: m.result.failed,
              json: m.json,
              csv: m.csv,
            },
            null,
            2,
          ),
        );
      else if (!o.quiet)
        say(
          `merged ${m.result.points.length} points of sweep ${m.result.name} from ${dirs.length} director${dirs.length === 1 ? 'y' : 'ies'} (${m.result.failed} failed): ${m.json}, ${m.csv}`,
        );
    });
}
