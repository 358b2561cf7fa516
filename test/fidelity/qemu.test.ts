/**
 * Issue 8, "Fidelity, measured": the model against a real kernel booted under QEMU.
 *
 * Each guest (fidelity/qemu/run-guest.sh, docs/fidelity-qemu.md) boots Debian 12's kernel, fragments
 * its memory in one shape, snapshots it and records how many 2 MiB hugepages `nr_hugepages`
 * delivered before and after `compact_memory`. Here mapcontig imports each snapshot, predicts
 * both numbers, and must agree with the kernel within the per-shape tolerance of
 * fidelity/qemu/tolerance.json (derived from repeated guest runs by fidelity/qemu/calibrate.ts;
 * the rule is in docs/fidelity-qemu.md).
 *
 * - "committed guest runs" always runs: the prediction on fidelity/qemu/samples/<shape>/ and on
 *   the calibration runs in fidelity/qemu/calibration/, no QEMU needed.
 * - "fresh guests" boots the four shapes once (fidelity/qemu/run-batch.mjs: 1 GiB, TCG, 2 at a
 *   time, 40–70 s) when the guest kernel and QEMU are installed (fidelity/qemu/setup.sh, run
 *   by .ci/run). Otherwise, or with MAPCONTIG_QEMU=0, it is skipped and says why.
 *   MAPCONTIG_QEMU=1 turns "not installed" into a failure instead.
 *
 * On a 2-core machine vitest runs one test file at a time (maxWorkers = cores − 1), so the two
 * guests never compete with the rest of the suite for the cores. The guests' output goes to
 * fidelity/qemu/out/ci-batch-XXXXXX/ (git-ignored), one per run so that two test runs on one
 * machine never share it; it is removed when every fresh-guest test passed and kept otherwise.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { predictHugepages } from '../../src/snapshot/predict.ts';
import { readSnapshot } from '../../src/snapshot/read.ts';

const QEMU_DIR = resolve(import.meta.dirname, '../../fidelity/qemu');
const SHAPES = ['anon-holes', 'page-cache', 'unmovable', 'mixed'] as const;
/** Per guest; a normal TCG guest takes 16–35 s. Two rounds of two fit well inside BATCH_TIMEOUT_MS. */
const GUEST_TIMEOUT_S = 180;
const BATCH_TIMEOUT_MS = 8 * 60_000;

interface Tolerance {
  /** Allowed |predicted − delivered|, in 2 MiB pages. */
  tolerance: number;
}
interface ToleranceFile {
  shapes: Record<string, { now: Tolerance; after_compaction: Tolerance }>;
}
interface GuestResult {
  shape: string;
  hugepages: { asked: number; delivered_before_compaction: number; delivered_after_compaction: number };
}

function loadTolerances(): ToleranceFile {
  const file = join(QEMU_DIR, 'tolerance.json');
  if (!existsSync(file))
    throw new Error(`${file} is missing: derive it with \`npx tsx fidelity/qemu/calibrate.ts\``);
  return JSON.parse(readFileSync(file, 'utf8')) as ToleranceFile;
}

/**
 * Predict a guest run (a dir holding snapshot/ and result.json) and return its disagreements
 * with the kernel beyond tolerance, one line each; empty when it agrees.
 */
async function disagreements(runDir: string, tolerances: ToleranceFile): Promise<string[]> {
  const result = JSON.parse(readFileSync(join(runDir, 'result.json'), 'utf8')) as GuestResult;
  const tol = tolerances.shapes[result.shape];
  if (!tol) return [`${runDir}: no tolerance for shape ${result.shape} in tolerance.json`];
  const snap = await readSnapshot(join(runDir, 'snapshot'));
  const p = predictHugepages(snap, { count: result.hugepages.asked });
  const out: string[] = [];
  const check = (what: string, predicted: number, delivered: number, t: number) => {
    if (!(Math.abs(predicted - delivered) <= t))
      out.push(
        `${result.shape} (${runDir}) ${what}: predicted ${predicted}, the kernel delivered ${delivered} of ${result.hugepages.asked}, |error| ${Math.abs(predicted - delivered)} > tolerance ${t}`,
      );
  };
  check('before compact_memory', p.now, result.hugepages.delivered_before_compaction, tol.now.tolerance);
  check(
    'after compact_memory',
    p.after_compaction,
    result.hugepages.delivered_after_compaction,
    tol.after_compaction.tolerance,
  );
  return out;
}

const has = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' }).status === 0;

