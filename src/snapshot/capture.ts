/**
 * `captureSnapshot(outDir)`: copy a running Linux machine's memory-management state into a
 * directory, laid out as docs/snapshot.md describes: every file under its own path without the
 * leading slash, /proc/kpageflags and /proc/kpagecount (root only) gzip-compressed for the
 * present PFN ranges, and a `snapshot.json` manifest.
 *
 * Nothing is written to the machine: files that have side effects when read
 * (/proc/sys/vm/stat_refresh folds the per-cpu counters) and write-only files are skipped.
 */
import { createWriteStream } from 'node:fs';
import { lstat, mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip, constants as zlibConstants } from 'node:zlib';
import {
  DEFAULT_MISSING_COST,
  MANIFEST_NAME,
  type ManifestFile,
  type ManifestMissing,
  MISSING_COST,
  type PfnRange,
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
  type SnapshotManifest,
} from './manifest.ts';
import { parseIomem, parseZoneinfo, systemRamPfns, type ZoneinfoZone } from './parse.ts';

export interface CaptureOptions {
  /** Dump /proc/kpageflags and /proc/kpagecount when readable; default true. */
  kpageflags?: boolean;
  /** Dump these PFN ranges instead of the present ones (a small fixture, a region of interest). */
  pfn_ranges?: PfnRange[];
  /** gzip level of the binary files; default 1, the fastest (docs/snapshot.md: 6 is ~30% slower, ~45% smaller). */
  gzip_level?: number;
  /** Read the machine's files under this directory instead of `/` (a mounted guest, a test tree). */
  root?: string;
  /** Called with each file as it is stored, for progress output. */
  onFile?: (path: string) => void;
}

/** What captureSnapshot did. */
export interface CaptureResult {
  dir: string;
  manifest: SnapshotManifest;
  /** Bytes written, manifest included. */
  total_bytes: number;
}

/** Files of /proc read as text; all but the first three are optional. */
const PROC_FILES = [
  'proc/buddyinfo',
  'proc/zoneinfo',
  'proc/sys/kernel/osrelease',
  'proc/pagetypeinfo',
  'proc/vmstat',
  'proc/meminfo',
  'proc/slabinfo',
  'proc/iomem',
  'proc/cmdline',
  'proc/swaps',
];

/** sysfs trees copied recursively (regular readable files only). */
const SYS_TREES = ['sys/kernel/mm/hugepages', 'sys/kernel/mm/transparent_hugepage'];
/** Files read for their side effects or that make no sense to copy. */
const SKIP = new Set(['proc/sys/vm/stat_refresh', 'proc/sys/vm/compact_memory', 'proc/sys/vm/drop_caches']);
/** No single text file of these trees is anywhere near this; a larger one is refused, not stored. */
const MAX_TEXT_BYTES = 64 << 20;
/** A sysfs walk that finds more files than this is not the tree we know. */
const MAX_TREE_FILES = 4096;
/** x86-64 SECTION_SIZE_BITS 27 with 4 KiB pages: lazily initialised memory grows by this. */
const PAGES_PER_SECTION = 32768;
/** PFNs per positioned read of kpageflags/kpagecount: 8 MiB per read. */
const CHUNK_PFNS = 1 << 20;

function errReason(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  if (err.code === 'EACCES' || err.code === 'EPERM') return `${err.code}: not readable without root`;
  if (err.code === 'ENOENT') return 'ENOENT: not present on this kernel';
  return err.code ? `${err.code}: ${err.message}` : String(e);
}

/**
 * The PFN ranges to dump: each populated zone's span [start_pfn, start_pfn + spanned), clipped
 * to the top-level "System RAM" ranges of /proc/iomem when those are known (root sees the
 * addresses; others see zeros). Uninitialised struct pages must not be read, so with
 * `deferred_init=lazy` on the command line, zone Normal is cut at start_pfn + managed rounded up
 * to a section: the sections the kernel has initialised so far (docs/snapshot.md).
 */
