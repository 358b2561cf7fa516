/**
 * The report folder of a scenario run (docs/reports.md): the RunResult as JSON, its samples,
 * events and comparison as CSV, the fragmentation trace in mcgrof/plot-fragmentation's schema, a
 * Markdown and an HTML report saying the same thing, and SVG plots. Everything is a function of
 * the RunResult alone: no wall clock, no random ids, keys in a fixed order, so the same result
 * gives the same bytes.
 *
 * Also the short summary `mapcontig run` prints on the terminal (renderRunSummary).
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import Table from 'cli-table3';
import type { ProbeResult } from '../contig/collateral.ts';
import type { ContenderResult, RequestCost } from '../contig/compare.ts';
import { fmt_bytes } from '../contig/device.ts';
import { formatDuration } from '../lib/duration.ts';
import { NR_PAGE_ORDERS } from '../mm/mmzone.ts';
import { format_trace } from '../workload/plot_fragmentation.ts';
import type { EventResult, RunResult } from '../workload/run.ts';
import { ms, renderBenefitTable, renderCollateralTable, renderCostTable } from './comparison.ts';
import { type CsvValue, toCsv } from './csv.ts';
import { type Block, toHtml, toMarkdown } from './document.ts';
import { formatAt, type RenderedPlot, renderRunPlots } from './plots.ts';

export interface RunReportOptions {
  /** The scenario file's text: copied to scenario.yaml so the folder says how to re-run it. */
  scenarioText?: string;
}

const plural = (n: number, word: string): string => `${n} ${word}${n === 1 ? '' : 's'}`;

// ---------------------------------------------------------------------------------------------
// CSV

/** Cost columns of events.csv and comparison.csv, in RequestCost's order (counters: run.json). */
const COST_COLUMNS = [
  'latency_ns',
  'process_ns',
  'kthread_ns',
  'elapsed_ns',
  'pages_migrated',
  'migrate_failed',
  'compact_migrate_scanned',
  'compact_free_scanned',
  'compact_stalls',
  'pgscan',
  'pgsteal',
  'allocstalls',
] as const satisfies ReadonlyArray<Exclude<keyof RequestCost, 'vmstat'>>;

const costCells = (c: RequestCost | null): CsvValue[] => COST_COLUMNS.map((k) => c?.[k] ?? null);

/** Every leaf of the collateral probe's result, as collateral_<column> in comparison.csv. */
export const PROBE_COLUMNS: ReadonlyArray<readonly [string, (p: ProbeResult) => number]> = [
  ['thp_extents', (p) => p.thp.extents],
  ['thp_fault_alloc', (p) => p.thp.thp_fault_alloc],
  ['thp_fault_fallback', (p) => p.thp.thp_fault_fallback],
  ['thp_fallback_rate', (p) => p.thp.fallback_rate],
  ['thp_fault_ns', (p) => p.thp.fault_ns],
  ['kernel_atomic_attempts', (p) => p.kernel.atomic_attempts],
  ['kernel_atomic_failures', (p) => p.kernel.atomic_failures],
  ['kernel_noretry_attempts', (p) => p.kernel.noretry_attempts],
  ['kernel_noretry_failures', (p) => p.kernel.noretry_failures],
  ['kernel_failure_rate', (p) => p.kernel.failure_rate],
  ['reclaim_pgscan_kswapd', (p) => p.reclaim.pgscan_kswapd],
  ['reclaim_pgscan_direct', (p) => p.reclaim.pgscan_direct],
  ['reclaim_pgsteal_kswapd', (p) => p.reclaim.pgsteal_kswapd],
  ['reclaim_pgsteal_direct', (p) => p.reclaim.pgsteal_direct],
  ['reclaim_allocstalls', (p) => p.reclaim.allocstalls],
  ['compaction_stalls', (p) => p.compaction.stalls],
  ['compaction_fails', (p) => p.compaction.fails],
  ['compaction_successes', (p) => p.compaction.successes],
  ['compaction_migrate_scanned', (p) => p.compaction.migrate_scanned],
  ['compaction_free_scanned', (p) => p.compaction.free_scanned],
  ['compaction_pages_migrated', (p) => p.compaction.pages_migrated],
  ['highatomic_pageblocks_max', (p) => p.highatomic.pageblocks_max],
  ['highatomic_pageblocks_end', (p) => p.highatomic.pageblocks_end],
  ['highatomic_limit_pageblocks', (p) => p.highatomic.limit_pageblocks],
  ['page_cache_bytes_read', (p) => p.page_cache.bytes_read],
  ['page_cache_reader_ns', (p) => p.page_cache.reader_ns],
  ['oom_kills', (p) => p.oom_kills],
];

