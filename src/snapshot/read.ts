/**
 * `readSnapshot(path)`: a snapshot directory or tar → a typed, validated in-memory snapshot.
 *
 * Validation happens before anything is used, and every problem is one SnapshotError naming the
 * file: sizes are checked against caps before reading (text files from their size, binary files
 * against the PFN ranges, decompression stopped the moment it exceeds what the ranges allow),
 * then formats, then agreement between files (buddyinfo's zones are zoneinfo's populated zones;
 * kpageflags and kpagecount cover the same PFNs; the PFN ranges lie inside the zones).
 * Disagreements that a live capture produces by itself (free counts moving between the reads
 * of buddyinfo and zoneinfo) are `warnings`, not errors.
 */
import { endianness } from 'node:os';
import { createGunzip, gunzipSync } from 'node:zlib';
import { decodeKpageflags, type KpageflagsLayout } from './kpageflags.ts';
import {
  MANIFEST_NAME,
  type ManifestMissing,
  MISSING_COST,
  type PfnRange,
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
  SnapshotError,
  type SnapshotManifest,
} from './manifest.ts';
import {
  type BuddyinfoZone,
  clip,
  type IomemRange,
  type Pagetypeinfo,
  parseBuddyinfo,
  parseIomem,
  parseMeminfo,
  parsePagetypeinfo,
  parseSlabinfo,
  parseVmstat,
  parseZoneinfo,
  type SlabinfoCache,
  selectedChoice,
  type ZoneinfoZone,
  zoneKey,
} from './parse.ts';
import { openSource, type SnapshotSource } from './source.ts';

/** A text file larger than this is refused before it is read. */
export const MAX_TEXT_BYTES = 16 << 20;
/** The manifest larger than this is refused. */
export const MAX_MANIFEST_BYTES = 16 << 20;
/** More PFN ranges than this is not a machine. */
export const MAX_PFN_RANGES = 65536;
/** The most PFNs loaded (1 TiB of 4 KiB pages: two 2 GiB buffers, within Node 20's Buffer limit). */
export const MAX_KPAGE_PFNS = 2 ** 28;

/** One PFN range of kpageflags/kpagecount. Entry i is PFN start_pfn + i. */
export interface KpageRange extends PfnRange {
  /** KPF_* flags, two little-endian words per PFN: bits 0–31 at [2i], bits 32–63 at [2i+1]. */
  flags: Uint32Array;
  /** Map counts, same layout (the high word is 0 on any real machine). */
  count: Uint32Array;
}

export interface KpageData {
  ranges: KpageRange[];
  total_pages: number;
  layout: KpageflagsLayout;
  /** The files the data came from (`proc/kpageflags.gz` or `proc/kpageflags`). */
  flags_file: string;
  count_file: string;
}

/** One hugetlb page size's pool, from /sys/kernel/mm/hugepages and the nodes' copies. */
export interface HugepagePool {
  size_kb: number;
  nr_hugepages?: number;
  free_hugepages?: number;
  resv_hugepages?: number;
  surplus_hugepages?: number;
  nr_overcommit_hugepages?: number;
  nodes: { node: number; nr_hugepages?: number; free_hugepages?: number; surplus_hugepages?: number }[];
}

/** /sys/kernel/mm/transparent_hugepage, choices resolved to the bracketed value. */
export interface ThpSettings {
  enabled?: string;
  defrag?: string;
  shmem_enabled?: string;
  use_zero_page?: string;
  hpage_pmd_size?: number;
  khugepaged: Record<string, string>;
  /** Per-size (mTHP) settings: size in kB → file → choice. */
  sizes: Record<number, Record<string, string>>;
}

