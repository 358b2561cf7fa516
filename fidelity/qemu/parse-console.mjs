#!/usr/bin/env node
// Parse a fidelity guest's console log (see init) into OUT/snapshot/<path>, OUT/result/<path> and
// OUT/result.json. Node.js built-ins only, so it runs wherever the project does.
// Usage: parse-console.mjs CONSOLE_LOG OUT_DIR RUN_JSON
//   RUN_JSON: what the host knows ({"memory_mib":1024,"accel":"kvm","wall_s":12.3,...}); merged
//   into result.json.
// Exits 1 with one line "parse-console: ..." naming what is wrong (missing frame, bad checksum,
// guest-reported FAIL, no DONE).
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { gunzipSync } from 'node:zlib';

const [logPath, outDir, runJson] = process.argv.slice(2);
if (!logPath || !outDir) {
  console.error('usage: parse-console.mjs CONSOLE_LOG OUT_DIR [RUN_JSON]');
  process.exit(2);
}
function fail(msg) {
  console.error(`parse-console: ${msg}`);
  process.exit(1);
}

// Serial consoles end lines with \r\n; QEMU may add escape sequences before the kernel's first line.
const lines = readFileSync(logPath, 'latin1')
  .split('\n')
  .map((l) => l.replace(/\r$/, ''));
const marks = {};
const files = new Map();
let open = null;
let b64 = [];
for (const [i, line] of lines.entries()) {
  // Not anchored at the start: the first marker may follow the firmware's clear-screen codes.
  const m = /=== MAPCONTIG (\w+)(?: (.*))? ===$/.exec(line);
  if (!m) {
    if (open) b64.push(line);
    continue;
  }
  const [, kind, rest = ''] = m;
  if (kind === 'BEGIN') {
    if (open) fail(`frame ${open.path} has no END before line ${i + 1}`);
    const f = /^(\S+) size=(\d+) sha256=([0-9a-f]{64})$/.exec(rest);
    if (!f) fail(`bad BEGIN at line ${i + 1}: ${line}`);
    open = { path: f[1], size: Number(f[2]), sha256: f[3] };
    b64 = [];
  } else if (kind === 'END') {
    if (!open || open.path !== rest) fail(`END ${rest} at line ${i + 1} without its BEGIN`);
    // Only base64 characters: anything else is a console line that broke into the frame.
    const text = b64.join('');
    if (!/^[A-Za-z0-9+/=]*$/.test(text))
      fail(`frame ${open.path}: non-base64 text inside (a kernel message?)`);
    let data;
    try {
      data = gunzipSync(Buffer.from(text, 'base64'));
    } catch (e) {
      fail(`frame ${open.path}: gzip: ${e.message}`);
    }
    const sum = createHash('sha256').update(data).digest('hex');
    if (data.length !== open.size || sum !== open.sha256)
      fail(
        `frame ${open.path}: ${data.length} bytes, sha256 ${sum.slice(0, 12)}…; the guest sent ${open.size}, ${open.sha256.slice(0, 12)}…`,
      );
    files.set(open.path, data);
    open = null;
  } else if (kind === 'FAIL') {
    const tail = lines
      .slice(i + 1)
      .filter((l) => l.trim())
      .slice(-15)
      .join('\n');
    fail(`the guest failed: ${rest}\n${tail}`);
  } else {
    marks[kind] = Object.fromEntries(
      rest
        .split(' ')
        .filter(Boolean)
        .map((kv) => {
          const j = kv.indexOf('=');
          return [kv.slice(0, j), kv.slice(j + 1)];
        }),
    );
  }
}
if (!marks.START) fail('no START: the guest never reached /init (see the console log)');
if (open) fail(`frame ${open.path} cut off: the guest stopped while sending it`);
if (!marks.DONE) {
  const last = ['MEASURED', 'SNAPSHOT', 'FRAGMENTED', 'START'].find((k) => marks[k]);
  fail(`no DONE: the guest stopped after ${last}`);
}
for (const need of [
  'snapshot/proc/buddyinfo',
  'snapshot/proc/zoneinfo',
  'snapshot/proc/kpageflags.gz',
  'result/result.env',
])
  if (!files.has(need)) fail(`missing frame ${need}`);

const bytes = { snapshot: 0, snapshot_kpage_gz: 0, result: 0 };
for (const [path, data] of files) {
  const p = normalize(path);
  if (p.startsWith('..') || p.startsWith('/')) fail(`frame path ${path} leaves the output dir`);
  const dest = join(outDir, p);
  mkdirSync(dirname(dest), { recursive: true });
  writeFileSync(dest, data);
  if (p.startsWith('snapshot/')) bytes.snapshot += data.length;
  else bytes.result += data.length;
  if (/kpage(flags|count)\.gz$/.test(p)) bytes.snapshot_kpage_gz += data.length;
}

const env = Object.fromEntries(
  files
    .get('result/result.env')
    .toString()
    .trim()
    .split('\n')
    .map((l) => {
      const j = l.indexOf('=');
      return [l.slice(0, j), l.slice(j + 1)];
    }),
);
const int = (k) => (env[k] === undefined ? null : Number.parseInt(env[k], 10));
const up = (k) => Number.parseFloat(marks[k].uptime);
const run = runJson ? JSON.parse(runJson) : {};
const fragLine = lines.find((l) => l.startsWith('FRAGMENT '));
const fragment = fragLine
  ? Object.fromEntries(
      fragLine
        .slice(9)
        .split(' ')
        .map((kv) => kv.split('='))
        .map(([k, v]) => [k, /^\d+$/.test(v) ? Number(v) : v]),
    )
  : null;

const result = {
  shape: env.shape,
  seed: int('seed'),
  ...run,
  kernel_release: files.get('snapshot/proc/sys/kernel/osrelease')?.toString().trim() ?? null,
  hugepages: {
    asked: int('asked'),
    delivered_before_compaction: int('delivered_before_compaction'),
    delivered_after_compaction: int('delivered_after_compaction'),
    // The same N written again at once: nr_hugepages stops at its first failed allocation.
    delivered_before_compaction_second_write: int('delivered_before_compaction_second_write'),
    delivered_after_compaction_second_write: int('delivered_after_compaction_second_write'),
  },
  fragment,
  guest_ms: {
    boot_to_init: Math.round(up('START') * 1000),
    fragment: Math.round((up('FRAGMENTED') - up('START')) * 1000),
    snapshot: Math.round((up('SNAPSHOT') - up('FRAGMENTED')) * 1000),
    measure: Math.round((up('MEASURED') - up('SNAPSHOT')) * 1000),
    hugepages_write: int('hugepages_write_ms'),
    compact_memory: int('compact_memory_ms'),
    hugepages_write_after_compaction: int('hugepages_write_after_compaction_ms'),
    emit: Math.round((up('DONE') - up('MEASURED')) * 1000),
    total: Math.round(up('DONE') * 1000),
  },
  bytes: { console_log: statSync(logPath).size, ...bytes },
};
writeFileSync(join(outDir, 'result.json'), `${JSON.stringify(result, null, 2)}\n`);
console.log(
  `${result.shape} seed=${result.seed}: asked ${result.hugepages.asked}, delivered ${result.hugepages.delivered_before_compaction} before and ${result.hugepages.delivered_after_compaction} after compact_memory`,
);