/** One line per sample time; sampled file texts stay in run.json. */
export function samplesCsv(r: RunResult): string {
  const s = r.samples;
  const header = [
    't_s',
    'unusable_index',
    'fragmentation_index',
    ...Array.from({ length: NR_PAGE_ORDERS }, (_, o) => `free_blocks_order_${o}`),
    // run.ts samples occupants as [free, movable, pinned, kernel].
    'blocks_free',
    'blocks_movable',
    'blocks_pinned',
    'blocks_kernel',
    ...r.migratetypes.map((t) => `pageblocks_${t.toLowerCase()}`),
  ];
  // Metrics and counters keep their own names; one that would repeat a column gets a prefix.
  const metrics = Object.keys(s.metrics).map((k) => ({
    col: header.includes(k) ? `metric_${k}` : k,
    series: s.metrics[k],
  }));
  header.push(...metrics.map((m) => m.col));
  const counters = Object.keys(s.counters).map((k) => ({
    col: header.includes(k) ? `vmstat_${k}` : k,
    series: s.counters[k],
  }));
  header.push(...counters.map((c) => c.col));
  const rows = s.t_ns.map((t, i) => [
    t / 1e9,
    s.unusable_index[i],
    s.fragmentation_index[i],
    ...Array.from({ length: NR_PAGE_ORDERS }, (_, o) => s.free_by_order[i][o] ?? null),
    ...s.blocks_by_occupant[i],
    ...r.migratetypes.map((_, k) => s.pageblocks_by_type[i][k] ?? null),
    ...metrics.map((m) => m.series[i]),
    ...counters.map((c) => c.series[i]),
  ]);
  return toCsv(header, rows);
}

export function eventsCsv(r: RunResult): string {
  const header = ['t_s', 'action', 'what', 'ok', 'errno', 'detail', 'segments', ...COST_COLUMNS];
  const rows = r.events.map((e) => [
    e.at_ns / 1e9,
    e.action,
    e.what,
    e.ok,
    e.errno,
    e.detail,
    e.segments,
    ...costCells(e.cost),
  ]);
  return toCsv(header, rows);
}

const BENEFIT_COLUMNS = [
  'device',
  'device_usable',
  'segments',
  'largest_segment_bytes',
  'sg_entries',
  'mtt_page_size',
  'mtt_entries',
  'iommu_ptes',
  'iotlb_misses',
  'cpu_tlb_coverage',
  'efficiency',
];

function benefitCells(c: ContenderResult): CsvValue[] {
  const b = c.benefit[0];
  if (!b) return BENEFIT_COLUMNS.map(() => null);
  return [
    b.device,
    b.usable,
    b.segments,
    b.largest_segment_bytes,
    b.sg_entries,
    b.mtt_page_size,
    b.mtt_entries,
    b.iommu_ptes.total,
    b.iotlb_misses,
    b.cpu_tlb.coverage,
    b.efficiency,
  ];
}

/** One line per contender (header only when the run made no comparison). */
export function comparisonCsv(r: RunResult): string {
  const header = [
    'contender',
    'summary',
    'skipped',
    'ok',
    'errno',
    'note',
    'len_bytes',
    ...COST_COLUMNS,
    ...BENEFIT_COLUMNS,
    ...PROBE_COLUMNS.map(([k]) => `collateral_${k}`),
  ];
  const rows = (r.comparison?.results ?? []).map((c) => [
    c.name,
    c.summary,
    c.skipped,
    c.ok,
    c.errno,
    c.note,
    c.len,
    ...costCells(c.cost),
    ...benefitCells(c),
    ...PROBE_COLUMNS.map(([, read]) => (c.collateral ? read(c.collateral) : null)),
  ]);
  return toCsv(header, rows);
}

