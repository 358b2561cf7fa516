/**
 * compare: the table of docs/fidelity.md, "Host: predicted against actual": each host run's
 * measurement next to what mapcontig predicts from the run's own snapshot.
 *
 *   npx tsx fidelity/host/compare.ts [RUN_DIR ...] [--json]
 *
 * RUN_DIRs default to fidelity/host/runs/*. Each run's snapshot.tar.gz is read and imported once
 * (importSnapshot); the prediction is predictHugepages(imported, { count: asked }). The same
 * protocol is then replayed on a clone of the import to read what predictHugepages does not
 * return: the model's free 2 MiB blocks and pcp pages of zone Normal at import (next to the
 * snapshot's), how many 128 MiB sections Normal grows by in the model's first write and in its
 * first write after compact_memory, and what its compact_memory migrated.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Machine } from '../../src/sim/machine.ts';
import { type Imported, importSnapshot } from '../../src/snapshot/import.ts';
import { type HugepagesPrediction, predictHugepages } from '../../src/snapshot/predict.ts';
import { readSnapshot } from '../../src/snapshot/read.ts';

const here = dirname(fileURLToPath(import.meta.url));

const args = process.argv.slice(2);
const json = args.includes('--json');
let runs = args.filter((a) => !a.startsWith('--'));
if (runs.length === 0) {
  const d = join(here, 'runs');
  const key = (n: string): [string, number] => [n.replace(/-\d+$/, ''), Number(/-(\d+)$/.exec(n)?.[1] ?? 0)];
  runs = readdirSync(d)
    .filter((n) => existsSync(join(d, n, 'result.json')))
    .sort((a, b) => {
      const [sa, na] = key(a);
      const [sb, nb] = key(b);
      return sa === sb ? na - nb : sa < sb ? -1 : 1;
    })
    .map((n) => join(d, n));
}

/** The lines of zone Normal's block in a zoneinfo text. */
function normalBlock(zoneinfo: string): string {
  const at = zoneinfo.search(/^Node \d+, zone\s+Normal$/m);
  if (at < 0) throw new Error('zoneinfo has no zone Normal');
  const rest = zoneinfo.slice(at + 1);
  const end = rest.search(/^Node \d+, zone/m);
  return end < 0 ? rest : rest.slice(0, end);
}
/** zone Normal's managed pages and pcp pages (all CPUs) of a zoneinfo text. */
function normalOf(zoneinfo: string): { managed: number; pcp: number } {
  const z = normalBlock(zoneinfo);
  return {
    managed: Number(/\bmanaged\s+(\d+)/.exec(z)?.[1]),
    pcp: [...z.matchAll(/^\s+count:\s+(\d+)/gm)].reduce((n, m) => n + Number(m[1]), 0),
  };
}
/** Free 2 MiB blocks (order 9 + 2 × order 10) of zone Normal in a buddyinfo text. */
function free2mNormal(buddyinfo: string): number {
  const l = buddyinfo.split('\n').find((x) => /zone\s+Normal\s/.test(x));
  const n = (l ?? '')
    .replace(/^.*Normal\s+/, '')
    .trim()
    .split(/\s+/)
    .map(Number);
  return (n[9] ?? 0) + 2 * (n[10] ?? 0);
}

interface ModelDetail {
  free2m_normal_import: number;
  pcp_pages_normal_import: number;
  delivered: number;
  growth_sections_first_write: number;
  free2m_normal_after_compact: number;
  delivered_after: number;
  growth_sections_after_compaction: number;
  pages_migrated_by_compact_memory: number;
}

/** The protocol replayed on a clone of the imported machine, reading what the model's files say. */
function modelDetail(imported: Imported, asked: number): ModelDetail {
  const m: Machine = imported.machine.clone();
  const hp = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';
  const before = m.readFile(hp).trim();
  const migrated = () => Number(/^pgmigrate_success (\d+)/m.exec(m.readFile('/proc/vmstat'))?.[1] ?? 0);
  const z0 = normalOf(m.readFile('/proc/zoneinfo'));
  const b0 = free2mNormal(m.readFile('/proc/buddyinfo'));
  m.writeFile(hp, String(asked));
  const delivered = Number(m.readFile(hp));
  const z1 = normalOf(m.readFile('/proc/zoneinfo'));
  m.writeFile(hp, String(asked));
  m.writeFile(hp, before);
  const z2 = normalOf(m.readFile('/proc/zoneinfo'));
  const mig0 = migrated();
  m.writeFile('/proc/sys/vm/compact_memory', '1');
  const mig1 = migrated();
  const b3 = free2mNormal(m.readFile('/proc/buddyinfo'));
  m.writeFile(hp, String(asked));
  const after = Number(m.readFile(hp));
  const z3 = normalOf(m.readFile('/proc/zoneinfo'));
  m.writeFile(hp, before);
  return {
    free2m_normal_import: b0,
    pcp_pages_normal_import: z0.pcp,
    delivered,
    growth_sections_first_write: (z1.managed - z0.managed) / 32768,
    free2m_normal_after_compact: b3,
    delivered_after: after,
    growth_sections_after_compaction: (z3.managed - z2.managed) / 32768,
    pages_migrated_by_compact_memory: mig1 - mig0,
  };
}

