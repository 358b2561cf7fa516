#!/usr/bin/env node
// Summarise repeated guest runs: per shape (and accel), how many runs, and min/max/mean/sd of the
// hugepages delivered before and after compact_memory, plus timings and output sizes. This is
// the spread the CI test's tolerance is derived from (docs/fidelity-qemu.md).
// Usage: summarize.mjs RUN_DIR...   (each RUN_DIR holds a result.json from run-guest.sh)
//        summarize.mjs --json RUN_DIR...
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const json = args[0] === '--json';
const dirs = json ? args.slice(1) : args;
const groups = new Map();
let skipped = 0;
for (const d of dirs) {
  const f = join(d, 'result.json');
  if (!existsSync(f)) {
    skipped++;
    continue;
  }
  const r = JSON.parse(readFileSync(f, 'utf8'));
  const key = `${r.shape} ${r.memory_mib}M ${r.accel} cpus=${r.cpus}`;
  if (!groups.has(key)) groups.set(key, []);
  groups.get(key).push(r);
}

function stats(xs) {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const sd = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return {
    n,
    min: Math.min(...xs),
    max: Math.max(...xs),
    mean: +mean.toFixed(1),
    sd: +sd.toFixed(1),
    values: xs,
  };
}

const out = [];
for (const [key, rs] of groups) {
  out.push({
    key,
    asked: rs[0].hugepages.asked,
    before: stats(rs.map((r) => r.hugepages.delivered_before_compaction)),
    after: stats(rs.map((r) => r.hugepages.delivered_after_compaction)),
    before2: stats(rs.map((r) => r.hugepages.delivered_before_compaction_second_write ?? Number.NaN)),
    after2: stats(rs.map((r) => r.hugepages.delivered_after_compaction_second_write ?? Number.NaN)),
    wall_s: stats(rs.map((r) => r.wall_s)),
    guest_boot_to_init_ms: stats(rs.map((r) => r.guest_ms.boot_to_init)),
    guest_fragment_ms: stats(rs.map((r) => r.guest_ms.fragment)),
    console_kib: stats(rs.map((r) => Math.round(r.bytes.console_log / 1024))),
  });
}
if (json) {
  console.log(JSON.stringify(out, null, 2));
} else {
  console.log(
    '| shape, memory, accel | runs | asked | before compact_memory: 1st write | 2nd write | after compact_memory: 1st write | 2nd write | wall s (mean) |',
  );
  console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
  // min–max (mean ± sd), then the runs in order
  const fmt = (s) =>
    Number.isNaN(s.mean) ? '–' : `${s.min}–${s.max} (${s.mean} ± ${s.sd}): ${s.values.join(', ')}`;
  for (const g of out)
    console.log(
      `| ${g.key} | ${g.before.n} | ${g.asked} | ${fmt(g.before)} | ${fmt(g.before2)} | ${fmt(g.after)} | ${fmt(g.after2)} | ${g.wall_s.mean} |`,
    );
}
if (skipped) console.error(`summarize: ${skipped} dir(s) without result.json skipped`);
