/**
 * The report folder of a scenario run: every file is there, says what the RunResult says, parses
 * (JSON, RFC 4180 CSV, XML), and comes out byte-identical when written again.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { XMLValidator } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { csvField, toCsv } from '../../src/report/csv.ts';
import { mdEscape } from '../../src/report/document.ts';
import { PROBE_COLUMNS, renderRunSummary, runAnswer, writeRunReport } from '../../src/report/run_report.ts';
import '../../src/workload/models.ts';
import { format_trace } from '../../src/workload/plot_fragmentation.ts';
import { type RunResult, runScenario } from '../../src/workload/run.ts';
import { parseScenario } from '../../src/workload/scenario.ts';

/** Two requests (2 MiB fits the RFC POC's one buddy block, 8 MiB does not: ENOMEM), and a
 * comparison where rfc-poc fails (ENOMEM), the root-only /dev/contig0 refuses uid 1000 (EACCES)
 * and rfc succeeds. */
const SCENARIO = `name: tiny-report
description: a short run with a failing and a succeeding request, for the report tests
seed: 5
machine: { memory: 256M, cpus: 2, map_contig: rfc-poc }
phases:
  - name: warm
    duration: 2min
    workloads:
      - model: anon-churn
        params: { rss: 16M, processes: 2, lifetime: 1min }
      - model: page-cache
        params: { working_set: 64M, read_mb_s: 20 }
events:
  - { at: 0, action: spawn, name: app }
  - { at: 1min, action: map_contig, bytes: 2M }
  - { at: 2min, action: map_contig, bytes: 8M }
sample:
  every: 30s
  counters: [nr_free_pages, compact_stall]
  metrics: [largest_free_block, mixed_pageblocks]
  files: [/proc/buddyinfo]
compare:
  request: { bytes: 8M }
  policies: [rfc-poc, rfc, device]
`;

const PLOTS = ['blocks_by_occupant', 'collateral', 'fragmentation', 'free_by_order', 'requests'].map(
  (p) => `plots/${p}.svg`,
);
const FILES = [
  'comparison.csv',
  'events.csv',
  'fragmentation.json',
  ...PLOTS,
  'report.html',
  'report.md',
  'run.json',
  'samples.csv',
  'scenario.yaml',
].sort();

let result: RunResult;
let tmp: string;
let dir: string;
let written: string[];
/** What Vega and Vega-Lite said while rendering: a spec mistake shows up here. */
let warnings: unknown[][];

beforeAll(async () => {
  result = runScenario(parseScenario(SCENARIO, 'tiny-report.yaml'));
  tmp = mkdtempSync(join(tmpdir(), 'mapcontig-report-'));
  dir = join(tmp, 'a', 'b'); // parents are created
  const warn = vi.spyOn(console, 'warn');
  const error = vi.spyOn(console, 'error');
  try {
    written = await writeRunReport(dir, result, { scenarioText: SCENARIO });
  } finally {
    warnings = [...warn.mock.calls, ...error.mock.calls];
    warn.mockRestore();
    error.mockRestore();
  }
}, 60_000);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const read = (name: string, d = dir): string => readFileSync(join(d, name), 'utf8');

function listFiles(d: string): string[] {
  const out: string[] = [];
  const walk = (p: string): void => {
    for (const e of readdirSync(p)) {
      const q = join(p, e);
      if (statSync(q).isDirectory()) walk(q);
      else out.push(relative(d, q));
    }
  };
  walk(d);
  return out.sort();
}