// ---------------------------------------------------------------------------------------------
// The answer: did the requests succeed, at what cost, who paid

/** `text` ending in one full stop. */
const sentence = (text: string): string => text.replace(/[.\s]*$/, '.');

function eventSentence(r: RunResult, e: EventResult): string {
  const when = `At ${formatAt(e.at_ns, r.end_ns)}, ${e.what}`;
  const c = e.cost;
  if (!e.ok)
    return `${when} failed${e.errno ? ` with ${e.errno}` : ''}${c ? ` after ${ms(c.latency_ns)} ms` : ''}: ${sentence(e.detail.replace(`${e.errno}: `, ''))}`;
  if (e.action !== 'map_contig' || !c) return `${when}: ${sentence(e.detail || 'done')}`;
  const paid = [
    c.pages_migrated ? `${plural(c.pages_migrated, 'page')} of other processes migrated` : '',
    c.pgsteal ? `${plural(c.pgsteal, 'page')} reclaimed` : '',
    c.kthread_ns ? `${ms(c.kthread_ns)} ms of kernel threads' CPU` : '',
  ].filter(Boolean);
  return `${when} succeeded (${e.detail}) in ${ms(c.latency_ns)} ms of the requester's time${paid.length ? `; ${paid.join(', ')}` : ''}.`;
}

/** The contender that did the most of `read` (more than 0), as "name (value unit)"; null if none did. */
function worst(rows: ContenderResult[], read: (c: ContenderResult) => number, unit: string): string | null {
  let best: ContenderResult | null = null;
  for (const c of rows) if (read(c) > 0 && (!best || read(c) > read(best))) best = c;
  return best ? `${best.name} (${+read(best).toFixed(1)}${unit})` : null;
}

function comparisonSentences(r: RunResult): string[] {
  const cmp = r.comparison;
  if (!cmp) return [];
  const q = cmp.request;
  const res = cmp.results;
  const ok = res.filter((c) => c.ok);
  const failed = res.filter((c) => !c.ok && !c.skipped);
  const skipped = res.filter((c) => c.skipped);
  const out = [
    `Asked at ${formatAt(cmp.at_ns, r.end_ns)} for ${fmt_bytes(q.bytes)} (uid ${q.uid}, for ${q.devices.join(', ')}), ${ok.length} of ${res.length} contenders got the buffer${ok.length ? `: ${ok.map((c) => c.name).join(', ')}` : ''}.`,
  ];
  if (failed.length)
    out.push(`Failed: ${failed.map((c) => `${c.name} (${c.errno ?? 'no errno'})`).join(', ')}.`);
  if (skipped.length) out.push(`Skipped: ${skipped.map((c) => `${c.name} (${c.skipped})`).join(', ')}.`);
  const dev = q.devices[0];
  const single = ok.filter((c) => c.benefit[0]?.segments === 1).map((c) => c.name);
  if (ok.length && dev)
    out.push(
      single.length
        ? `Physically contiguous (one segment): ${single.join(', ')}.`
        : `No contender got the buffer in one physical segment.`,
    );
  const timed = ok.filter((c) => c.cost);
  if (timed.length) {
    const lat = (c: ContenderResult): number => c.cost?.latency_ns ?? 0;
    const fastest = timed.reduce((a, b) => (lat(b) < lat(a) ? b : a));
    const slowest = timed.reduce((a, b) => (lat(b) > lat(a) ? b : a));
    out.push(
      timed.length === 1
        ? `${fastest.name} took ${ms(lat(fastest))} ms of the requester's time.`
        : `Fastest: ${fastest.name} (${ms(lat(fastest))} ms); slowest: ${slowest.name} (${ms(lat(slowest))} ms).`,
    );
  }
  // Who paid, beyond the requester's own time.
  const paid = [
    worst(res, (c) => c.cost?.pages_migrated ?? 0, ' pages'),
    worst(res, (c) => c.cost?.pgsteal ?? 0, ' pages'),
    worst(res, (c) => (c.cost?.kthread_ns ?? 0) / 1e6, ' ms'),
  ];
  const labels = [
    "other processes' pages migrated, most by",
    'pages reclaimed, most by',
    "kernel threads' CPU, most by",
  ];
  const who = paid.map((w, i) => (w ? `${labels[i]} ${w}` : '')).filter(Boolean);
  if (who.length) out.push(`Who paid besides the requester: ${who.join('; ')}.`);
  if (cmp.baseline) {
    const d = (c: ContenderResult): NonNullable<ContenderResult['collateral']> | null => c.collateral;
    const damage = [
      ['THP fallback', worst(res, (c) => (d(c)?.thp.fallback_rate ?? 0) * 100, ' pp')],
      [
        'kernel high-order failures',
        worst(res, (c) => (d(c)?.kernel.atomic_failures ?? 0) + (d(c)?.kernel.noretry_failures ?? 0), ''),
      ],
      [
        'reclaim (pages scanned)',
        worst(res, (c) => (d(c)?.reclaim.pgscan_kswapd ?? 0) + (d(c)?.reclaim.pgscan_direct ?? 0), ''),
      ],
      ['OOM kills', worst(res, (c) => d(c)?.oom_kills ?? 0, '')],
    ].filter(([, w]) => w);
    out.push(
      damage.length
        ? `The machine's other users, measured by the probe against an untouched copy: ${damage.map(([what, w]) => `${what} rose most under ${w}`).join('; ')}.`
        : "The machine's other users saw no more THP fallback, kernel high-order failures, reclaim or OOM kills than on an untouched copy.",
    );
  }
  return out;
}