export interface Snapshot {
  /** The directory or archive read. */
  source: string;
  manifest: SnapshotManifest | null;
  /** `uname -r` of the machine; null when neither osrelease nor a manifest says. */
  release: string | null;
  /** Paths of every file in the snapshot. */
  files: string[];
  buddyinfo: BuddyinfoZone[];
  zoneinfo: ZoneinfoZone[];
  pagetypeinfo: Pagetypeinfo | null;
  vmstat: Record<string, number> | null;
  meminfo: Record<string, number> | null;
  slabinfo: SlabinfoCache[] | null;
  iomem: IomemRange[] | null;
  cmdline: string | null;
  /** /proc/config.gz as CONFIG_* → value ("y", "m", a number or a quoted string); null without it. */
  config: Record<string, string> | null;
  /** /proc/sys/vm/* by name (`min_free_kbytes`), the file's text trimmed. */
  sysctl: Record<string, string>;
  hugepages: HugepagePool[];
  thp: ThpSettings | null;
  node_meminfo: { node: number; meminfo: Record<string, number> }[];
  kpage: KpageData | null;
  /** What the capture or the reader found missing, and its cost. */
  missing: ManifestMissing[];
  /** Disagreements within what a live capture produces (see the module comment). */
  warnings: string[];
}

export interface ReadOptions {
  /** Load kpageflags/kpagecount (default true); false still checks that they are present in pairs. */
  kpage?: boolean;
}

/** Read and validate a snapshot (a directory, or a .tar/.tar.gz of the same layout). */
export async function readSnapshot(path: string, opts: ReadOptions = {}): Promise<Snapshot> {
  const src = await openSource(path);
  const warnings: string[] = [];
  const manifest = src.has(MANIFEST_NAME) ? await readManifest(src) : null;
  if (manifest) checkManifestFiles(src, manifest);

  const text = async (p: string): Promise<string | null> => {
    if (!src.has(p)) return null;
    const n = src.size(p);
    if (n > MAX_TEXT_BYTES)
      throw new SnapshotError(p, `${n} bytes: larger than the ${MAX_TEXT_BYTES} allowed`);
    const b = await src.read(p);
    if (b.includes(0)) throw new SnapshotError(p, 'binary data in a text file');
    return b.toString('latin1');
  };
  const required = async (p: string): Promise<string> => {
    const t = await text(p);
    if (t === null) throw new SnapshotError(p, 'missing: a snapshot needs proc/zoneinfo and proc/buddyinfo');
    if (t.trim() === '') throw new SnapshotError(p, 'empty');
    return t;
  };

  const zoneinfo = parseZoneinfo(await required('proc/zoneinfo'), 'proc/zoneinfo');
  const buddyinfo = parseBuddyinfo(await required('proc/buddyinfo'), 'proc/buddyinfo');
  checkBuddyinfo(buddyinfo, zoneinfo, warnings);
  const optional = async <T>(p: string, parse: (t: string, f: string) => T): Promise<T | null> => {
    const t = await text(p);
    if (t === null) return null;
    if (t.trim() === '') throw new SnapshotError(p, 'empty');
    return parse(t, p);
  };
  const pagetypeinfo = await optional('proc/pagetypeinfo', parsePagetypeinfo);
  if (pagetypeinfo) checkPagetypeinfo(pagetypeinfo, buddyinfo, zoneinfo, warnings);
  const vmstat = await optional('proc/vmstat', parseVmstat);
  const meminfo = await optional('proc/meminfo', parseMeminfo);
  const slabinfo = await optional('proc/slabinfo', parseSlabinfo);
  const iomem = await optional('proc/iomem', parseIomem);
  const cmdline = (await text('proc/cmdline'))?.trim() ?? null;
  const osrelease = (await text('proc/sys/kernel/osrelease'))?.trim() ?? null;
  if (osrelease !== null && !/^\d+\.\d+/.test(osrelease))
    throw new SnapshotError('proc/sys/kernel/osrelease', `not a kernel release: ${clip(osrelease)}`);
  const release = osrelease ?? manifest?.kernel_release ?? null;
  const releaseFile = osrelease !== null ? 'proc/sys/kernel/osrelease' : MANIFEST_NAME;
  if (osrelease !== null && manifest && manifest.kernel_release !== osrelease)
    warnings.push(
      `${MANIFEST_NAME} says kernel ${clip(manifest.kernel_release)}, osrelease ${clip(osrelease)}`,
    );
  const config = await readConfig(src);

  const sysctl: Record<string, string> = {};
  for (const p of src.list()) {
    const m = /^proc\/sys\/vm\/([\w.-]+)$/.exec(p);
    if (m) sysctl[m[1]] = ((await text(p)) as string).trim();
  }
  const hugepages = await readHugepages(src, text);
  const thp = await readThp(src, text);
  const node_meminfo: Snapshot['node_meminfo'] = [];
  for (const p of src.list()) {
    const m = /^sys\/devices\/system\/node\/node(\d+)\/meminfo$/.exec(p);
    if (m) node_meminfo.push({ node: Number(m[1]), meminfo: parseMeminfo((await text(p)) as string, p) });
  }

  const kpage = await readKpage(src, manifest, zoneinfo, release, releaseFile, opts.kpage !== false);
  if (kpage) checkKpageBits(kpage, warnings);
  const missing = [...(manifest?.missing ?? [])];
  for (const p of ['proc/pagetypeinfo', 'proc/vmstat', 'proc/meminfo', 'proc/slabinfo', 'proc/kpageflags'])
    if (!src.has(p) && !src.has(`${p}.gz`) && !missing.some((m) => m.path === p))
      missing.push({ path: p, reason: 'not in the snapshot', cost: MISSING_COST[p] });

  return {
    source: src.name,
    manifest,
    release,
    files: src.list(),
    buddyinfo,
    zoneinfo,
    pagetypeinfo,
    vmstat,
    meminfo,
    slabinfo,
    iomem,
    cmdline,
    config,
    sysctl,
    hugepages,
    thp,
    node_meminfo,
    kpage,
    missing,
    warnings,
  };
}