/** An RFC 4180 reader, strict: CRLF records, quoted fields with doubled quotes, equal widths. */
function parseCsv(text: string): string[][] {
  expect(text.endsWith('\r\n')).toBe(true);
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === '"' && field === '') {
      let j = i + 1;
      for (;;) {
        if (j >= text.length) throw new Error(`unterminated quote at ${i}`);
        if (text[j] === '"' && text[j + 1] === '"') {
          field += '"';
          j += 2;
        } else if (text[j] === '"') break;
        else field += text[j++];
      }
      i = j + 1;
      if (text[i] !== ',' && text[i] !== '\r') throw new Error(`text after a closing quote at ${i}`);
    } else if (c === ',') {
      row.push(field);
      field = '';
      i++;
    } else if (c === '\r') {
      expect(text[i + 1]).toBe('\n');
      row.push(field);
      rows.push(row);
      row = [];
      field = '';
      i += 2;
    } else {
      if (c === '"' || c === '\n') throw new Error(`bare ${JSON.stringify(c)} at ${i}`);
      field += c;
      i++;
    }
  }
  for (const r of rows) expect(r.length).toBe(rows[0].length);
  return rows;
}

/** The text of every <text> element of an SVG, entities decoded. */
function svgTexts(svg: string): string[] {
  const decode = (s: string): string =>
    s
      .replace(/&#(\d+);/g, (_, n) => String.fromCharCode(Number(n)))
      .replaceAll('&lt;', '<')
      .replaceAll('&gt;', '>')
      .replaceAll('&quot;', '"')
      .replaceAll('&apos;', "'")
      .replaceAll('&amp;', '&');
  return [...svg.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) => decode(m[1]));
}

