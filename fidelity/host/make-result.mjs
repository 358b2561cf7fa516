// make-result: RUN/result.json from what run-host.sh left in RUN (result/result.env, the
// FRAGMENT line, the per-step /proc files, snapshot/ or, once run-host.sh has tarred it,
// snapshot.tar.gz). Same shape as the guest's result.json (fidelity/qemu/parse-console.mjs) where
// the two have the same thing, plus a `host` object.
//   node fidelity/host/make-result.mjs RUN > RUN/result.json
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { cpus } from 'node:os';
import { join } from 'node:path';

const run = process.argv[2];
if (!run) {
  console.error('usage: make-result.mjs RUN_DIR');
  process.exit(2);
}
const R = join(run, 'result');
const env = Object.fromEntries(
  readFileSync(join(R, 'result.env'), 'utf8')
    .split('\n')
    .filter((l) => l.includes('='))
    .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
);
const num = (k) => (env[k] === undefined || env[k] === '' ? null : Number(env[k]));

// FRAGMENT shape=... seed=... budget_kib=... → numbers where they are numbers
const fragment = {};
const fline = readFileSync(join(R, 'fragment.out'), 'utf8')
  .split('\n')
  .find((l) => l.startsWith('FRAGMENT '));
if (fline)
  for (const kv of fline.slice(9).trim().split(/\s+/)) {
    const [k, v] = kv.split('=');
    fragment[k] = /^\d+$/.test(v) ? Number(v) : v;
  }