/** The plain-language answer, one sentence per line of the report's list. */
export function runAnswer(r: RunResult): string[] {
  const events = r.events.filter((e) => e.action === 'map_contig' || !e.ok).map((e) => eventSentence(r, e));
  const out = [...events, ...comparisonSentences(r)];
  return out.length ? out : ['The run made no contiguous request (no map_contig event, no comparison).'];
}

// ---------------------------------------------------------------------------------------------
// report.md and report.html

function eventRows(r: RunResult, events = r.events): string[][] {
  return events.map((e) => [
    formatAt(e.at_ns, r.end_ns),
    e.what,
    e.ok ? 'ok' : (e.errno ?? 'failed'),
    e.detail,
    e.cost ? ms(e.cost.latency_ns) : '',
    e.cost ? String(e.cost.pages_migrated) : '',
    e.segments === null ? '' : String(e.segments),
  ]);
}

function reportBlocks(
  r: RunResult,
  plots: ReadonlyArray<Omit<RenderedPlot, 'svg'>>,
  files: string[],
): Block[] {
  const m = r.machine;
  const s = r.samples;
  const last = s.t_ns.length - 1;
  const blocks: Block[] = [{ kind: 'heading', level: 1, text: `mapcontig run: ${r.scenario.name}` }];
  if (r.scenario.description) blocks.push({ kind: 'paragraph', text: r.scenario.description });
  blocks.push(
    {
      kind: 'paragraph',
      text: `Seed ${r.scenario.seed}; ${formatAt(r.end_ns, r.end_ns)} of simulated time; ${plural(s.t_ns.length, 'sample')}. Everything here is simulated on a model of Linux 6.18 and follows from the scenario and its seed.`,
    },
    { kind: 'heading', level: 2, text: 'Answer' },
    { kind: 'list', items: runAnswer(r) },
    { kind: 'heading', level: 2, text: 'Machine' },
    {
      kind: 'paragraph',
      text: `${fmt_bytes(m.memory_bytes)} present, ${plural(m.nodes, 'NUMA node')}, ${plural(m.cpus, 'CPU')}.`,
    },
    {
      kind: 'table',
      head: ['node', 'zone', 'present pages', 'size'],
      rows: m.zones.map((z) => [
        String(z.node),
        z.zone,
        String(z.present_pages),
        fmt_bytes(z.present_pages * 4096),
      ]),
      numeric: [true, false, true, true],
    },
    { kind: 'heading', level: 2, text: 'Phases' },
  );
  for (const p of r.phases) {
    blocks.push({
      kind: 'heading',
      level: 3,
      text: `${p.name}: ${formatAt(p.start_ns, r.end_ns)} to ${formatAt(p.end_ns, r.end_ns)}`,
    });
    blocks.push(
      p.workloads.length
        ? {
            kind: 'table',
            head: ['workload', 'report'],
            rows: p.workloads.map((w) => [
              w.model,
              Object.entries(w.report)
                .map(([k, v]) => `${k} ${v}`)
                .join(', '),
            ]),
          }
        : { kind: 'paragraph', text: 'No workloads: the machine idles.' },
    );
  }
  blocks.push({ kind: 'heading', level: 2, text: 'Events' });
  blocks.push(
    r.events.length
      ? {
          kind: 'table',
          head: ['time', 'event', 'result', 'detail', 'latency ms', 'migrated', 'segments'],
          rows: eventRows(r),
          numeric: [true, false, false, false, true, true, true],
        }
      : { kind: 'paragraph', text: 'The scenario has no events.' },
  );
  const cmp = r.comparison;
  if (cmp) {
    blocks.push(
      { kind: 'heading', level: 2, text: 'Comparison' },
      {
        kind: 'paragraph',
        text: `Every contender asked for ${fmt_bytes(cmp.request.bytes)} as uid ${cmp.request.uid}, each on its own exact copy of the machine at ${formatAt(cmp.at_ns, r.end_ns)} (devices: ${cmp.request.devices.join(', ')}).`,
      },
      { kind: 'heading', level: 3, text: 'Cost of the request' },
      { kind: 'pre', text: renderCostTable(cmp) },
      { kind: 'heading', level: 3, text: 'What the devices make of the buffer' },
      { kind: 'pre', text: renderBenefitTable(cmp) },
    );
    if (cmp.baseline)
      blocks.push(
        { kind: 'heading', level: 3, text: 'Collateral damage' },
        {
          kind: 'paragraph',
          text: `A probe workload run for ${formatDuration(cmp.probe.window)} after each request — a THP tenant faulting ${fmt_bytes(cmp.probe.thp_bytes)}, ${cmp.probe.atomic_per_step} GFP_ATOMIC and ${cmp.probe.noretry_per_step} GFP_KERNEL|__GFP_NORETRY order-${cmp.probe.order} allocations per step, a reader streaming ${fmt_bytes(cmp.probe.read_bytes)} through the page cache — minus the same probe on an untouched copy; the first row is the baseline itself.`,
        },
        { kind: 'pre', text: renderCollateralTable(cmp) },
      );
    const notes = cmp.results.filter((c) => c.note || c.skipped);
    if (notes.length)
      blocks.push(
        { kind: 'heading', level: 3, text: 'Notes' },
        {
          kind: 'list',
          items: notes.map((c) => `${c.name}: ${c.skipped ? `skipped: ${c.skipped}` : c.note}`),
        },
      );
  }
  blocks.push({ kind: 'heading', level: 2, text: 'Plots' });
  for (const p of plots)
    blocks.push(
      { kind: 'heading', level: 3, text: p.title },
      { kind: 'image', src: `plots/${p.file}`, alt: p.title },
      { kind: 'paragraph', text: p.caption },
    );
  blocks.push({ kind: 'heading', level: 2, text: 'At the end' });
  if (last >= 0)
    blocks.push({
      kind: 'paragraph',
      text: `Unusable index ${s.unusable_index[last]}, fragmentation index ${s.fragmentation_index[last]}; 2 MiB blocks free ${s.blocks_by_occupant[last][0]}, movable ${s.blocks_by_occupant[last][1]}, pinned ${s.blocks_by_occupant[last][2]}, kernel ${s.blocks_by_occupant[last][3]}.`,
    });
  for (const [path, text] of Object.entries(r.final))
    blocks.push({ kind: 'heading', level: 3, text: path }, { kind: 'pre', text });
  blocks.push(
    { kind: 'heading', level: 2, text: 'Files' },
    { kind: 'list', items: files.map((f) => `${f}: ${FILE_NOTES[f.startsWith('plots/') ? 'plots/' : f]}`) },
  );
  return blocks;
}

