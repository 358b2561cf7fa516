/**
 * A prediction for people (src/snapshot/predict.ts): how the import went, what nr_hugepages would
 * deliver, and each contender's contiguous request now and after compact_memory.
 */
import Table from 'cli-table3';
import type { ImportReport } from '../snapshot/import.ts';
import type { ContigPrediction, HugepagesPrediction } from '../snapshot/predict.ts';
import { ms, renderCostTable } from './comparison.ts';

const mib = (pages: number): string => `${((pages * 4096) / 2 ** 20).toFixed(0)} MiB`;

function table(head: string[]): Table.Table {
  return new Table({ head, style: { head: [], border: [] } });
}

/** The import: method, each zone's managed and free pages, model next to snapshot, and the notes. */
export function renderImport(r: ImportReport): string {
  const out = [
    `imported ${r.source} (Linux ${r.release ?? 'unknown'}) ${
      r.method === 'kpageflags'
        ? 'page by page from kpageflags'
        : 'as an ESTIMATE from the /proc counts (no kpageflags)'
    }`,
  ];
  const t = table([
    'zone',
    'managed (snapshot/model)',
    'free (snapshot/model)',
    'free ≥ 2 MiB blocks (snapshot/model)',
  ]);
  for (const z of r.zones) {
    const big = (b: number[]) => (b[9] ?? 0) + 2 * (b[10] ?? 0);
    t.push([
      `${z.node}/${z.zone}`,
      `${z.managed.snapshot} / ${z.managed.model}`,
      `${mib(z.free.snapshot)} / ${mib(z.free.model)}`,
      `${big(z.buddy.snapshot)} / ${big(z.buddy.model)}`,
    ]);
  }
  out.push(t.toString());
  const c = r.image.classes;
  out.push(
    `  pages: free ${c.free.installed}, anon ${c.anon.installed}, THP ${c.thp.installed}, file ${
      c.file.installed + c.file_dirty.installed
    }, shmem ${c.shmem.installed}, hugetlb ${c.hugetlb.installed}, kernel ${c.kernel.installed + c.pgtable.installed}, reserved ${c.reserved.installed}`,
  );
  if (r.bare)
    out.push(
      `  ${r.bare.pages} unflagged pages: ${r.bare.free} taken as free per-cpu pages, the rest as kernel`,
    );
  for (const note of r.notes) out.push(`  note: ${note}`);
  return out.join('\n');
}

export function renderHugepages(p: HugepagesPrediction, expected: string): string {
  const t = table(['nr_hugepages', 'delivered', 'latency ms', 'migrated', 'compact stalls', 'reclaimed']);
  const labels = ['now', 'now, written again', 'after compact_memory', 'after, written again'];
  for (const [i, w] of p.writes.entries())
    t.push([
      `${labels[i]}: ${p.asked}`,
      String(w.delivered),
      ms(w.latency_ns),
      String(w.pages_migrated),
      String(w.compact_stall),
      String(w.pgsteal),
    ]);
  return [
    `nr_hugepages=${p.asked} (${p.size_kb} kB pages, pool before: ${p.before}): ${p.now} now, ${p.after_compaction} after compact_memory`,
    t.toString(),
    `  compact_memory migrated ${p.compaction.pages_migrated} pages in ${ms(p.compaction.latency_ns)} ms`,
    `  expected error: ${expected}`,
  ].join('\n');
}

export function renderContig(p: ContigPrediction, expected: string): string {
  const size = `${(p.bytes / 2 ** 20).toFixed(p.bytes % 2 ** 20 ? 1 : 0)} MiB`;
  return [
    `${size} contiguous, now:`,
    renderCostTable(p.now),
    `${size} contiguous, after compact_memory (it migrated ${p.compaction.pages_migrated} pages in ${ms(p.compaction.latency_ns)} ms):`,
    renderCostTable(p.after_compaction),
    `  expected error: ${expected}`,
  ].join('\n');
}