// ---------------------------------------------------------------------------------------------

async function readManifest(src: SnapshotSource): Promise<SnapshotManifest> {
  const f = MANIFEST_NAME;
  const n = src.size(f);
  if (n > MAX_MANIFEST_BYTES)
    throw new SnapshotError(f, `${n} bytes: larger than the ${MAX_MANIFEST_BYTES} allowed`);
  let m: SnapshotManifest;
  try {
    m = JSON.parse((await src.read(f)).toString('utf8'));
  } catch (e) {
    throw new SnapshotError(f, `not valid JSON: ${(e as Error).message}`);
  }
  if (typeof m !== 'object' || m === null || m.format !== SNAPSHOT_FORMAT)
    throw new SnapshotError(f, `"format" is not "${SNAPSHOT_FORMAT}"`);
  if (!Number.isInteger(m.version) || m.version < 1 || m.version > SNAPSHOT_VERSION)
    throw new SnapshotError(
      f,
      `version ${clip(String(m.version))} is not one this mapcontig reads (1..${SNAPSHOT_VERSION})`,
    );
  if (typeof m.kernel_release !== 'string') throw new SnapshotError(f, '"kernel_release" is not a string');
  if (!Array.isArray(m.files) || !Array.isArray(m.pfn_ranges) || !Array.isArray(m.missing))
    throw new SnapshotError(f, '"files", "pfn_ranges" and "missing" must be arrays');
  if (m.pfn_ranges.length > MAX_PFN_RANGES)
    throw new SnapshotError(f, `${m.pfn_ranges.length} PFN ranges: more than ${MAX_PFN_RANGES}`);
  let end = -1;
  m.pfn_ranges.forEach((r, i) => {
    const ok =
      typeof r === 'object' &&
      r !== null &&
      Number.isSafeInteger(r.start_pfn) &&
      Number.isSafeInteger(r.nr_pages) &&
      r.start_pfn >= 0 &&
      r.nr_pages > 0;
    if (!ok) throw new SnapshotError(f, `pfn_ranges[${i}] is not {start_pfn, nr_pages} of whole numbers`);
    if (r.start_pfn < end)
      throw new SnapshotError(f, `pfn_ranges[${i}] overlaps or precedes the previous range`);
    end = r.start_pfn + r.nr_pages;
  });
  for (const [i, x] of m.files.entries())
    if (typeof x !== 'object' || x === null || typeof x.path !== 'string' || !Number.isSafeInteger(x.bytes))
      throw new SnapshotError(f, `files[${i}] is not {path, bytes}`);
  return m;
}

/** Files the manifest lists must be there, and plain ones must have the size it records (truncation). */
function checkManifestFiles(src: SnapshotSource, m: SnapshotManifest): void {
  for (const f of m.files) {
    if (!src.has(f.path)) throw new SnapshotError(f.path, `listed in ${MANIFEST_NAME} but absent`);
    const n = src.size(f.path);
    const want = f.compression ? f.stored_bytes : f.bytes;
    if (want !== undefined && n !== want)
      throw new SnapshotError(
        f.path,
        `${n} bytes where ${MANIFEST_NAME} records ${want}: truncated or altered`,
      );
  }
}