describe('the report folder', () => {
  it('renders without a warning from Vega or Vega-Lite', () => {
    expect(warnings).toEqual([]);
  });

  it('has every file, in nested folders it created, and says so', () => {
    expect(written).toEqual(FILES);
    expect(listFiles(dir)).toEqual(FILES);
    expect(read('scenario.yaml')).toBe(SCENARIO);
  });

  it('run.json is the RunResult, round-tripping', () => {
    const text = read('run.json');
    expect(text).toBe(`${JSON.stringify(result, null, 2)}\n`);
    expect(JSON.parse(text)).toEqual(result);
  });

  it('fragmentation.json is the plot-fragmentation trace', () => {
    expect(read('fragmentation.json')).toBe(format_trace(result.fragmentation));
    expect(JSON.parse(read('fragmentation.json')).metadata.total_events).toBe(
      result.fragmentation.events.length,
    );
  });

  it('samples.csv has a column per series and a row per sample', () => {
    const [head, ...rows] = parseCsv(read('samples.csv'));
    const s = result.samples;
    expect(rows.length).toBe(s.t_ns.length);
    expect(s.t_ns.length).toBe(5); // 0, 30 s, … 2 min
    expect(head.slice(0, 3)).toEqual(['t_s', 'unusable_index', 'fragmentation_index']);
    for (let o = 0; o <= 10; o++) expect(head).toContain(`free_blocks_order_${o}`);
    expect(head).toEqual(
      expect.arrayContaining(['blocks_free', 'blocks_movable', 'blocks_pinned', 'blocks_kernel']),
    );
    for (const t of result.migratetypes) expect(head).toContain(`pageblocks_${t.toLowerCase()}`);
    for (const k of [...Object.keys(s.metrics), ...Object.keys(s.counters)]) expect(head).toContain(k);
    expect(head.some((h) => h.includes('buddyinfo'))).toBe(false); // file texts stay in run.json
    expect(head.length).toBe(3 + 11 + 4 + result.migratetypes.length + 2 + 2);
    const col = (name: string): number[] => rows.map((r) => Number(r[head.indexOf(name)]));
    expect(col('t_s')).toEqual(s.t_ns.map((t) => t / 1e9));
    expect(col('unusable_index')).toEqual(s.unusable_index);
    expect(col('free_blocks_order_3')).toEqual(s.free_by_order.map((f) => f[3]));
    expect(col('blocks_kernel')).toEqual(s.blocks_by_occupant.map((b) => b[3]));
    expect(col('nr_free_pages')).toEqual(s.counters.nr_free_pages);
    expect(col('largest_free_block')).toEqual(s.metrics.largest_free_block);
  });

  it('events.csv has a row per event, with the failing one’s errno', () => {
    const [head, ...rows] = parseCsv(read('events.csv'));
    expect(rows.length).toBe(result.events.length);
    const at = (r: string[], k: string): string => r[head.indexOf(k)];
    expect(rows.map((r) => [at(r, 'action'), at(r, 'ok'), at(r, 'errno')])).toEqual([
      ['spawn', 'true', ''],
      ['map_contig', 'true', ''],
      ['map_contig', 'false', 'ENOMEM'],
    ]);
    expect(at(rows[0], 'latency_ns')).toBe(''); // no cost for a spawn
    expect(Number(at(rows[1], 'latency_ns'))).toBe(result.events[1].cost?.latency_ns);
    expect(Number(at(rows[1], 'segments'))).toBe(1);
    // The error message has commas and parentheses: quoted, and read back whole.
    expect(at(rows[2], 'detail')).toBe(result.events[2].detail);
    expect(result.events[2].detail).toContain(',');
  });

  it('comparison.csv has a row per contender and every collateral leaf', () => {
    const [head, ...rows] = parseCsv(read('comparison.csv'));
    const cmp = result.comparison;
    if (!cmp?.baseline) throw new Error('the scenario must compare with a probe');
    expect(rows.map((r) => r[0])).toEqual(['rfc-poc', 'rfc', 'device']);
    const at = (r: string[], k: string): string => r[head.indexOf(k)];
    expect(rows.map((r) => at(r, 'errno'))).toEqual(['ENOMEM', '', 'EACCES']);
    expect(rows.map((r) => at(r, 'ok'))).toEqual(['false', 'true', 'false']);
    const rfc = cmp.results[1];
    expect(Number(at(rows[1], 'segments'))).toBe(rfc.benefit[0].segments);
    expect(Number(at(rows[1], 'mtt_entries'))).toBe(rfc.benefit[0].mtt_entries);
    expect(Number(at(rows[1], 'pages_migrated'))).toBe(rfc.cost?.pages_migrated);
    expect(at(rows[1], 'summary')).toBe(rfc.summary);
    // Every number of the probe's result has a column, so none is silently left out.
    const leaves = (o: unknown): number =>
      typeof o === 'number' ? 1 : Object.values(o as object).reduce((n: number, v) => n + leaves(v), 0);
    expect(PROBE_COLUMNS.length).toBe(leaves(cmp.baseline));
    expect(head.filter((h) => h.startsWith('collateral_')).length).toBe(PROBE_COLUMNS.length);
    expect(Number(at(rows[1], 'collateral_thp_fallback_rate'))).toBe(rfc.collateral?.thp.fallback_rate);
  });

  it('every plot is well-formed XML with its series and axis titles', () => {
    const expected: Record<string, string[]> = {
      'plots/free_by_order.svg': [
        'Free pages by order',
        'free pages (4 KiB)',
        'time (s)',
        'order',
        '0',
        '10',
      ],
      'plots/fragmentation.svg': ['index', 'time (s)', 'unusable index', 'fragmentation index'],
      'plots/blocks_by_occupant.svg': ['2 MiB blocks', 'time (s)', 'free', 'movable', 'pinned', 'kernel'],
      'plots/requests.svg': [
        'latency (ms)',
        'compare: rfc-poc',
        'compare: rfc',
        'compare: device',
        'ENOMEM',
        'EACCES',
        'ok, 1 segment',
        'failed',
      ],
      'plots/collateral.svg': [
        'THP fallback (pp)',
        'kernel high-order failures',
        'reclaim: pages scanned',
        'rfc',
      ],
    };
    for (const file of PLOTS) {
      const svg = read(file);
      expect(XMLValidator.validate(svg), file).toBe(true);
      expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"'), file).toBe(true);
      expect(svgTexts(svg), file).toEqual(expect.arrayContaining(expected[file]));
    }
    // The map_contig events are bars too, labelled with their time.
    expect(svgTexts(read('plots/requests.svg')).some((t) => t.startsWith('120 s: map_contig 8M'))).toBe(true);
  });

  it('report.md and report.html answer the question, with the failing errno', () => {
    const md = read('report.md');
    const html = read('report.html');
    expect(md).toContain('map_contig 8M as uid 1000 failed with ENOMEM');
    expect(html).toContain('map_contig 8M as uid 1000 failed with ENOMEM');
    expect(md).toMatch(/\| 120 s \| map_contig 8M as uid 1000 \| ENOMEM \|/);
    for (const line of runAnswer(result)) {
      expect(md).toContain(`- ${mdEscape(line)}`);
      expect(html).toContain(`<li>${line.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)}</li>`);
    }
    expect(runAnswer(result)).toEqual(
      expect.arrayContaining([
        'Failed: rfc-poc (ENOMEM), device (EACCES).',
        'Physically contiguous (one segment): rfc.',
      ]),
    );
    for (const p of PLOTS) {
      expect(md).toContain(`](${p})`);
      expect(html).toContain(`<img src="${p}"`);
    }
    // The comparison's terminal tables, as they are.
    expect(md).toContain('│ rfc-poc   │ ENOMEM │');
    expect(html).toContain('│ device    │ EACCES │');
    expect(html.startsWith('<!DOCTYPE html>')).toBe(true);
    expect(XMLValidator.validate(html.replace('<!DOCTYPE html>\n', ''))).toBe(true);
  });

  it('writing again gives the same bytes, in a new folder or over the old one', async () => {
    const again = join(tmp, 'again');
    await writeRunReport(again, structuredClone(result), { scenarioText: SCENARIO });
    await writeRunReport(dir, result, { scenarioText: SCENARIO });
    for (const f of FILES)
      expect(readFileSync(join(again, f)).equals(readFileSync(join(dir, f))), f).toBe(true);
  });

  it('a run without comparison or requests drops their plots and keeps a bare comparison.csv', async () => {
    const bare = join(tmp, 'bare');
    await writeRunReport(bare, result, { scenarioText: SCENARIO });
    const none: RunResult = { ...result, comparison: null, events: [] };
    const files = await writeRunReport(bare, none);
    expect(listFiles(bare)).toEqual(files);
    expect(files).not.toContain('plots/requests.svg');
    expect(files).not.toContain('plots/collateral.svg');
    expect(files).not.toContain('scenario.yaml');
    expect(parseCsv(read('comparison.csv', bare)).length).toBe(1);
    expect(read('report.md', bare)).toContain('The run made no contiguous request');
  });
});

