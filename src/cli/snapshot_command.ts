/**
 * `mapcontig snapshot`: capture this Linux machine's memory state for import and prediction
 * (docs/snapshot.md).
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { type CaptureResult, captureSnapshot } from '../snapshot/capture.ts';

export interface SnapshotCommandOptions {
  out?: string;
  kpageflags: boolean;
  json: boolean;
  quiet: boolean;
}

function mib(n: number): string {
  if (n >= 2 ** 30) return `${(n / 2 ** 30).toFixed(1)} GiB`;
  return n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;
}

/** The human summary of a capture. */
export function renderCapture(r: CaptureResult): string {
  const m = r.manifest;
  const out: string[] = [];
  const pfns = m.pfn_ranges.reduce((s, x) => s + x.nr_pages, 0);
  out.push(`snapshot of Linux ${m.kernel_release} in ${r.dir}`);
  out.push(
    `  ${m.files.length} files, ${mib(r.total_bytes)} on disk, captured in ${(m.capture_ms / 1000).toFixed(2)} s`,
  );
  if (pfns > 0) {
    const kp = m.files.filter((f) => f.compression);
    const raw = kp.reduce((s, f) => s + f.bytes, 0);
    const stored = kp.reduce((s, f) => s + (f.stored_bytes ?? f.bytes), 0);
    out.push(
      `  kpageflags + kpagecount: ${pfns} PFNs (${mib(pfns * 4096)} of memory) in ${m.pfn_ranges.length} ranges, ` +
        `${mib(raw)} → ${mib(stored)} gzip, ${((m.kpage_ms ?? 0) / 1000).toFixed(2)} s`,
    );
    out.push(`  PFN ranges: ${m.pfn_ranges_source}`);
  }
  if (m.missing.length === 0) out.push('  nothing missing');
  else {
    out.push(`  missing (${m.missing.length}):`);
    for (const x of m.missing) out.push(`    /${x.path}: ${x.reason}\n      costs: ${x.cost}`);
  }
  if (!m.root)
    out.push('  (run as root for the full snapshot: pagetypeinfo, slabinfo, kpageflags, kpagecount)');
  return out.join('\n');
}

/** `mapcontig-snapshot`, or the first free `mapcontig-snapshot.N` (no clock: the manifest has the time). */
function defaultOut(): string {
  const base = 'mapcontig-snapshot';
  if (!existsSync(base)) return base;
  for (let n = 1; n < 1000; n++) if (!existsSync(`${base}.${n}`)) return `${base}.${n}`;
  throw new Error('no free mapcontig-snapshot.N directory here: give --out');
}

/** Add `snapshot` to the program. */
export function addSnapshotCommand(program: Command): void {
  program
    .command('snapshot')
    .description("capture this Linux machine's physical-memory state (as root: per-page flags too)")
    .option(
      '-o, --out <dir>',
      'directory to write (created; must be empty); default ./mapcontig-snapshot[.N]',
    )
    .option('--no-kpageflags', 'skip /proc/kpageflags and /proc/kpagecount (smaller, faster, less exact)')
    .option('--json', 'print the manifest and sizes as JSON', false)
    .option('-q, --quiet', 'print nothing but errors', false)
    .addHelpText(
      'after',
      `
Examples:
  sudo mapcontig snapshot --out snap        full snapshot, kpageflags of the present PFNs
  mapcontig snapshot --out snap             unprivileged: says what is missing and what it costs
  mapcontig snapshot --no-kpageflags --json about 100 KiB; the manifest printed as JSON

The layout (docs/snapshot.md): each file under its own path without the leading slash
(proc/buddyinfo, sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages), kpageflags and
kpagecount gzip-compressed (proc/kpageflags.gz), and snapshot.json. Exit status 0 on success,
1 on failure.`,
    )
    .action(async (o: SnapshotCommandOptions) => {
      try {
        const out = o.out ?? defaultOut();
        const r = await captureSnapshot(out, { kpageflags: o.kpageflags });
        if (o.json)
          process.stdout.write(
            `${JSON.stringify({ dir: r.dir, total_bytes: r.total_bytes, manifest: r.manifest }, null, 2)}\n`,
          );
        else if (!o.quiet) process.stdout.write(`${renderCapture(r)}\n`);
      } catch (e) {
        process.stderr.write(`mapcontig snapshot: ${(e as Error).message}\n`);
        process.exitCode = 1;
      }
    });
}
