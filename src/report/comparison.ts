/**
 * The comparison for people: tables of cost, device benefit and collateral damage, one row per
 * contender (src/contig/compare.ts). Programs should take the Comparison itself, which is plain
 * JSON.
 */
import Table from 'cli-table3';
import type { Comparison, ContenderResult } from '../contig/compare.ts';
import { fmt_bytes } from '../contig/device.ts';
import type { FallbackResult } from '../contig/fallback.ts';

/** Nanoseconds as milliseconds, two decimals below 10 ms. */
export const ms = (ns: number): string => (ns / 1e6).toFixed(ns < 1e7 ? 2 : 1);
const n = (x: number | null | undefined): string => (x === null || x === undefined ? '-' : String(x));
const signed = (x: number, digits = 0): string =>
  (x > 0 ? '+' : '') + (digits ? x.toFixed(digits) : String(x));
const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;

function table(head: string[]): Table.Table {
  // No colours: the output goes to files and CI logs as often as to terminals.
  return new Table({ head, style: { head: [], border: [] } });
}

function outcome(r: ContenderResult): string {
  if (r.skipped) return `skipped: ${r.skipped}`;
  return r.ok ? 'ok' : (r.errno ?? 'failed');
}

/** The cost of each request: outcome, latency, migration, compaction scanning, reclaim. */
export function renderCostTable(c: Comparison): string {
  const t = table([
    'contender',
    'result',
    'latency ms',
    'kthreads ms',
    'migrated',
    'scanned (migrate/free)',
    'reclaim (scan/steal)',
    'compact stalls',
  ]);
  for (const r of c.results) {
    const k = r.cost;
    t.push([
      r.name,
      outcome(r),
      k ? ms(k.latency_ns) : '-',
      k ? ms(k.kthread_ns) : '-',
      k ? n(k.pages_migrated) : '-',
      k ? `${k.compact_migrate_scanned}/${k.compact_free_scanned}` : '-',
      k ? `${k.pgscan}/${k.pgsteal}` : '-',
      k ? n(k.compact_stalls) : '-',
    ]);
  }
  return t.toString();
}

/** What each device makes of each buffer that was had. */
export function renderBenefitTable(c: Comparison): string {
  const t = table([
    'contender',
    'device',
    'usable',
    'segments (largest)',
    'SG',
    'MTT (page)',
    'IOMMU PTEs',
    'IOTLB misses',
    'CPU TLB 4K/2M/1G',
    'STLB cover',
  ]);
  for (const r of c.results) {
    if (!r.ok) continue;
    for (const b of r.benefit) {
      t.push([
        r.name,
        b.device,
        b.usable ? 'yes' : 'no',
        `${b.segments} (${fmt_bytes(b.largest_segment_bytes)})`,
        n(b.sg_entries),
        b.mtt_entries === null ? '-' : `${b.mtt_entries} (${fmt_bytes(b.mtt_page_size ?? 0)})`,
        n(b.iommu_ptes.total),
        b.iotlb_misses.toFixed(3),
        `${b.cpu_tlb['4K']}/${b.cpu_tlb['2M']}/${b.cpu_tlb['1G']}`,
        pct(b.cpu_tlb.coverage),
      ]);
    }
  }
  return t.toString();
}

/** Collateral damage: the probe after each request minus the probe on the untouched baseline. */
export function renderCollateralTable(c: Comparison): string {
  const t = table([
    'contender',
    'THP fallback',
    'kernel order-N fails',
    'reclaim (scan/steal)',
    'compact stalls',
    'highatomic blocks',
    'probe fault ms',
    'OOM kills',
  ]);
  const b = c.baseline;
  if (b)
    t.push([
      'baseline (absolute)',
      pct(b.thp.fallback_rate),
      `${b.kernel.atomic_failures + b.kernel.noretry_failures}/${b.kernel.atomic_attempts + b.kernel.noretry_attempts}`,
      `${b.reclaim.pgscan_kswapd + b.reclaim.pgscan_direct}/${b.reclaim.pgsteal_kswapd + b.reclaim.pgsteal_direct}`,
      n(b.compaction.stalls),
      `${b.highatomic.pageblocks_max} of ${b.highatomic.limit_pageblocks}`,
      ms(b.thp.fault_ns),
      n(b.oom_kills),
    ]);
  for (const r of c.results) {
    const d = r.collateral;
    if (!d) continue;
    t.push([
      r.name,
      `${signed(d.thp.fallback_rate * 100, 1)} pp`,
      signed(d.kernel.atomic_failures + d.kernel.noretry_failures),
      `${signed(d.reclaim.pgscan_kswapd + d.reclaim.pgscan_direct)}/${signed(d.reclaim.pgsteal_kswapd + d.reclaim.pgsteal_direct)}`,
      signed(d.compaction.stalls),
      signed(d.highatomic.pageblocks_max),
      signed(d.thp.fault_ns / 1e6, 2),
      signed(d.oom_kills),
    ]);
  }
  return t.toString();
}

/** Every table of a comparison, with a title line each. */
export function renderComparison(c: Comparison): string {
  const parts = [
    `Request: ${fmt_bytes(c.request.bytes)} for uid ${c.request.uid} (devices: ${c.request.devices.join(', ')})`,
    'Cost of the request',
    renderCostTable(c),
    'What the devices make of the buffer',
    renderBenefitTable(c),
  ];
  if (c.baseline)
    parts.push(
      'Collateral damage (probe after the request minus probe on an untouched copy)',
      renderCollateralTable(c),
    );
  const notes = c.results.filter((r) => r.note).map((r) => `  ${r.name}: ${r.note}`);
  if (notes.length) parts.push('Notes', ...notes);
  return parts.join('\n');
}

/** The fallback ladder's rungs and where it ended (src/contig/fallback.ts). */
export function renderFallback(f: FallbackResult): string {
  const t = table(['rung', 'result', 'latency ms', 'note']);
  for (const a of f.attempts)
    t.push([a.rung, a.ok ? 'ok' : (a.errno ?? 'skipped'), ms(a.latency_ns), a.note]);
  const d = f.device;
  const tail = d
    ? `${d.device}: ${d.segments} segments, ${n(d.sg_entries)} SG entries, ${n(d.mtt_entries)} MTT entries, ${d.iommu_ptes.total} IOMMU PTEs`
    : 'no buffer';
  return `${t.toString()}\nEnded on: ${f.rung ?? 'nothing'} — ${tail}`;
}