const FILE_NOTES: Readonly<Record<string, string>> = {
  'run.json': 'the whole result (mapcontig-run/1)',
  'samples.csv': 'one row per sample time',
  'events.csv': 'one row per event',
  'comparison.csv': 'one row per contender',
  'fragmentation.json': "extfrag and compaction events in mcgrof/plot-fragmentation's schema",
  'scenario.yaml': 'the scenario that was run',
  'report.md': 'this report in Markdown',
  'report.html': 'this report in HTML',
  'plots/': 'an SVG plot shown above',
};

// ---------------------------------------------------------------------------------------------
// The folder

/** Files this module writes; any of them a run does not produce is removed, so none is stale. */
const OPTIONAL = ['scenario.yaml', ...['requests.svg', 'collateral.svg'].map((f) => `plots/${f}`)];

/**
 * Write the report folder for `r` into `dir` (created with its parents; files of an earlier
 * report there are replaced). The data files are written first, so a plot that cannot be drawn
 * loses nothing already computed. Returns the files written, relative to `dir`, sorted.
 */
export async function writeRunReport(
  dir: string,
  r: RunResult,
  opts: RunReportOptions = {},
): Promise<string[]> {
  const files = new Map<string, string>([
    ['run.json', `${JSON.stringify(r, null, 2)}\n`],
    ['samples.csv', samplesCsv(r)],
    ['events.csv', eventsCsv(r)],
    ['comparison.csv', comparisonCsv(r)],
    ['fragmentation.json', format_trace(r.fragmentation)],
  ]);
  if (opts.scenarioText !== undefined) files.set('scenario.yaml', opts.scenarioText);
  const write = (name: string): void => {
    const path = join(dir, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, files.get(name) as string);
  };
  for (const name of files.keys()) write(name);
  const plots = await renderRunPlots(r);
  for (const p of plots) files.set(`plots/${p.file}`, p.svg);
  const names = [...files.keys(), 'report.md', 'report.html'].sort();
  const blocks = reportBlocks(r, plots, names);
  files.set('report.md', toMarkdown(blocks));
  files.set('report.html', toHtml(`mapcontig run: ${r.scenario.name}`, blocks));
  for (const name of names) if (name.startsWith('plots/') || name.startsWith('report.')) write(name);
  for (const name of OPTIONAL) if (!files.has(name)) rmSync(join(dir, name), { force: true });
  return names;
}

