/**
 * The plots of a run report (docs/reports.md), as Vega-Lite specifications rendered to SVG by
 * Vega's headless string renderer: no canvas, no DOM, no fonts read from the system (text is
 * measured by Vega's estimate), so the same RunResult gives the same bytes everywhere.
 *
 * Every time plot shares one x axis (simulated time in s, min or h, whichever reads best) and
 * marks the run's requests (map_contig, nr_hugepages, compact_memory events and the comparison)
 * with dashed rules, so a jump in fragmentation can be read against what caused it.
 */
import type { TopLevelSpec } from 'vega-lite';
import type { ContenderResult } from '../contig/compare.ts';
import type { EventResult, RunResult } from '../workload/run.ts';

/** One plot of the report: its file name under plots/, a title and what to read in it. */
export interface PlotSpec {
  file: string;
  title: string;
  caption: string;
  spec: TopLevelSpec;
}

export interface RenderedPlot extends Omit<PlotSpec, 'spec'> {
  svg: string;
}

const WIDTH = 640;
const HEIGHT = 260;

/** Fixed colours so a category keeps its colour from plot to plot and run to run. */
const OUTCOME_COLOURS = { ok: '#4c9a2a', failed: '#d62728', skipped: '#9e9e9e' } as const;
const OCCUPANTS = ['kernel', 'pinned', 'movable', 'free'] as const;
const OCCUPANT_COLOURS = ['#d62728', '#ff7f0e', '#1f77b4', '#4c9a2a'];

/** The unit the time axes use: seconds for short runs, minutes up to 3 h, hours beyond. */
export function timeUnit(end_ns: number): { unit: 's' | 'min' | 'h'; ns: number } {
  if (end_ns >= 3 * 3600e9) return { unit: 'h', ns: 3600e9 };
  if (end_ns >= 180e9) return { unit: 'min', ns: 60e9 };
  return { unit: 's', ns: 1e9 };
}

/** A time on the run's axis, e.g. '10 min', '1.5 h', '42.1 s'. */
export function formatAt(t_ns: number, end_ns: number): string {
  const { unit, ns } = timeUnit(end_ns);
  return `${+(t_ns / ns).toFixed(2)} ${unit}`;
}

/** Actions that change memory on purpose: the time plots mark them. */
const MARKED: ReadonlySet<EventResult['action']> = new Set(['map_contig', 'nr_hugepages', 'compact_memory']);

function markers(r: RunResult, ns: number): Array<{ t: number; what: string }> {
  const out = r.events.filter((e) => MARKED.has(e.action)).map((e) => ({ t: e.at_ns / ns, what: e.what }));
  if (r.comparison) out.push({ t: r.comparison.at_ns / ns, what: 'comparison' });
  return out;
}

const MARKER_NOTE = 'dashed lines: map_contig, nr_hugepages and compact_memory events and the comparison';

/** A time plot: `layer` drawn over the run's time axis, with the request markers on top. */
function timePlot(
  r: RunResult,
  title: string,
  notes: string[],
  layers: Array<Record<string, unknown>>,
): TopLevelSpec {
  const { unit, ns } = timeUnit(r.end_ns);
  const x = {
    field: 't',
    type: 'quantitative',
    title: `time (${unit})`,
    // '~r', not '~g': 120 s reads as 120, not 1.2e+2.
    axis: { format: '~r' },
    scale: { domain: [0, r.end_ns / ns], nice: false },
  };
  const marks = markers(r, ns);
  const layer: Array<Record<string, unknown>> = layers.map((l) => ({
    ...l,
    encoding: { x, ...(l.encoding as Record<string, unknown>) },
  }));
  if (marks.length)
    layer.push({
      data: { values: marks },
      mark: { type: 'rule', strokeDash: [4, 3], color: '#555', opacity: 0.7 },
      encoding: { x },
    });
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: title, subtitle: marks.length ? [MARKER_NOTE, ...notes] : notes, anchor: 'start' },
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    layer,
    // The layers are assembled from parts; vega-lite's compile() checks the result.
  } as unknown as TopLevelSpec;
}