/** Why the fresh-guest test cannot run here, or null when it can. */
function qemuUnavailable(): string | null {
  if (process.env.MAPCONTIG_QEMU === '0') return 'MAPCONTIG_QEMU=0';
  if (process.env.MAPCONTIG_QEMU_SETUP_ERROR)
    return `fidelity/qemu/setup.sh failed in .ci/run: ${process.env.MAPCONTIG_QEMU_SETUP_ERROR}`;
  if (process.platform !== 'linux') return `needs Linux, this is ${process.platform}`;
  const cache = process.env.MAPCONTIG_QEMU_CACHE ?? join(QEMU_DIR, '.cache');
  const setup = 'run `sudo fidelity/qemu/setup.sh` once (Debian 12)';
  const releaseFile = join(cache, 'kernel-release');
  if (!existsSync(releaseFile)) return `no guest kernel in ${cache}: ${setup}`;
  const release = readFileSync(releaseFile, 'utf8').trim();
  if (!existsSync(join(cache, 'kernel', 'boot', `vmlinuz-${release}`)))
    return `guest kernel ${release} is not unpacked in ${cache}: ${setup}`;
  if (!existsSync(join(cache, 'busybox', 'bin', 'busybox'))) return `no busybox in ${cache}: ${setup}`;
  for (const cmd of ['qemu-system-x86_64', 'cpio', 'mkfs.ext4'])
    if (!has(cmd)) return `${cmd} is not installed: ${setup}`;
  if (!existsSync(join(cache, 'fragment')) && !(has('gcc') && existsSync('/usr/lib/x86_64-linux-gnu/libc.a')))
    return `cannot build the static fragmenter (gcc and libc6-dev): ${setup}`;
  return null;
}

describe('QEMU fidelity: committed guest runs (no QEMU needed)', () => {
  const runs = [
    ...SHAPES.map((s) => join(QEMU_DIR, 'samples', s)),
    ...(existsSync(join(QEMU_DIR, 'calibration'))
      ? readdirSync(join(QEMU_DIR, 'calibration'))
          .sort()
          .map((d) => join(QEMU_DIR, 'calibration', d))
          .filter((d) => existsSync(join(d, 'result.json')))
      : []),
  ];

  it('has a tolerance for every shape, with its derivation', () => {
    const t = loadTolerances();
    for (const s of SHAPES) {
      expect(t.shapes[s]?.now.tolerance, s).toBeGreaterThanOrEqual(0);
      expect(t.shapes[s]?.after_compaction.tolerance, s).toBeGreaterThanOrEqual(0);
    }
  });

  it.each(SHAPES)('samples/%s: prediction within tolerance of what the kernel delivered', async (shape) => {
    expect(await disagreements(join(QEMU_DIR, 'samples', shape), loadTolerances())).toEqual([]);
  });

  it(`calibration runs (${runs.length - SHAPES.length}): prediction within tolerance`, async () => {
    const t = loadTolerances();
    const bad: string[] = [];
    for (const dir of runs.slice(SHAPES.length)) bad.push(...(await disagreements(dir, t)));
    expect(bad).toEqual([]);
  }, 180_000);
});

const unavailable = qemuUnavailable();
if (unavailable && process.env.MAPCONTIG_QEMU !== '1')
  console.warn(`QEMU fidelity test (fresh guests) SKIPPED: ${unavailable}`);

describe('QEMU fidelity: fresh guests booted now (1 GiB, TCG)', () => {
  let batch: { wall_s: number; runs: { shape: string; out: string; ok: boolean; error?: string }[] } | null =
    null;
  let batchLog = '';
  let batchOut = '';
  let keep = false;

  beforeAll(async () => {
    if (unavailable) return;
    mkdirSync(join(QEMU_DIR, 'out'), { recursive: true });
    batchOut = mkdtempSync(join(QEMU_DIR, 'out', 'ci-batch-'));
    const args = [join(QEMU_DIR, 'run-batch.mjs'), '--out', batchOut, '--jobs', '2'];
    args.push('--timeout', String(GUEST_TIMEOUT_S));
    const code = await new Promise<number>((done) => {
      const c = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      // Stop the batch (it stops its guests) before vitest gives up on this hook, so no guest
      // outlives the test.
      const stop = setTimeout(() => c.kill('SIGTERM'), BATCH_TIMEOUT_MS - 15_000);
      c.stdout.on('data', (d) => {
        batchLog += d;
      });
      c.stderr.on('data', (d) => {
        batchLog += d;
      });
      c.on('close', (code) => {
        clearTimeout(stop);
        done(code ?? 1);
      });
    });
    const file = join(batchOut, 'batch.json');
    if (existsSync(file)) batch = JSON.parse(readFileSync(file, 'utf8'));
    console.log(batchLog.trim());
    if (!batch) {
      keep = true;
      throw new Error(`run-batch.mjs exited with ${code} and wrote no batch.json:\n${batchLog}`);
    }
  }, BATCH_TIMEOUT_MS);

  afterAll(() => {
    if (!batchOut) return;
    if (keep) console.warn(`QEMU fidelity: the guests' output is kept in ${batchOut}`);
    else rmSync(batchOut, { recursive: true, force: true });
  });

  if (unavailable) {
    it(`is skipped: ${unavailable}`, (ctx) => {
      if (process.env.MAPCONTIG_QEMU === '1')
        throw new Error(`MAPCONTIG_QEMU=1 but the QEMU test cannot run: ${unavailable}`);
      ctx.skip(unavailable);
    });
    return;
  }

  it.each(SHAPES)('%s: the prediction from the guest snapshot agrees with the kernel', async (shape) => {
    onTestFailed(() => {
      keep = true;
    });
    const run = batch?.runs.find((r) => r.shape === shape);
    if (!run) throw new Error(`no guest ran for ${shape}; the batch said:\n${batchLog}`);
    if (!run.ok) throw new Error(`the ${shape} guest failed: ${run.error}`);
    expect(await disagreements(run.out, loadTolerances())).toEqual([]);
  });
});