function checkBuddyinfo(buddy: BuddyinfoZone[], zones: ZoneinfoZone[], warnings: string[]): void {
  const f = 'proc/buddyinfo';
  const byKey = new Map(zones.map((z) => [zoneKey(z.node, z.zone), z]));
  const seen = new Set<string>();
  for (const b of buddy) {
    const k = zoneKey(b.node, b.zone);
    const z = byKey.get(k);
    if (!z) throw new SnapshotError(f, `zone ${b.zone} of node ${b.node} is not in proc/zoneinfo`);
    if (z.present === 0)
      throw new SnapshotError(f, `zone ${b.zone} of node ${b.node} is empty in proc/zoneinfo`);
    if (seen.has(k)) throw new SnapshotError(f, `zone ${b.zone} of node ${b.node} appears twice`);
    seen.add(k);
    const pages = buddyPages(b);
    if (pages > z.managed)
      throw new SnapshotError(
        f,
        `zone ${b.zone} of node ${b.node}: ${pages} free pages, more than its ${z.managed} managed pages`,
      );
    const tol = freePagesTolerance(z);
    if (Math.abs(pages - z.pages_free) > tol)
      warnings.push(
        `zone ${b.zone} of node ${b.node}: buddyinfo holds ${pages} free pages, zoneinfo ${z.pages_free} (more apart than the ${tol} the per-cpu lists can move)`,
      );
  }
  for (const z of zones)
    if (z.present > 0 && !seen.has(zoneKey(z.node, z.zone)))
      throw new SnapshotError(f, `populated zone ${z.zone} of node ${z.node} (proc/zoneinfo) has no line`);
}

/** Σ nr_free[o] << o of a buddyinfo line. */
export function buddyPages(b: BuddyinfoZone): number {
  let n = 0;
  for (let o = 0; o < b.nr_free.length; o++) n += b.nr_free[o] * 2 ** o;
  return n;
}

/**
 * How far buddyinfo's free pages and zoneinfo's "pages free" may drift apart between two reads
 * of a live machine: NR_FREE_PAGES counts buddy pages only, and each CPU's pcp list can take up to
 * `high` pages from the buddy lists (rmqueue_bulk) or give back `batch`·n (free_pcppages_bulk).
 */
export function freePagesTolerance(z: ZoneinfoZone): number {
  let t = 0;
  for (const p of z.pagesets) t += p.high + p.batch;
  return Math.max(t, 1024);
}

function checkPagetypeinfo(
  pti: Pagetypeinfo,
  buddy: BuddyinfoZone[],
  zones: ZoneinfoZone[],
  warnings: string[],
): void {
  const f = 'proc/pagetypeinfo';
  const byKey = new Map(zones.map((z) => [zoneKey(z.node, z.zone), z]));
  const buddyByKey = new Map(buddy.map((b) => [zoneKey(b.node, b.zone), b]));
  const sums = new Map<string, number[]>();
  for (const r of pti.free) {
    const k = zoneKey(r.node, r.zone);
    if (!buddyByKey.has(k))
      throw new SnapshotError(f, `zone ${r.zone} of node ${r.node} is not in proc/buddyinfo`);
    const s = sums.get(k) ?? new Array(r.nr_free.length).fill(0);
    r.nr_free.forEach((v, o) => {
      s[o] += v;
    });
    sums.set(k, s);
  }
  for (const [k, s] of sums) {
    const b = buddyByKey.get(k) as BuddyinfoZone;
    if (s.length !== b.nr_free.length)
      throw new SnapshotError(f, `${s.length} orders where proc/buddyinfo has ${b.nr_free.length}`);
    const d = s.reduce((acc, v, o) => acc + Math.abs(v - b.nr_free[o]) * 2 ** o, 0);
    const z = byKey.get(k) as ZoneinfoZone;
    if (d > freePagesTolerance(z))
      warnings.push(
        `zone ${b.zone} of node ${b.node}: pagetypeinfo's free lists and buddyinfo differ by ${d} pages`,
      );
  }
  for (const row of pti.blocks) {
    const z = byKey.get(zoneKey(row.node, row.zone));
    if (!z) throw new SnapshotError(f, `zone ${row.zone} of node ${row.node} is not in proc/zoneinfo`);
    const n = row.count.reduce((a, b) => a + b, 0);
    const max = Math.ceil(z.spanned / pti.pages_per_block) + 1;
    if (n > max)
      throw new SnapshotError(
        f,
        `zone ${row.zone} of node ${row.node}: ${n} pageblocks in a zone that spans ${max}`,
      );
  }
}