// ---------------------------------------------------------------------------------------------
// The terminal summary

const QUIET_ACTIONS: ReadonlySet<EventResult['action']> = new Set(['spawn', 'exit', 'open_device']);

/** What `mapcontig run` prints: the run in a line, its events, the comparison's cost, the answer. */
export function renderRunSummary(r: RunResult): string {
  const m = r.machine;
  const parts = [
    `${r.scenario.name}: ${formatAt(r.end_ns, r.end_ns)} simulated on ${fmt_bytes(m.memory_bytes)}, ${plural(m.cpus, 'CPU')}, seed ${r.scenario.seed}`,
  ];
  // Events that act on memory, and any that failed; starting and ending processes only count.
  const shown = r.events.filter((e) => !e.ok || !QUIET_ACTIONS.has(e.action));
  if (shown.length) {
    const t = new Table({
      head: ['time', 'event', 'result', 'detail', 'latency ms'],
      style: { head: [], border: [] },
    });
    for (const row of eventRows(r, shown)) t.push(row.slice(0, 5));
    parts.push(t.toString());
  }
  const hidden = r.events.length - shown.length;
  if (hidden) parts.push(`(and ${plural(hidden, 'process or device event')}, all ok: see events.csv)`);
  const cmp = r.comparison;
  if (cmp)
    parts.push(
      `Comparison at ${formatAt(cmp.at_ns, r.end_ns)}: ${fmt_bytes(cmp.request.bytes)} for uid ${cmp.request.uid} (${cmp.request.devices.join(', ')})`,
      renderCostTable(cmp),
    );
  parts.push(...runAnswer(r).map((line) => `- ${line}`));
  return parts.join('\n');
}