function freeByOrder(r: RunResult): PlotSpec {
  const { ns } = timeUnit(r.end_ns);
  const s = r.samples;
  const values = s.t_ns.flatMap((t, i) =>
    s.free_by_order[i].map((blocks, order) => ({ t: t / ns, order, pages: blocks * 2 ** order })),
  );
  return {
    file: 'free_by_order.svg',
    title: 'Free pages by order over time',
    caption:
      'Free memory of all zones, stacked by the order of the free block it sits in (order 0 = single 4 KiB pages at the bottom, order 10 = 4 MiB blocks at the top). A contiguous request of order n can only come from the bands at n and above, or from compaction and reclaim.',
    spec: timePlot(
      r,
      'Free pages by order',
      [],
      [
        {
          data: { values },
          mark: { type: 'area' },
          encoding: {
            y: { field: 'pages', type: 'quantitative', stack: 'zero', title: 'free pages (4 KiB)' },
            color: {
              field: 'order',
              type: 'ordinal',
              title: 'order',
              scale: { scheme: 'viridis' },
            },
            order: { field: 'order', type: 'quantitative', sort: 'ascending' },
          },
        },
      ],
    ),
  };
}

function fragmentation(r: RunResult): PlotSpec {
  const { ns } = timeUnit(r.end_ns);
  const s = r.samples;
  const values = s.t_ns.flatMap((t, i) => [
    { t: t / ns, index: 'unusable index', value: s.unusable_index[i] },
    { t: t / ns, index: 'fragmentation index', value: s.fragmentation_index[i] },
  ]);
  return {
    file: 'fragmentation.svg',
    title: 'Unusable and fragmentation index over time',
    caption:
      "The kernel's indices at the pageblock order (2 MiB), over all zones. Unusable index: the share of free memory in blocks smaller than 2 MiB (0 = all usable, 1 = none). Fragmentation index: near 1 when a 2 MiB allocation would fail for fragmentation, near 0 when for lack of memory, -1 when it would succeed.",
    spec: timePlot(
      r,
      'Unusable and fragmentation index (order 9)',
      ['fragmentation index -1: a 2 MiB allocation would succeed'],
      [
        {
          data: { values },
          // Points only while they stay apart; the line carries a long series.
          mark: { type: 'line', point: s.t_ns.length <= 60 ? { size: 16 } : false },
          encoding: {
            y: { field: 'value', type: 'quantitative', title: 'index', scale: { domain: [-1, 1] } },
            color: {
              field: 'index',
              type: 'nominal',
              title: null,
              scale: { domain: ['unusable index', 'fragmentation index'], range: ['#1f77b4', '#d62728'] },
            },
          },
        },
      ],
    ),
  };
}

function blocksByOccupant(r: RunResult): PlotSpec {
  const { ns } = timeUnit(r.end_ns);
  const s = r.samples;
  const values = s.t_ns.flatMap((t, i) =>
    OCCUPANTS.map((occupant) => ({
      t: t / ns,
      occupant,
      rank: OCCUPANTS.indexOf(occupant),
      // Samples hold [free, movable, pinned, kernel] (run.ts).
      blocks: s.blocks_by_occupant[i][['free', 'movable', 'pinned', 'kernel'].indexOf(occupant)],
    })),
  );
  return {
    file: 'blocks_by_occupant.svg',
    title: '2 MiB blocks by occupant over time',
    caption:
      'Every 2 MiB block of memory by the worst thing in it: kernel memory (cannot move), pinned pages (cannot move while pinned), movable pages only (migration or reclaim can empty the block), or nothing (free). Only free and movable blocks can become part of a contiguous buffer.',
    spec: timePlot(
      r,
      '2 MiB blocks by occupant',
      [],
      [
        {
          data: { values },
          mark: { type: 'area' },
          encoding: {
            y: { field: 'blocks', type: 'quantitative', stack: 'zero', title: '2 MiB blocks' },
            color: {
              field: 'occupant',
              type: 'nominal',
              title: 'worst occupant',
              scale: { domain: [...OCCUPANTS], range: OCCUPANT_COLOURS },
            },
            order: { field: 'rank', type: 'quantitative', sort: 'ascending' },
          },
        },
      ],
    ),
  };
}