async function readConfig(src: SnapshotSource): Promise<Record<string, string> | null> {
  const f = 'proc/config.gz';
  if (!src.has(f)) return null;
  if (src.size(f) > MAX_TEXT_BYTES) throw new SnapshotError(f, `larger than the ${MAX_TEXT_BYTES} allowed`);
  let text: string;
  try {
    text = gunzipSync(await src.read(f), { maxOutputLength: MAX_TEXT_BYTES }).toString('latin1');
  } catch (e) {
    throw new SnapshotError(f, `corrupt or too large: ${(e as Error).message}`);
  }
  const out: Record<string, string> = {};
  for (const l of text.split('\n')) {
    const m = /^(CONFIG_\w+)=(.*)$/.exec(l);
    if (m) out[m[1]] = m[2];
  }
  return out;
}

type TextReader = (p: string) => Promise<string | null>;

function intOf(file: string, t: string): number {
  const s = t.trim();
  if (!/^\d+$/.test(s)) throw new SnapshotError(file, `not a number: ${clip(s)}`);
  return Number(s);
}

async function readHugepages(src: SnapshotSource, text: TextReader): Promise<HugepagePool[]> {
  const pools = new Map<number, HugepagePool>();
  const pool = (kb: number) => {
    let p = pools.get(kb);
    if (!p) {
      p = { size_kb: kb, nodes: [] };
      pools.set(kb, p);
    }
    return p;
  };
  const global = /^sys\/kernel\/mm\/hugepages\/hugepages-(\d+)kB\/(\w+)$/;
  const perNode = /^sys\/devices\/system\/node\/node(\d+)\/hugepages\/hugepages-(\d+)kB\/(\w+)$/;
  const counters = new Set([
    'nr_hugepages',
    'free_hugepages',
    'resv_hugepages',
    'surplus_hugepages',
    'nr_overcommit_hugepages',
  ]);
  for (const p of src.list()) {
    let m = global.exec(p);
    if (m && counters.has(m[2])) {
      (pool(Number(m[1])) as unknown as Record<string, number>)[m[2]] = intOf(p, (await text(p)) as string);
      continue;
    }
    m = perNode.exec(p);
    if (m && counters.has(m[3])) {
      const hp = pool(Number(m[2]));
      const node = Number(m[1]);
      let n = hp.nodes.find((x) => x.node === node);
      if (!n) {
        n = { node };
        hp.nodes.push(n);
      }
      (n as Record<string, number>)[m[3]] = intOf(p, (await text(p)) as string);
    }
  }
  const out = [...pools.values()].sort((a, b) => a.size_kb - b.size_kb);
  for (const p of out) p.nodes.sort((a, b) => a.node - b.node);
  return out;
}

async function readThp(src: SnapshotSource, text: TextReader): Promise<ThpSettings | null> {
  const base = 'sys/kernel/mm/transparent_hugepage/';
  const paths = src.list().filter((p) => p.startsWith(base));
  if (paths.length === 0) return null;
  const thp: ThpSettings = { khugepaged: {}, sizes: {} };
  for (const p of paths) {
    const rel = p.slice(base.length);
    const t = (await text(p)) as string;
    const kh = /^khugepaged\/(\w+)$/.exec(rel);
    const sz = /^hugepages-(\d+)kB\/(\w+)$/.exec(rel);
    if (rel === 'enabled' || rel === 'defrag' || rel === 'shmem_enabled' || rel === 'use_zero_page')
      thp[rel] = selectedChoice(t);
    else if (rel === 'hpage_pmd_size') thp.hpage_pmd_size = intOf(p, t);
    else if (kh) thp.khugepaged[kh[1]] = t.trim();
    else if (sz) {
      const kb = Number(sz[1]);
      thp.sizes[kb] ??= {};
      thp.sizes[kb][sz[2]] = selectedChoice(t);
    }
  }
  return thp;
}

