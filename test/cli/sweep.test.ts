/**
 * `mapcontig sweep` and `merge` as a user runs them (a child process): a sweep killed after its
 * first point and resumed
 * writes the same sweep.json and sweep.csv as one run straight through; merge of one directory
 * reproduces them; exit codes 0 / 1 / 2 as documented.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError } from 'commander';
import { afterAll, describe, expect, it } from 'vitest';
import { addSweepCommands } from '../../src/cli/sweep_command.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const ENTRY = ['--import', 'tsx', 'src/cli/main.ts'];
const env = { ...process.env, NO_COLOR: '1' };
const cli = (...args: string[]) =>
  spawnSync(process.execPath, [...ENTRY, ...args], { cwd: root, encoding: 'utf8', env });

/** cli() in the background, so two sweeps share the CPUs. */
function cliAsync(...args: string[]): {
  child: ChildProcess;
  done: Promise<{ status: number | null; stdout: string; stderr: string }>;
} {
  const child = spawn(process.execPath, [...ENTRY, ...args], { cwd: root, env });
  let stdout = '';
  let stderr = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    stdout += d;
  });
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d;
  });
  const done = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
  return { child, done };
}

const dir = mkdtempSync(join(tmpdir(), 'mapcontig-sweep-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

copyFileSync(
  fileURLToPath(new URL('../fixtures/scenarios/one-minute.yaml', import.meta.url)),
  join(dir, 'tiny.yaml'),
);

const SWEEP = join(dir, 'sizes.yaml');
writeFileSync(SWEEP, 'scenario: tiny.yaml\nseeds: 2\ngrid:\n  compare.request.bytes: [8M, 32M]\n');

/** The commands in this process, exiting as main.ts does: commander's refusals 2, errors 1. */
async function inProcess(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const program = new Command().name('mapcontig').exitOverride();
  program.configureOutput({ writeOut: (t) => (out += t), writeErr: (t) => (err += t) });
  addSweepCommands(program);
  try {
    await program.parseAsync(args, { from: 'user' });
    return { code: 0, out, err };
  } catch (e) {
    if (e instanceof CommanderError) return { code: e.exitCode === 0 ? 0 : 2, out, err };
    return { code: 1, out, err: `${err}mapcontig: ${(e as Error).message}\n` };
  }
}

const read = (out: string) => ({
  json: readFileSync(join(out, 'sweep.json'), 'utf8'),
  csv: readFileSync(join(out, 'sweep.csv'), 'utf8'),
});

describe('mapcontig sweep', () => {
  it('killed after its first point and resumed, writes the bytes of an uninterrupted run', async () => {
    const whole = join(dir, 'whole');
    const killed = join(dir, 'killed');
    const straight = cliAsync('sweep', SWEEP, '--out', whole, '--workers', '1');
    const victim = cliAsync('sweep', SWEEP, '--out', killed, '--workers', '1', '--quiet');
    const first = join(killed, 'points', '00000.json');
    while (!existsSync(first)) {
      if (victim.child.exitCode !== null) throw new Error('the sweep ended before its first point');
      await new Promise((r) => setTimeout(r, 25));
    }
    // The hardest stop: no handler runs, the worker dies with the process.
    victim.child.kill('SIGKILL');
    await victim.done;
    const kept = readdirSync(join(killed, 'points')).filter((f) => f.endsWith('.json'));
    expect(kept.length).toBeGreaterThanOrEqual(1);
    expect(kept.length).toBeLessThan(4);
    expect(existsSync(join(killed, 'sweep.json'))).toBe(false);

    const a = await straight.done;
    expect(a.status).toBe(0);
    expect(a.stdout).toMatch(
      /^sweep tiny-sweep: 4 of 4 points \(4 run, 0 kept from before, 0 failed\) in [\d.]+ s on 1 worker\n/,
    );
    expect(a.stdout).toContain(`results: ${whole}/sweep.json, ${whole}/sweep.csv`);
    // Not a terminal: a line per point instead of a bar.
    expect(a.stderr.split('\n')[0]).toBe('[1/4] point 0 compare.request.bytes=8M seed=1');

    const b = cli('sweep', SWEEP, '--out', killed, '--workers', '2', '--resume', '--json');
    expect(b.stderr).toBe('');
    expect(b.status).toBe(0);
    expect(JSON.parse(b.stdout)).toMatchObject({
      sweep: 'tiny-sweep',
      out: killed,
      points: 4,
      resumed: kept.length,
      ran: 4 - kept.length,
      failed: 0,
      interrupted: false,
      results: { json: join(killed, 'sweep.json'), csv: join(killed, 'sweep.csv') },
    });
    expect(read(killed)).toEqual(read(whole));

    // merge of one whole directory gives the same files; of two copies of a point, a refusal.
    const m = cli('merge', whole, '--out', join(dir, 'merged'));
    expect([m.status, m.stderr]).toEqual([0, '']);
    expect(m.stdout).toBe(
      `merged 4 points of sweep tiny-sweep from 1 directory (0 failed): ${dir}/merged/sweep.json, ${dir}/merged/sweep.csv\n`,
    );
    expect(read(join(dir, 'merged'))).toEqual(read(whole));
    const dup = cli('merge', whole, killed, '--out', join(dir, 'm2'));
    expect(dup.status).toBe(1);
    expect(dup.stderr).toBe(
      `mapcontig: point 0 (compare.request.bytes=8M seed=1) is in both ${whole} and ${killed}; give each point's directory once\n`,
    );

    // Running again into a finished directory needs --resume.
    const again = cli('sweep', SWEEP, '--out', whole, '--quiet');
    expect([again.status, again.stdout]).toEqual([1, '']);
    expect(again.stderr).toBe(
      `mapcontig: ${whole} already holds sweep results; pass --resume to continue that sweep, or choose another --out\n`,
    );
  });

  it('exits 1 when a point fails, after writing every point and sweep.json', () => {
    const f = join(dir, 'fails.yaml');
    writeFileSync(
      f,
      `scenario: tiny.yaml\ngrid:\n  "sysfs['/proc/sys/vm/compaction_proactiveness']": [1000]\n`,
    );
    const out = join(dir, 'fails');
    const r = cli('sweep', f, '--out', out, '--quiet');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      `mapcontig: 1 of 1 points failed; their errors are in ${out}/points and sweep.json\n`,
    );
    expect(JSON.parse(read(out).json).points[0].error).toMatchObject({ kind: 'thrown' });
  });

  it('exits 1 with one line for a bad sweep file', async () => {
    const f = join(dir, 'bad.yaml');
    writeFileSync(f, 'scenario: tiny.yaml\nseed: 2\n');
    expect(await inProcess('sweep', f)).toEqual({
      code: 1,
      out: '',
      err: `mapcontig: ${f}:2:1: seed: unknown key 'seed' (did you mean 'seeds'?)\n`,
    });
  });

  it("exits 2 for bad usage, with commander's message", async () => {
    for (const [args, msg] of [
      [['sweep'], "error: missing required argument 'sweep'"],
      [
        ['sweep', SWEEP, '--workers', 'two'],
        "error: option '-w, --workers <n>' argument 'two' is invalid. must be a whole number from 1 to 1024",
      ],
      [['sweep', SWEEP, '--resmue'], "error: unknown option '--resmue'\n(Did you mean --resume?)"],
      [['merge', dir], "error: required option '-o, --out <dir>' not specified"],
      [['merge', '--out', dir], "error: missing required argument 'dirs'"],
    ] as const) {
      const r = await inProcess(...args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.err.trimEnd()).toBe(msg);
    }
    // And as a process.
    const r = cli('sweep', SWEEP, '--shard', '3/2');
    expect(r.status).toBe(2);
    expect(r.stderr).toBe(
      "error: option '--shard <I/N>' argument '3/2' is invalid. must be I/N with 1 <= I <= N, e.g. 2/4\n(add --help for usage and examples)\n",
    );
  });

  it('--help shows examples and the exit codes', async () => {
    const r = await inProcess('sweep', '--help');
    expect(r.code).toBe(0);
    expect(r.out).toContain('Examples:\n  $ mapcontig sweep scenarios/sweeps/thread-700m-sizes.yaml\n');
    expect(r.out).toContain('Exit codes: 0 every point ran; 1 bad');
    expect((await inProcess('merge', '--help')).out).toContain(
      '$ mapcontig merge /tmp/a /tmp/b --out /tmp/sizes',
    );
  });
});
