#!/usr/bin/env node
// Run a batch of fidelity guests (run-guest.sh), a few at a time, each into its own directory,
// and write OUT/batch.json. This is what the CI test (test/fidelity/qemu.test.ts) and the
// calibration runs (calibrate.ts, docs/fidelity-qemu.md) boot.
//
// Usage: run-batch.mjs --out DIR [--shapes anon-holes,page-cache,unmovable,mixed] [--repeat N]
//                      [--first N] [--jobs 2] [--memory 1G] [--accel tcg] [--timeout 300]
//                      [--retries 1]
//   Each guest goes to DIR/<shape> (DIR/<shape>-<n> with --repeat or --first). Defaults: the four
//   shapes once, 2 guests at a time (one per core of a 2-core CI machine), 1 GiB, TCG: the
//   tolerances in tolerance.json are calibrated under TCG, so KVM is only used when asked for.
//
// --retries N: a guest that fails other than by timing out is booted again, up to N more times
//   (the failed attempt's files move to DIR/<name>.attempt<k>). About 1 unmovable boot in 20
//   panics with "System is deadlocked on memory" while nr_hugepages fills the pool
//   (docs/fidelity-qemu.md): the guest's failure, not the model's. A timeout is not retried: it
//   would likely repeat, slowly.
//
// Prints one line per finished guest and, for each failed guest, one line naming the shape and
// run-guest.sh's own error. Exits 0 when every guest succeeded, 1 when any failed, 2 on bad usage.
// Node.js built-ins only.
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const SHAPES = ['anon-holes', 'page-cache', 'unmovable', 'mixed'];

function usage(msg) {
  if (msg) console.error(`run-batch: ${msg}`);
  console.error(
    'usage: run-batch.mjs --out DIR [--shapes a,b,...] [--repeat N] [--first N] [--jobs N] [--memory 1G] [--accel tcg|kvm|auto] [--timeout S] [--retries N]',
  );
  process.exit(2);
}

const opts = {
  out: '',
  shapes: SHAPES,
  repeat: 1,
  first: 0,
  jobs: 2,
  memory: '1G',
  accel: 'tcg',
  timeout: 300,
  retries: 1,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i += 2) {
  const [k, v] = [argv[i], argv[i + 1]];
  if (v === undefined) usage(`${k} needs a value`);
  switch (k) {
    case '--out':
      opts.out = resolve(v);
      break;
    case '--shapes':
      opts.shapes = v.split(',').filter(Boolean);
      for (const s of opts.shapes) if (!SHAPES.includes(s)) usage(`unknown shape ${s}`);
      break;
    case '--repeat':
    case '--first':
    case '--retries':
    case '--jobs':
    case '--timeout': {
      const n = Number(v);
      if (!Number.isInteger(n) || n < (k === '--first' || k === '--retries' ? 0 : 1))
        usage(`${k} takes a whole number`);
      opts[k.slice(2)] = n;
      break;
    }
    case '--memory':
    case '--accel':
      opts[k.slice(2)] = v;
      break;
    default:
      usage(`unknown option ${k}`);
  }
}
if (!opts.out) usage('--out is required');

const numbered = opts.repeat > 1 || opts.first > 0;
const first = opts.first || 1;
const runs = [];
for (let n = first; n < first + opts.repeat; n++)
  for (const shape of opts.shapes) {
    const name = numbered ? `${shape}-${n}` : shape;
    runs.push({ name, shape, out: join(opts.out, name) });
  }

const children = new Set();
function killAll(sig) {
  // Each guest runs in its own process group (detached), so this reaches qemu under timeout(1).
  for (const c of children) {
    try {
      process.kill(-c.pid, 'SIGTERM');
    } catch {}
  }
  process.exit(sig === 'SIGINT' ? 130 : 143);
}
process.on('SIGINT', () => killAll('SIGINT'));
process.on('SIGTERM', () => killAll('SIGTERM'));

/** Run a command; resolve with its exit code, stderr and wall time. */
function run(cmd, args) {
  return new Promise((done) => {
    const t0 = performance.now();
    const c = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    children.add(c);
    let stdout = '';
    let stderr = '';
    c.stdout.on('data', (d) => {
      stdout += d;
    });
    c.stderr.on('data', (d) => {
      stderr += d;
    });
    c.on('error', (e) => {
      stderr += `${e.message}\n`;
    });
    c.on('close', (code, signal) => {
      children.delete(c);
      done({
        code: code ?? 128,
        signal,
        stdout,
        stderr,
        wall_s: +((performance.now() - t0) / 1000).toFixed(1),
      });
    });
  });
}