interface Row {
  run: string;
  shape: string;
  budget_mib: number;
  memfree_mib_at_snapshot: number;
  normal_pcp_mib_at_snapshot: number;
  free2m_normal_at_snapshot: number;
  free2m_normal_at_write: number;
  asked: number;
  delivered: [number, number];
  from_initialised_normal: number | null;
  from_grown_normal: number | null;
  growth_sections_first_write: number;
  delivered_after: [number, number];
  growth_sections_after_compaction: number;
  free2m_normal_after_compact: number;
  compact_memory_ms: number;
  real_pages_migrated_by_compact_memory: number;
  predicted: { asked: number; now: number; after_compaction: number; writes: number[] };
  model: ModelDetail;
  import_ms: number;
}

const rows: Row[] = [];
for (const run of runs) {
  const r = JSON.parse(readFileSync(join(run, 'result.json'), 'utf8'));
  const h = r.host;
  const snapshot = await readSnapshot(join(run, 'snapshot.tar.gz'));
  const meminfo = snapshot.meminfo ?? {};
  const t = performance.now();
  const imported = importSnapshot(snapshot);
  const import_ms = Math.round(performance.now() - t);
  const asked: number = r.hugepages.asked;
  const p: HugepagesPrediction = predictHugepages(imported, { count: asked });
  const reg = h.hugetlb_by_region?.['after-hugepages'] ?? {};
  const sec = (pages: number) => Math.round((pages / 32768) * 10) / 10;
  const pcpPages = snapshot.zoneinfo
    .filter((z) => z.zone === 'Normal')
    .reduce((s, z) => s + z.pagesets.reduce((n, c) => n + c.count, 0), 0);
  rows.push({
    run: basename(run),
    shape: r.shape,
    budget_mib: Math.round(r.fragment.budget_kib / 1024),
    memfree_mib_at_snapshot: Math.round((meminfo.MemFree ?? Number.NaN) / 1024),
    normal_pcp_mib_at_snapshot: Math.round((pcpPages * 4) / 1024),
    free2m_normal_at_snapshot: h.free_2m_blocks_at_snapshot.Normal,
    free2m_normal_at_write: h.steps['before-hugepages'].free_2m_blocks.Normal,
    asked,
    delivered: [
      r.hugepages.delivered_before_compaction,
      r.hugepages.delivered_before_compaction_second_write,
    ],
    from_initialised_normal: reg.Normal ?? null,
    from_grown_normal: reg.Normal === undefined ? null : (reg['Normal-grown'] ?? 0),
    growth_sections_first_write: sec(h.normal_growth_pages.first_write),
    delivered_after: [
      r.hugepages.delivered_after_compaction,
      r.hugepages.delivered_after_compaction_second_write,
    ],
    growth_sections_after_compaction: sec(h.normal_growth_pages.after_compaction_first_write),
    free2m_normal_after_compact: h.steps['after-compact'].free_2m_blocks.Normal,
    compact_memory_ms: r.host_ms.compact_memory,
    real_pages_migrated_by_compact_memory:
      h.steps['after-compact'].pgmigrate_success - h.steps['after-free'].pgmigrate_success,
    predicted: {
      asked,
      now: p.now,
      after_compaction: p.after_compaction,
      writes: p.writes.map((w) => w.delivered),
    },
    model: modelDetail(imported, asked),
    import_ms,
  });
}

if (json) {
  for (const row of rows) console.log(JSON.stringify(row));
} else {
  const signed = (d: number) => (d > 0 ? `+${d}` : d < 0 ? `${d}` : '±0');
  const head = [
    'run',
    'Normal free 2M: snapshot / at write / model at import',
    'Normal pcp MiB: snapshot / model',
    'asked N',
    'delivered 1st/2nd',
    'predicted now',
    'of which initialised / grown Normal',
    'Normal grew (sections): real / model',
    'after compact: delivered 1st/2nd',
    'predicted after compaction',
    'grew after compaction: real / model',
    'Normal free 2M after compact_memory: real / model',
    'compact_memory migrated: real / model',
  ];
  console.log(`| ${head.join(' | ')} |`);
  console.log(`|${head.map(() => ' --- ').join('|')}|`);
  for (const x of rows) {
    const d = x.model;
    const cells = [
      x.run,
      `${x.free2m_normal_at_snapshot} / ${x.free2m_normal_at_write} / ${d.free2m_normal_import}`,
      `${x.normal_pcp_mib_at_snapshot} / ${Math.round((d.pcp_pages_normal_import * 4) / 1024)}`,
      x.asked,
      x.delivered.join('/'),
      `${x.predicted.now} (${signed(x.predicted.now - x.delivered[0])})`,
      x.from_initialised_normal === null ? '?' : `${x.from_initialised_normal} / ${x.from_grown_normal}`,
      `${x.growth_sections_first_write} / ${d.growth_sections_first_write}`,
      x.delivered_after.join('/'),
      `${x.predicted.after_compaction} (${signed(x.predicted.after_compaction - x.delivered_after[0])})`,
      `${x.growth_sections_after_compaction} / ${d.growth_sections_after_compaction}`,
      `${x.free2m_normal_after_compact} / ${d.free2m_normal_after_compact}`,
      `${x.real_pages_migrated_by_compact_memory} / ${d.pages_migrated_by_compact_memory}`,
    ];
    console.log(`| ${cells.join(' | ')} |`);
  }
}