export function kpagePfnRanges(
  zones: ZoneinfoZone[],
  iomemText: string | null,
  cmdline: string | null,
): { ranges: PfnRange[]; source: string } {
  const ram = iomemText ? systemRamPfns(parseIomem(iomemText)) : [];
  const lazy = cmdline !== null && /(^|\s)deferred_init=lazy(\s|$)/.test(cmdline);
  const ranges: PfnRange[] = [];
  for (const z of zones) {
    if (z.present === 0 || z.start_pfn === undefined) continue;
    let end = z.start_pfn + z.spanned;
    if (lazy && z.zone === 'Normal' && z.managed < z.present)
      end = Math.min(end, z.start_pfn + Math.ceil(z.managed / PAGES_PER_SECTION) * PAGES_PER_SECTION);
    const pieces = ram.length > 0 ? ram : [{ start: z.start_pfn, end }];
    for (const r of pieces) {
      const s = Math.max(r.start, z.start_pfn);
      const e = Math.min(r.end, end);
      if (e > s) ranges.push({ start_pfn: s, nr_pages: e - s, node: z.node, zone: z.zone });
    }
  }
  ranges.sort((a, b) => a.start_pfn - b.start_pfn);
  const parts = ['populated zone spans of proc/zoneinfo'];
  if (ram.length > 0) parts.push('clipped to the "System RAM" ranges of proc/iomem');
  else parts.push('not clipped to System RAM (proc/iomem unreadable or zeroed): holes read as KPF_NOPAGE');
  if (lazy) parts.push('zone Normal cut at managed rounded up to a 128 MiB section (deferred_init=lazy)');
  return { ranges, source: parts.join(', ') };
}