// ---------------------------------------------------------------------------------------------
// kpageflags / kpagecount.

/** `proc/<name>.gz` or `proc/<name>`, exactly one of them, or null. */
function binaryFile(src: SnapshotSource, name: string): string | null {
  const plain = `proc/${name}`;
  for (const ext of ['.zst', '.xz', '.bz2'])
    if (src.has(plain + ext))
      throw new SnapshotError(
        plain + ext,
        `${ext} compression is not supported (Node 20 has gzip only): use .gz`,
      );
  const gz = src.has(`${plain}.gz`);
  const raw = src.has(plain);
  if (gz && raw) throw new SnapshotError(plain, `both ${plain} and ${plain}.gz: keep one`);
  return gz ? `${plain}.gz` : raw ? plain : null;
}

async function readKpage(
  src: SnapshotSource,
  manifest: SnapshotManifest | null,
  zones: ZoneinfoZone[],
  release: string | null,
  releaseFile: string,
  load: boolean,
): Promise<KpageData | null> {
  const ff = binaryFile(src, 'kpageflags');
  const cf = binaryFile(src, 'kpagecount');
  if (!ff && !cf) return null;
  if (!ff || !cf)
    throw new SnapshotError(
      (ff ?? cf) as string,
      `${ff ? 'proc/kpagecount' : 'proc/kpageflags'} is missing: the two files go together`,
    );
  if (release === null)
    throw new SnapshotError(
      ff,
      'no kernel release (proc/sys/kernel/osrelease or snapshot.json) to decode the flags by',
    );
  let layout: KpageflagsLayout;
  try {
    layout = decodeKpageflags(release);
  } catch (e) {
    throw new SnapshotError(releaseFile, (e as Error).message);
  }

  // The PFNs the files may cover: nothing beyond the last zone's end (rounded up to a section,
  // as fs/proc/page.c get_max_dump_pfn() does).
  let maxPfn = 0;
  for (const z of zones) if (z.start_pfn !== undefined) maxPfn = Math.max(maxPfn, z.start_pfn + z.spanned);
  maxPfn = Math.ceil(maxPfn / 32768) * 32768;
  if (maxPfn > MAX_KPAGE_PFNS)
    throw new SnapshotError(
      'proc/zoneinfo',
      `zones reach PFN ${maxPfn}: beyond the ${MAX_KPAGE_PFNS} this reader loads`,
    );
  let ranges: PfnRange[] | null = manifest && manifest.pfn_ranges.length > 0 ? manifest.pfn_ranges : null;
  if (ranges) {
    const last = ranges[ranges.length - 1];
    if (last.start_pfn + last.nr_pages > maxPfn)
      throw new SnapshotError(
        MANIFEST_NAME,
        `pfn_ranges reach PFN ${last.start_pfn + last.nr_pages}, beyond the zones' end ${maxPfn} (proc/zoneinfo)`,
      );
  }
  for (const f of [ff, cf]) {
    const n = src.size(f);
    const expect = ranges ? ranges.reduce((s, r) => s + r.nr_pages, 0) * 8 : maxPfn * 8;
    // A gzip stream of n bytes holds at most ~1032·n bytes; a plain file is exactly its content.
    if (!f.endsWith('.gz') && (n % 8 !== 0 || n > expect || (ranges && n !== expect)))
      throw new SnapshotError(
        f,
        `${n} bytes: not the ${ranges ? expect : `≤ ${expect}, multiple of 8,`} bytes its PFNs need`,
      );
    if (n === 0) throw new SnapshotError(f, 'empty');
  }
  if (!load) return null;

  const flagsBuf = await readBinary(src, ff, ranges, maxPfn);
  const countBuf = await readBinary(src, cf, ranges, maxPfn);
  if (countBuf.length !== flagsBuf.length)
    throw new SnapshotError(
      cf,
      `${countBuf.length / 8} PFNs where ${ff} has ${flagsBuf.length / 8}: the two files must cover the same PFNs`,
    );
  ranges ??= [{ start_pfn: 0, nr_pages: flagsBuf.length / 8 }];
  const out: KpageRange[] = [];
  let at = 0;
  for (const r of ranges) {
    out.push({
      ...r,
      flags: words(flagsBuf, at, r.nr_pages),
      count: words(countBuf, at, r.nr_pages),
    });
    at += r.nr_pages * 8;
  }
  return { ranges: out, total_pages: at / 8, layout, flags_file: ff, count_file: cf };
}