/** run-guest.sh ends with one "run-guest.sh: ..." message (several lines for a timeout). */
function errorOf(r) {
  const text = r.stderr.trim();
  const at = text.lastIndexOf('run-guest.sh: ');
  const msg = at >= 0 ? text.slice(at) : text.split('\n').slice(-3).join('\n');
  // The console lines quoted by a timeout carry the firmware's terminal escapes.
  const clean = [
    ...msg
      .split(String.fromCharCode(27))
      .map((part, i) => (i === 0 ? part : part.replace(/^(\[[0-9;?]*[A-Za-z]|[A-Za-z])/, '')))
      .join(''),
  ]
    .filter((ch) => ch === '\n' || (ch >= ' ' && ch !== '\u007f'))
    .join('')
    .split('\n')
    .filter((l) => l.trim())
    .join('\n');
  return clean || `exited with ${r.signal ?? r.code} and no message`;
}

const guest = join(here, 'run-guest.sh');
mkdirSync(opts.out, { recursive: true });
const started = new Date();
const t0 = performance.now();
console.log(
  `run-batch: ${runs.length} guest(s) (${opts.shapes.join(', ')} × ${opts.repeat}), ${opts.memory}, ${opts.accel}, ${opts.jobs} at a time, into ${opts.out}`,
);

// Build the initramfs and the data disk once, before guests that would otherwise race to build them.
const prep = await run(guest, [opts.shapes[0], '--prepare', '--memory', opts.memory]);
if (prep.code !== 0) {
  const e = errorOf(prep).replace(/^run-guest\.sh: /, '');
  console.error(`run-batch: preparing failed, no guest started: ${e}`);
  for (const r of runs) Object.assign(r, { ok: false, error: `not started: preparing failed: ${e}` });
} else {
  let next = 0;
  async function worker() {
    while (next < runs.length) {
      const r = runs[next++];
      r.failed_attempts = [];
      for (let attempt = 1; ; attempt++) {
        const res = await run(guest, [
          r.shape,
          '--out',
          r.out,
          '--memory',
          opts.memory,
          '--accel',
          opts.accel,
          '--timeout',
          String(opts.timeout),
        ]);
        r.wall_s = res.wall_s;
        const resultFile = join(r.out, 'result.json');
        if (res.code === 0 && existsSync(resultFile)) {
          r.ok = true;
          delete r.error;
          r.hugepages = JSON.parse(readFileSync(resultFile, 'utf8')).hugepages;
          console.log(
            `run-batch: ${r.name} ok in ${r.wall_s} s: ${r.hugepages.delivered_before_compaction} before, ${r.hugepages.delivered_after_compaction} after compact_memory (of ${r.hugepages.asked})${attempt > 1 ? ` (attempt ${attempt})` : ''}`,
          );
          break;
        }
        r.ok = false;
        r.error = res.code === 0 ? `no ${resultFile} although run-guest.sh succeeded` : errorOf(res);
        const msg = r.error.replace(/^run-guest\.sh: /, '');
        if (attempt <= opts.retries && !/timed out/.test(r.error)) {
          const kept = `${r.out}.attempt${attempt}`;
          rmSync(kept, { recursive: true, force: true });
          if (existsSync(r.out)) renameSync(r.out, kept);
          r.failed_attempts.push({ error: r.error, wall_s: r.wall_s, kept });
          console.error(`run-batch: ${r.name} failed after ${r.wall_s} s, booting it again: ${msg}`);
          continue;
        }
        console.error(`run-batch: ${r.name} FAILED after ${r.wall_s} s: ${msg}`);
        break;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(opts.jobs, runs.length) }, worker));
}

const wall_s = +((performance.now() - t0) / 1000).toFixed(1);
const failed = runs.filter((r) => !r.ok);
const batch = {
  started: started.toISOString(),
  wall_s,
  jobs: opts.jobs,
  memory: opts.memory,
  accel: opts.accel,
  prepare_s: prep.wall_s,
  retries: opts.retries,
  runs,
};
writeFileSync(join(opts.out, 'batch.json'), `${JSON.stringify(batch, null, 2)}\n`);
console.log(
  `run-batch: ${runs.length - failed.length} of ${runs.length} guest(s) ok in ${wall_s} s (preparing ${prep.wall_s} s)${failed.length ? `; failed: ${failed.map((r) => r.name).join(', ')}` : ''}`,
);
process.exit(failed.length ? 1 : 0);