/** Capture this machine's state into `outDir` (created; must not exist or be empty). */
export async function captureSnapshot(outDir: string, opts: CaptureOptions = {}): Promise<CaptureResult> {
  const t0 = performance.now();
  const root = opts.root ?? '/';
  const src = (p: string) => join(root, p);
  await prepareDir(outDir);
  const files: ManifestFile[] = [];
  const missing: ManifestMissing[] = [];
  const texts = new Map<string, string>();

  const store = async (path: string, text: string) => {
    const dst = join(outDir, path);
    await mkdir(dirname(dst), { recursive: true });
    await writeFile(dst, text);
    files.push({ path, bytes: Buffer.byteLength(text) });
    opts.onFile?.(path);
  };
  const readText = async (path: string): Promise<string | null> => {
    try {
      const buf = await readFile(src(path));
      if (buf.length > MAX_TEXT_BYTES) throw new Error(`larger than ${MAX_TEXT_BYTES} bytes`);
      return buf.toString('latin1');
    } catch (e) {
      missing.push({ path, reason: errReason(e), cost: MISSING_COST[path] ?? DEFAULT_MISSING_COST });
      return null;
    }
  };

  // The allocator's state first and together, so buddyinfo, pagetypeinfo and zoneinfo describe
  // as nearly as possible the same instant; the rest changes slowly.
  const procTexts = await Promise.all(PROC_FILES.map((p) => readText(p)));
  PROC_FILES.forEach((p, i) => {
    const t = procTexts[i];
    if (t !== null) texts.set(p, t);
  });
  for (const p of PROC_FILES.slice(0, 3))
    if (!texts.has(p)) throw new Error(`cannot read /${p}: ${missing.find((m) => m.path === p)?.reason}`);
  const zones = parseZoneinfo(texts.get('proc/zoneinfo') as string, 'proc/zoneinfo');
  const release = (texts.get('proc/sys/kernel/osrelease') as string).trim();

  // Dump the frames right after the allocator files; the other files can wait.
  let pfn_ranges: PfnRange[] = [];
  let pfn_ranges_source = 'kpageflags not captured';
  let kpage_ms: number | undefined;
  if (opts.kpageflags !== false) {
    const iomem = texts.get('proc/iomem') ?? null;
    const planned = opts.pfn_ranges
      ? { ranges: validateRanges(opts.pfn_ranges), source: 'given by the caller' }
      : kpagePfnRanges(zones, iomem, texts.get('proc/cmdline') ?? null);
    const tk = performance.now();
    const level = opts.gzip_level ?? 1;
    const dumps = await Promise.allSettled(
      ['proc/kpageflags', 'proc/kpagecount'].map((p) =>
        dumpKpage(src(p), join(outDir, `${p}.gz`), planned.ranges, level),
      ),
    );
    if (dumps.every((d) => d.status === 'fulfilled')) {
      pfn_ranges = planned.ranges;
      pfn_ranges_source = planned.source;
      ['proc/kpageflags', 'proc/kpagecount'].forEach((p, i) => {
        const d = (dumps[i] as PromiseFulfilledResult<{ bytes: number; stored_bytes: number }>).value;
        files.push({ path: `${p}.gz`, bytes: d.bytes, stored_bytes: d.stored_bytes, compression: 'gzip' });
        opts.onFile?.(`${p}.gz`);
      });
      kpage_ms = Math.round(performance.now() - tk);
    } else {
      // One without the other is useless (import checks them together): drop both.
      const { rm } = await import('node:fs/promises');
      for (const p of ['proc/kpageflags', 'proc/kpagecount']) {
        await rm(join(outDir, `${p}.gz`), { force: true });
        const d = dumps[p === 'proc/kpageflags' ? 0 : 1];
        missing.push({
          path: p,
          reason: d.status === 'rejected' ? errReason(d.reason) : 'dropped: its companion file failed',
          cost: MISSING_COST[p],
        });
      }
    }
  } else {
    for (const p of ['proc/kpageflags', 'proc/kpagecount'])
      missing.push({ path: p, reason: 'not requested (--no-kpageflags)', cost: MISSING_COST[p] });
  }

  for (const p of PROC_FILES) {
    const t = texts.get(p);
    if (t !== undefined) await store(p, t);
  }
  // The kernel's own .config (CONFIG_IKCONFIG_PROC), stored as the gzip the kernel serves.
  try {
    const cfg = await readFile(src('proc/config.gz'));
    if (cfg.length > MAX_TEXT_BYTES) throw new Error(`larger than ${MAX_TEXT_BYTES} bytes`);
    await mkdir(join(outDir, 'proc'), { recursive: true });
    await writeFile(join(outDir, 'proc/config.gz'), cfg);
    files.push({ path: 'proc/config.gz', bytes: cfg.length });
    opts.onFile?.('proc/config.gz');
  } catch (e) {
    missing.push({ path: 'proc/config.gz', reason: errReason(e), cost: MISSING_COST['proc/config.gz'] });
  }
  if (texts.has('proc/iomem') && !/^\s*0*[1-9a-fA-F]/m.test(texts.get('proc/iomem') as string))
    missing.push({
      path: 'proc/iomem',
      reason: 'addresses zeroed: not root',
      cost: MISSING_COST['proc/iomem'],
    });

  // Every readable sysctl of vm (they are small: ~50 files).
  for (const path of await listFiles(src('proc/sys/vm'), 'proc/sys/vm', missing, false)) {
    if (SKIP.has(path)) continue;
    const t = await readText(path);
    if (t !== null) await store(path, t);
  }
  const trees = [...SYS_TREES];
  try {
    for (const d of await readdir(src('sys/devices/system/node')))
      if (/^node\d+$/.test(d))
        trees.push(`sys/devices/system/node/${d}/hugepages`, `sys/devices/system/node/${d}/meminfo`);
  } catch (e) {
    missing.push({ path: 'sys/devices/system/node', reason: errReason(e), cost: 'per-node sizes unknown' });
  }
  for (const tree of trees) {
    for (const path of await listFiles(src(tree), tree, missing, true)) {
      const t = await readText(path);
      if (t !== null) await store(path, t);
    }
  }

  const manifest: SnapshotManifest = {
    format: SNAPSHOT_FORMAT,
    version: SNAPSHOT_VERSION,
    kernel_release: release,
    captured_at: new Date().toISOString(),
    root: process.geteuid?.() === 0,
    page_size: 4096,
    files: files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0)),
    pfn_ranges,
    pfn_ranges_source,
    missing,
    capture_ms: 0,
    kpage_ms,
    tool: 'mapcontig snapshot',
  };
  manifest.capture_ms = Math.round(performance.now() - t0);
  const json = `${JSON.stringify(manifest, null, 2)}\n`;
  await writeFile(join(outDir, MANIFEST_NAME), json);
  const total_bytes = files.reduce((s, f) => s + (f.stored_bytes ?? f.bytes), 0) + Buffer.byteLength(json);
  return { dir: outDir, manifest, total_bytes };
}