/** One bar of the requests plot. */
interface RequestBar {
  request: string;
  outcome: keyof typeof OUTCOME_COLOURS;
  latency_ms: number;
  label: string;
}

function contenderBar(c: ContenderResult): RequestBar {
  const outcome = c.skipped ? 'skipped' : c.ok ? 'ok' : 'failed';
  const seg = c.benefit[0]?.segments;
  const label = c.skipped
    ? 'skipped'
    : c.ok
      ? `ok${seg === undefined ? '' : `, ${seg} segment${seg === 1 ? '' : 's'}`}`
      : (c.errno ?? 'failed');
  return { request: `compare: ${c.name}`, outcome, latency_ms: (c.cost?.latency_ns ?? 0) / 1e6, label };
}

function eventBar(e: EventResult, end_ns: number): RequestBar {
  const seg = e.segments;
  const label = e.ok
    ? `ok${seg === null ? '' : `, ${seg} segment${seg === 1 ? '' : 's'}`}`
    : (e.errno ?? 'failed');
  return {
    request: `${formatAt(e.at_ns, end_ns)}: ${e.what}`,
    outcome: e.ok ? 'ok' : 'failed',
    latency_ms: (e.cost?.latency_ns ?? 0) / 1e6,
    label,
  };
}

function requests(r: RunResult): PlotSpec | null {
  const bars = [
    ...r.events.filter((e) => e.action === 'map_contig').map((e) => eventBar(e, r.end_ns)),
    ...(r.comparison?.results ?? []).map(contenderBar),
  ];
  if (!bars.length) return null;
  const y = { field: 'request', type: 'nominal', sort: null, title: null };
  return {
    file: 'requests.svg',
    title: 'Request success and latency',
    caption:
      "Each contiguous request of the run: the map_contig events, then the comparison's contenders. The bar is the requester's time in the kernel; the label says whether the buffer was had (and in how many physical segments for the first device) or the errno it failed with.",
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: {
        text: 'Request success and latency',
        subtitle: 'bar: latency; label: outcome',
        anchor: 'start',
      },
      width: 420,
      height: { step: 22 },
      background: 'white',
      config: { axisY: { labelLimit: 360 } },
      data: { values: bars },
      encoding: { y },
      layer: [
        {
          mark: { type: 'bar' },
          encoding: {
            // Room right of the longest bar for its label.
            x: {
              field: 'latency_ms',
              type: 'quantitative',
              title: 'latency (ms)',
              scale: { domain: [0, 1.5 * Math.max(1e-3, ...bars.map((b) => b.latency_ms))] },
            },
            color: {
              field: 'outcome',
              type: 'nominal',
              title: 'outcome',
              scale: { domain: Object.keys(OUTCOME_COLOURS), range: Object.values(OUTCOME_COLOURS) },
            },
          },
        },
        {
          mark: { type: 'text', align: 'left', dx: 4 },
          encoding: {
            x: { field: 'latency_ms', type: 'quantitative' },
            text: { field: 'label', type: 'nominal' },
            // A failure takes next to no time: its label carries the colour its bar cannot.
            color: { field: 'outcome', type: 'nominal' },
          },
        },
      ],
    } as TopLevelSpec,
  };
}

/** The collateral measures plotted, in panel order: a label and how to read it off the difference. */
const COLLATERAL_MEASURES: ReadonlyArray<
  [string, (c: NonNullable<ContenderResult['collateral']>) => number]
> = [
  ['THP fallback (pp)', (c) => c.thp.fallback_rate * 100],
  ['kernel high-order failures', (c) => c.kernel.atomic_failures + c.kernel.noretry_failures],
  ['reclaim: pages scanned', (c) => c.reclaim.pgscan_kswapd + c.reclaim.pgscan_direct],
  ['compaction stalls', (c) => c.compaction.stalls],
];