describe('renderRunSummary', () => {
  it('prints the events, the comparison and the answer, without colours', () => {
    const text = renderRunSummary(result);
    // The memory the kernel sees: 256 MiB less the e820 holes.
    expect(text.split('\n')[0]).toMatch(/^tiny-report: 120 s simulated on 255\.\d MiB, 2 CPUs, seed 5$/);
    expect(text).toContain('map_contig 8M as uid 1000');
    expect(text).not.toContain('spawn app');
    expect(text).toContain('(and 1 process or device event, all ok: see events.csv)');
    expect(text).toMatch(/│ rfc-poc +│ ENOMEM/);
    expect(text).toContain('- Failed: rfc-poc (ENOMEM), device (EACCES).');
    // biome-ignore lint/suspicious/noControlCharactersInRegex: looking for ANSI escapes
    expect(text).not.toMatch(/\u001b\[/);
  });
});

describe('CSV fields', () => {
  it('are quoted only when RFC 4180 needs it, quotes doubled', () => {
    expect(['a', 'a,b', 'say "hi"', 'two\nlines', 'cr\r', '', null, 1.5, false].map(csvField)).toEqual([
      'a',
      '"a,b"',
      '"say ""hi"""',
      '"two\nlines"',
      '"cr\r"',
      '',
      '',
      '1.5',
      'false',
    ]);
    expect(parseCsv(toCsv(['x', 'y'], [['a,"b"', 'c\r\nd']]))).toEqual([
      ['x', 'y'],
      ['a,"b"', 'c\r\nd'],
    ]);
    expect(() => toCsv(['x', 'y'], [['only one']])).toThrow(RangeError);
  });
});