async function prepareDir(dir: string): Promise<void> {
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw new Error(`${dir} exists and is not a directory`);
    if ((await readdir(dir)).length > 0) throw new Error(`${dir} is not empty`);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    await mkdir(dir, { recursive: true });
  }
}

function validateRanges(ranges: PfnRange[]): PfnRange[] {
  let prev = -1;
  for (const r of ranges) {
    if (
      !Number.isSafeInteger(r.start_pfn) ||
      !Number.isSafeInteger(r.nr_pages) ||
      r.start_pfn < 0 ||
      r.nr_pages <= 0
    )
      throw new RangeError(`bad PFN range ${JSON.stringify(r)}`);
    if (r.start_pfn < prev) throw new RangeError('PFN ranges must be sorted and must not overlap');
    prev = r.start_pfn + r.nr_pages;
  }
  return ranges;
}

/**
 * Regular readable files under `dir` (paths relative to the snapshot). A file path (node meminfo)
 * lists itself. Symlinks are not followed: sysfs links lead out of the tree.
 */
async function listFiles(
  dir: string,
  rel: string,
  missing: ManifestMissing[],
  recurse: boolean,
): Promise<string[]> {
  const out: string[] = [];
  const walk = async (abs: string, r: string): Promise<void> => {
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(abs);
    } catch (e) {
      missing.push({ path: r, reason: errReason(e), cost: MISSING_COST[r] ?? DEFAULT_MISSING_COST });
      return;
    }
    if (st.isFile()) {
      if ((st.mode & 0o444) !== 0) out.push(r);
      return;
    }
    if (!st.isDirectory()) return;
    if (out.length > MAX_TREE_FILES) throw new Error(`/${rel} holds more than ${MAX_TREE_FILES} files`);
    const names = (await readdir(abs)).sort();
    for (const n of names) {
      const childAbs = join(abs, n);
      const childRel = `${r}/${n}`;
      if (!recurse) {
        const cst = await lstat(childAbs).catch(() => null);
        if (cst?.isFile() && (cst.mode & 0o444) !== 0) out.push(childRel);
        continue;
      }
      await walk(childAbs, childRel);
    }
  };
  await walk(dir, rel);
  return out;
}

/**
 * Copy the PFN ranges of a /proc/kpage* file into a gzip file: positioned reads of CHUNK_PFNS
 * entries (the kernel fills each with one stable_page_flags() per PFN), compressed on the libuv
 * thread pool while the next chunk is read.
 */
async function dumpKpage(
  from: string,
  to: string,
  ranges: PfnRange[],
  level: number,
): Promise<{ bytes: number; stored_bytes: number }> {
  const fh = await open(from, 'r');
  let bytes = 0;
  try {
    await mkdir(dirname(to), { recursive: true });
    async function* chunks(): AsyncGenerator<Buffer> {
      for (const r of ranges) {
        for (let pfn = r.start_pfn; pfn < r.start_pfn + r.nr_pages; pfn += CHUNK_PFNS) {
          const n = Math.min(CHUNK_PFNS, r.start_pfn + r.nr_pages - pfn);
          const buf = Buffer.allocUnsafe(n * 8);
          let got = 0;
          while (got < buf.length) {
            const { bytesRead } = await fh.read(buf, got, buf.length - got, pfn * 8 + got);
            if (bytesRead === 0)
              throw new Error(`${from} ends at PFN ${pfn + got / 8}, inside ${JSON.stringify(r)}`);
            got += bytesRead;
          }
          bytes += buf.length;
          yield buf;
        }
      }
    }
    await pipeline(
      chunks(),
      createGzip({ level, memLevel: 9, strategy: zlibConstants.Z_DEFAULT_STRATEGY }),
      createWriteStream(to),
    );
  } finally {
    await fh.close();
  }
  return { bytes, stored_bytes: (await stat(to)).size };
}