/** Free 2 MiB blocks (order 9 + 2 × order 10) per zone of a buddyinfo. */
function free2m(text) {
  const out = {};
  for (const l of text.split('\n')) {
    const m = /^Node\s+(\d+),\s+zone\s+(\S+)\s+(.*)$/.exec(l);
    if (!m) continue;
    const n = m[3].trim().split(/\s+/).map(Number);
    out[m[2]] = (n[9] ?? 0) + 2 * (n[10] ?? 0);
  }
  return out;
}
const kib = (text, key) => Number(new RegExp(`^${key}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
/** zone Normal's managed pages and its pcp count (all CPUs) from a zoneinfo. */
function normalZone(text) {
  const at = text.search(/^Node \d+, zone\s+Normal$/m);
  if (at < 0) return null;
  const rest = text.slice(at + 1);
  const end = rest.search(/^Node \d+, zone/m);
  const z = end < 0 ? rest : rest.slice(0, end);
  const managed = Number(/\bmanaged\s+(\d+)/.exec(z)?.[1]);
  const free = Number(/pages free\s+(\d+)/.exec(z)?.[1]);
  const pcp = [...z.matchAll(/^\s+count:\s+(\d+)/gm)].reduce((s, m) => s + Number(m[1]), 0);
  return { managed, free_pages: free, pcp_pages: pcp };
}

const steps = {};
for (const s of [
  'start',
  'fragmented',
  'before-hugepages',
  'after-hugepages',
  'after-free',
  'after-compact',
  'after-compact-hugepages',
  'end',
]) {
  const d = join(R, s, 'proc');
  if (!existsSync(d)) continue;
  const bi = readFileSync(join(d, 'buddyinfo'), 'utf8');
  const mi = readFileSync(join(d, 'meminfo'), 'utf8');
  const zi = readFileSync(join(d, 'zoneinfo'), 'utf8');
  const vm = readFileSync(join(d, 'vmstat'), 'utf8');
  const vmv = (k) => Number(new RegExp(`^${k} (\\d+)`, 'm').exec(vm)?.[1] ?? NaN);
  steps[s] = {
    free_2m_blocks: free2m(bi),
    mem_free_kib: kib(mi, 'MemFree'),
    mem_available_kib: kib(mi, 'MemAvailable'),
    normal: normalZone(zi),
    compact_migrate_scanned: vmv('compact_migrate_scanned'),
    compact_free_scanned: vmv('compact_free_scanned'),
    compact_isolated: vmv('compact_isolated'),
    pgmigrate_success: vmv('pgmigrate_success'),
    compact_stall: vmv('compact_stall'),
    pgsteal_kswapd: vmv('pgsteal_kswapd'),
    pgsteal_direct: vmv('pgsteal_direct'),
    loadavg: readFileSync(join(d, 'loadavg'), 'utf8').trim().split(/\s+/).slice(0, 3).map(Number),
  };
}
const regions = {};
for (const s of ['after-hugepages', 'after-compact-hugepages']) {
  const f = join(R, s, 'huge-regions.json');
  if (!existsSync(f)) continue;
  const j = JSON.parse(readFileSync(f, 'utf8'));
  regions[s] = Object.fromEntries(Object.entries(j.regions).map(([k, v]) => [k, v.hugetlb_2m]));
}

function bytes(p) {
  if (!existsSync(p)) return 0;
  const st = statSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((s, f) => s + bytes(join(p, f)), 0);
}
// The snapshot: its directory while run-host.sh runs, else the tarball it leaves.
const snap = join(run, 'snapshot');
const tarball = join(run, 'snapshot.tar.gz');
const fromTar = !existsSync(snap) && existsSync(tarball);
/** File sizes in the tarball (the directory's regular files, by relative path). */
const tarSizes = new Map();
if (fromTar) {
  const listing = execFileSync('tar', ['-tvzf', tarball], { encoding: 'utf8', maxBuffer: 16 << 20 });
  for (const l of listing.split('\n')) {
    const m = /^-\S*\s+\S+\s+(\d+)\s+\S+\s+\S+\s+(.*)$/.exec(l);
    if (m) tarSizes.set(m[2].replace(/^\.\//, ''), Number(m[1]));
  }
}
/** A snapshot file's text, or null when it is not there. */
function snapText(rel) {
  if (!fromTar) return existsSync(join(snap, rel)) ? readFileSync(join(snap, rel), 'utf8') : null;
  if (!tarSizes.has(rel)) return null;
  return execFileSync('tar', ['-xzOf', tarball, `./${rel}`], { encoding: 'utf8', maxBuffer: 16 << 20 });
}
/** Bytes of the snapshot's files under a prefix ('' for all). */
function snapBytes(prefix) {
  if (!fromTar) return bytes(join(snap, prefix));
  let n = 0;
  for (const [k, v] of tarSizes) if (k === prefix || prefix === '' || k.startsWith(`${prefix}/`)) n += v;
  return n;
}
let manifest = null;
try {
  manifest = JSON.parse(snapText('snapshot.json'));
} catch {}

const m0 = num('normal_managed_at_snapshot');
const result = {
  shape: env.shape,
  seed: num('seed'),
  memory_mib: Math.round(kib(snapText('proc/meminfo'), 'MemTotal') / 1024),
  cpus: cpus().length,
  accel: 'host',
  qemu: null,
  wall_s: num('total_ms') / 1000,
  kernel_release: manifest?.kernel_release ?? snapText('proc/sys/kernel/osrelease')?.trim() ?? null,
  hugepages: {
    asked: num('asked'),
    delivered_before_compaction: num('delivered_before_compaction'),
    delivered_after_compaction: num('delivered_after_compaction'),
    delivered_before_compaction_second_write: num('delivered_before_compaction_second_write'),
    delivered_after_compaction_second_write: num('delivered_after_compaction_second_write'),
  },
  fragment,
  host_ms: {
    fragment: num('fragment_ms'),
    snapshot: num('snapshot_ms'),
    measure: num('measure_ms'),
    hugepages_write: num('hugepages_write_ms'),
    compact_memory: num('compact_memory_ms'),
    hugepages_write_after_compaction: num('hugepages_write_after_compaction_ms'),
    total: num('total_ms'),
  },
  host: {
    budget_cap_mib: num('budget_cap_mib'),
    asked_rule: env.asked_rule,
    free_2m_blocks_at_snapshot: {
      Normal: num('free_2m_blocks_normal_at_snapshot'),
      DMA32: num('free_2m_blocks_dma32_at_snapshot'),
    },
    normal_managed: {
      at_snapshot: m0,
      after_first_write: num('normal_managed_after_first_write'),
      after_second_write: num('normal_managed_after_second_write'),
      after_compaction_first_write: num('normal_managed_after_compaction_first_write'),
      after_compaction_second_write: num('normal_managed_after_compaction_second_write'),
    },
    /** Pages zone Normal grew by during each write (deferred_init=lazy), 32768 per 128 MiB section. */
    normal_growth_pages: {
      first_write: num('normal_managed_after_first_write') - m0,
      second_write: num('normal_managed_after_second_write') - num('normal_managed_after_first_write'),
      after_compaction_first_write:
        num('normal_managed_after_compaction_first_write') - num('normal_managed_after_second_write'),
      after_compaction_second_write:
        num('normal_managed_after_compaction_second_write') -
        num('normal_managed_after_compaction_first_write'),
    },
    normal_grown_from_pfn: num('normal_grown_from_pfn'),
    /** hugetlb 2 MiB pages per region after each first write (kpageflags); Normal-grown is memory past the snapshot's initialised part. */
    hugetlb_by_region: regions,
    steps,
    qemu_processes_at_start: num('qemu_processes_at_start'),
    settle_ms: num('settle_ms'),
    normal_pcp_pages_at_start: num('normal_pcp_pages_at_start'),
    nr_hugepages_at_start: num('nr_hugepages_at_start'),
  },
  bytes: {
    snapshot: snapBytes(''),
    snapshot_kpage_gz: snapBytes('proc/kpageflags.gz') + snapBytes('proc/kpagecount.gz'),
    result: bytes(R),
  },
};
console.log(JSON.stringify(result, null, 2));