/**
 * Bits the release never sets mean the release is not the one that wrote the flags (a 4.x dump
 * labelled 6.18) or the data is damaged; either way an import should not trust them blindly.
 */
function checkKpageBits(k: KpageData, warnings: string[]): void {
  const lo = ~k.layout.stable_mask;
  const hi = ~k.layout.unstable_mask;
  let bad = 0;
  let loSeen = 0;
  let hiSeen = 0;
  for (const r of k.ranges) {
    const w = r.flags;
    for (let i = 0; i < w.length; i += 2) {
      if ((w[i] & lo) !== 0 || (w[i + 1] & hi) !== 0) {
        bad++;
        loSeen |= w[i] & lo;
        hiSeen |= w[i + 1] & hi;
      }
    }
  }
  if (bad > 0) {
    const bits: number[] = [];
    for (let b = 0; b < 32; b++) if ((loSeen >>> b) & 1) bits.push(b);
    for (let b = 0; b < 32; b++) if ((hiSeen >>> b) & 1) bits.push(b + 32);
    warnings.push(
      `${k.flags_file}: ${bad} PFNs carry bits ${bits.join(', ')}, which Linux ${k.layout.release} does not define`,
    );
  }
}

function words(buf: Buffer, byteOffset: number, n: number): Uint32Array {
  return new Uint32Array(buf.buffer, buf.byteOffset + byteOffset, n * 2);
}

/**
 * The file's content into one buffer of exactly the size the ranges need (or at most maxPfn·8
 * without ranges), decompressing as a stream and stopping as soon as it overflows.
 * The buffer is 8-byte aligned so the words view needs no copy.
 */
async function readBinary(
  src: SnapshotSource,
  f: string,
  ranges: PfnRange[] | null,
  maxPfn: number,
): Promise<Buffer> {
  const cap = ranges ? ranges.reduce((s, r) => s + r.nr_pages, 0) * 8 : maxPfn * 8;
  const out = Buffer.from(new ArrayBuffer(cap));
  let n = 0;
  const input = src.stream(f);
  const stream = f.endsWith('.gz') ? input.pipe(createGunzip()) : input;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (n + chunk.length > cap)
        throw new SnapshotError(
          f,
          `holds more than the ${cap / 8} PFNs ${ranges ? 'of its ranges' : 'the zones span'}`,
        );
      chunk.copy(out, n);
      n += chunk.length;
    }
  } catch (e) {
    if (e instanceof SnapshotError) throw e;
    throw new SnapshotError(f, `corrupt or truncated: ${(e as Error).message}`);
  } finally {
    input.destroy();
    if (stream !== input) stream.destroy();
  }
  if (ranges && n !== cap)
    throw new SnapshotError(f, `${n / 8} PFNs where its ranges need ${cap / 8}: truncated`);
  if (n % 8 !== 0) throw new SnapshotError(f, `${n} bytes: not a whole number of 8-byte entries`);
  if (endianness() !== 'LE') swap64(out, n);
  return ranges ? out : out.subarray(0, n);
}

/** Snapshots come from little-endian machines (x86-64, arm64); a big-endian reader swaps. */
function swap64(b: Buffer, n: number): void {
  for (let i = 0; i < n; i += 8) b.subarray(i, i + 8).reverse();
}

/** The flags (lo, hi words) and map count of one PFN, or null when the snapshot did not dump it. */
export function kpageAt(k: KpageData, pfn: number): { lo: number; hi: number; count: number } | null {
  let lo = 0;
  let hi = k.ranges.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const r = k.ranges[mid];
    if (pfn < r.start_pfn) hi = mid - 1;
    else if (pfn >= r.start_pfn + r.nr_pages) lo = mid + 1;
    else {
      const i = pfn - r.start_pfn;
      return { lo: r.flags[2 * i], hi: r.flags[2 * i + 1], count: r.count[2 * i] };
    }
  }
  return null;
}