function collateral(r: RunResult): PlotSpec | null {
  const rows = (r.comparison?.results ?? []).filter((c) => c.collateral);
  if (!rows.length) return null;
  const values = rows.flatMap((c) =>
    COLLATERAL_MEASURES.map(([measure, read]) => {
      const value = read(c.collateral as NonNullable<ContenderResult['collateral']>);
      return { contender: c.name, measure, value, sign: value > 0 ? 'worse' : value < 0 ? 'better' : 'same' };
    }),
  );
  return {
    file: 'collateral.svg',
    title: 'Collateral damage per contender',
    caption:
      "What each contender's request did to the machine's other users: a probe workload (a THP tenant, kernel high-order allocations, a page-cache reader) run after the request, minus the same probe on an untouched copy. Right of zero (red) is damage; left of zero (green) means the probe fared better than on the baseline.",
    spec: {
      $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
      title: {
        text: 'Collateral damage per contender',
        subtitle: 'probe after the request minus probe on an untouched copy',
        anchor: 'start',
      },
      background: 'white',
      data: { values },
      facet: {
        column: {
          field: 'measure',
          type: 'nominal',
          title: null,
          sort: COLLATERAL_MEASURES.map(([m]) => m),
          header: { labelFontSize: 12, labelFontWeight: 'bold' },
        },
      },
      spec: {
        width: 150,
        height: { step: 20 },
        layer: [
          {
            mark: { type: 'bar' },
            encoding: {
              y: { field: 'contender', type: 'nominal', sort: null, title: null },
              x: {
                field: 'value',
                type: 'quantitative',
                title: 'difference from baseline',
                axis: { format: ',~r' },
              },
              color: {
                field: 'sign',
                type: 'nominal',
                title: null,
                scale: { domain: ['worse', 'same', 'better'], range: ['#d62728', '#9e9e9e', '#4c9a2a'] },
              },
            },
          },
          { mark: { type: 'rule', color: '#333' }, encoding: { x: { datum: 0 } } },
        ],
      },
      resolve: { scale: { x: 'independent' } },
    } as TopLevelSpec,
  };
}

/** The report's plots for `r`, in report order; request and collateral plots only when there is data. */
export function runPlotSpecs(r: RunResult): PlotSpec[] {
  return [freeByOrder(r), fragmentation(r), blocksByOccupant(r), requests(r), collateral(r)].filter(
    (p): p is PlotSpec => p !== null,
  );
}

/**
 * Vega-Lite → Vega → SVG text. Vega is loaded on first use (it takes ~0.2 s), so commands that
 * draw nothing do not pay for it. Renders one at a time: the SVG clip and gradient ids are module
 * counters in Vega, reset before each plot so the ids do not depend on what was drawn before.
 *
 * Vega logs a failure inside its dataflow and renders on; here it is an Error naming the plot.
 * Warnings (a spec that Vega reads differently than meant) go to console.warn.
 */
export async function renderSvg(spec: TopLevelSpec, name = 'plot'): Promise<string> {
  const [vega, vl] = await Promise.all([import('vega'), import('vega-lite')]);
  const errors: string[] = [];
  const logger = vega.logger(vega.Warn, undefined, (method, level, args) => {
    const text = `${name}: ${level} ${args.map((a) => (a instanceof Error ? a.message : String(a))).join(' ')}`;
    if (method === 'error') errors.push(text);
    else console.warn(text);
  });
  const view = new vega.View(vega.parse(vl.compile(spec, { logger }).spec), { renderer: 'none', logger });
  vega.resetSVGDefIds();
  try {
    const svg = await view.toSVG();
    if (!errors.length) return `${svg}\n`;
  } catch (e) {
    if (!errors.length) throw e;
  } finally {
    view.finalize();
  }
  throw new Error(`cannot draw ${errors.join('; ')}`);
}

/** Every plot of the report for `r`, rendered. */
export async function renderRunPlots(r: RunResult): Promise<RenderedPlot[]> {
  const out: RenderedPlot[] = [];
  for (const { spec, ...p } of runPlotSpecs(r))
    out.push({ ...p, svg: await renderSvg(spec, `plots/${p.file}`) });
  return out;
}
