/**
 * hugetlb-model.ts — the model's side of docs/fidelity.md, "nr_hugepages on the real kernel and
 * in the model": the experiment scripts/fidelity/hugetlb-real.sh runs on the real kernel, run on
 * simulated 24 GiB machines, with the real captures summarised next to it.
 *
 * For each fragmentation pattern K (keep 1 page of every K), on freshly booted machines (same
 * seed every time, so the output is byte-identical from run to run):
 *   0. start state: a background process grows zone Normal to the real machine's `managed` (the
 *      median of the real runs' "start" captures; deferred_init=lazy grows it as the process
 *      faults), then gives most of it back, leaving used pages scattered over the zone as hours
 *      of use left the real one (age()); 60 s pass so the per-cpu lists drain, then SETTLE s;
 *   1. "start"; a process maps MIB of private anonymous memory (MADV_NOHUGEPAGE), touches every
 *      page, then drops all but 1 page of every K with MADV_DONTNEED; "before";
 *   2. B = free 2 MiB units of zone Normal in "before"'s /proc/buddyinfo; N = min(NMAX, B + EXTRA)
 *      is written to /proc/sys/vm/nr_hugepages; "pool1";
 *   3. compact_memory; "compacted"; WAIT s; "compacted30"; N written again; "pool2"; 0 written;
 *      "released".
 * Each capture is built from the model's files in the format hugetlb-real.sh writes (the same
 * zoneinfo excerpt, meminfo and vmstat lines, nr_hugepages files and the per-section kpageflags
 * counts of hugetlb-kpf.c), and one parser reads both.
 *
 * Three configurations per K:
 *   lazy       Machine.boot({ memory: '24G', deferred_init: 'lazy' }): the real machine;
 *   off        deferred_init 'off' (upstream: zone Normal fully initialised at boot), same start
 *              state and the same request N as `lazy`;
 *   off, >free deferred_init 'off' with N = every free 2 MiB unit of every zone + EXTRA, so the
 *              request cannot be met from free blocks and the kernel must compact (model only: the
 *              real machine is not asked for that much).
 *
 * Usage: npx tsx scripts/fidelity/hugetlb-model.ts [--memory 24G] [--mib 4096]
 *          [--patterns 1,2,64,512] [--extra 160] [--nmax 3072] [--managed PAGES] [--seed 1]
 *          [--configs lazy,off,off-over] [--real docs/fidelity-data/hugetlb/real]
 * With --real, the start `managed` of the model is the median over the real runs of that K
 * (unless --managed is given), and the real runs are summarised next to the model: median and
 * range.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  MADV_DONTNEED,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  Machine,
  PROT_READ,
  PROT_WRITE,
} from '../../src/index.ts';
import { Prng } from '../../src/lib/prng.ts';
import type { Process } from '../../src/vm/process.ts';

const PAGE = 4096;
const MiB = 2 ** 20;
const SECTION = 32768;
const NORMAL_START_PFN = 0x100000;
const NRHP = '/proc/sys/vm/nr_hugepages';
const SYSFS = '/sys/kernel/mm/hugepages/hugepages-2048kB';
const NODE0 = '/sys/devices/system/node/node0/hugepages/hugepages-2048kB';
const KPF_BUDDY = 10;
const KPF_HUGE = 17;
const STAGES = ['start', 'before', 'pool1', 'compacted', 'compacted30', 'pool2', 'released'] as const;
type Stage = (typeof STAGES)[number];

// ---------------------------------------------------------------------------------------------
// Captures: the text hugetlb-real.sh writes, and its parser (used for both sides).

/** hugetlb-real.sh's zoneinfo awk program, line for line. */
export function zoneinfoExcerpt(text: string): string {
  const out: string[] = [];
  let zone = '';
  let cpu = '';
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (/^Node/.test(line)) zone = f[3];
    if (/^ +(pages free|min|low|high|spanned|present|managed) /.test(line) && !/high_/.test(line))
      out.push(`${zone} ${line}`);
    if (/nr_free_pages /.test(line)) out.push(`${zone} ${line}`);
    if (/cpu:/.test(line)) cpu = f[1];
    if (/^ +count:/.test(line)) out.push(`${zone} pcp cpu${cpu} ${line}`);
    if (/^ +high:/.test(line)) out.push(`${zone} pcp cpu${cpu} ${line}`);
  }
  return `${out.join('\n')}\n`;
}

const VMSTAT_LINE =
  /^((nr_free_pages|nr_free_pages_blocks|nr_anon_pages|nr_inactive_file|nr_active_file|thp_fault_alloc) |htlb_|compact_|pgmigrate_|pgscan_|pgsteal_)/;

/** hugetlb-kpf.c's two lines over [start, end) (section aligned), from the model's kpageflags. */
function kpfLines(m: Machine, start: number, end: number): string {
  const nsec = (end - start) / SECTION;
  const huge = new Array<number>(nsec).fill(0);
  const buddy = new Array<number>(nsec).fill(0);
  const chunk = 1 << 16;
  for (let pfn = start; pfn < end; pfn += chunk) {
    const n = Math.min(chunk, end - pfn);
    const bytes = m.readFileBytes('/proc/kpageflags', { offset: pfn * 8, length: n * 8 });
    const words = new Uint32Array(bytes.buffer, bytes.byteOffset, n * 2);
    for (let i = 0; i < n; i++) {
      const lo = words[2 * i];
      const s = Math.floor((pfn + i - start) / SECTION);
      if ((lo >>> KPF_HUGE) & 1) huge[s]++;
      if ((lo >>> KPF_BUDDY) & 1) buddy[s]++;
    }
  }
  const hex = `0x${start.toString(16)}`;
  return `huge ${hex} ${huge.join(' ')}\nbuddy ${hex} ${buddy.join(' ')}\n`;
}

/** One capture of the model's files, in hugetlb-real.sh's format. */
function captureModel(m: Machine, kpf: boolean): string {
  let out = '# buddyinfo\n';
  out += m.readFile('/proc/buddyinfo');
  out += '# zoneinfo\n';
  const zoneinfo = m.readFile('/proc/zoneinfo');
  out += zoneinfoExcerpt(zoneinfo);
  out += '# meminfo\n';
  for (const l of m.readFile('/proc/meminfo').split('\n'))
    if (/^(MemTotal|MemFree|HugePages_|Hugetlb)/.test(l)) out += `${l}\n`;
  out += '# hugepages\n';
  const rd = (p: string): string => m.readFile(p).trim();
  out += `sysctl ${rd(NRHP)}\n`;
  out += `sysfs ${rd(`${SYSFS}/nr_hugepages`)} free ${rd(`${SYSFS}/free_hugepages`)} surplus ${rd(`${SYSFS}/surplus_hugepages`)}\n`;
  out += `node0 ${rd(`${NODE0}/nr_hugepages`)}\n`;
  out += '# vmstat\n';
  for (const l of m.readFile('/proc/vmstat').split('\n')) if (VMSTAT_LINE.test(l)) out += `${l}\n`;
  if (kpf) {
    // Real machine: Normal's initialised part only (hugetlb-real.sh). Upstream boot: all of it.
    const z = parseCapture(out).zones.Normal;
    const lazy = m.config.deferred_init === 'lazy';
    const end = NORMAL_START_PFN + (lazy ? Math.floor(z.managed / SECTION) * SECTION : z.spanned);
    out += `# kpf\n${kpfLines(m, NORMAL_START_PFN, end)}`;
  }
  return out;
}

export interface ZoneInfo {
  managed: number;
  spanned: number;
  present: number;
  nrFree: number;
  min: number;
  low: number;
  high: number;
  /** Pages on the zone's per-cpu lists, all CPUs. */
  pcp: number;
}

export interface Capture {
  /** Free blocks per order, per zone name (/proc/buddyinfo). */
  buddy: Record<string, number[]>;
  zones: Record<string, ZoneInfo>;
  meminfo: Record<string, number>;
  /** The three nr_hugepages files and sysfs free/surplus. */
  pool: { sysctl: number; sysfs: number; free: number; surplus: number; node0: number };
  vmstat: Record<string, number>;
  /** Hugetlb and buddy pages per 128 MiB section of zone Normal, from its first pfn on. */
  kpf?: { start: number; huge: number[]; buddy: number[] };
}

export function parseCapture(text: string): Capture {
  const sections = new Map<string, string[]>();
  let cur = '';
  for (const line of text.split('\n')) {
    const h = line.match(/^# (\w+)/);
    if (h) {
      cur = h[1];
      sections.set(cur, []);
    } else if (line.trim()) sections.get(cur)?.push(line);
  }
  const buddy: Capture['buddy'] = {};
  for (const l of sections.get('buddyinfo') ?? []) {
    const f = l.trim().split(/\s+/);
    buddy[f[3]] = f.slice(4).map(Number);
  }
  const zones: Capture['zones'] = {};
  for (const l of sections.get('zoneinfo') ?? []) {
    const f = l.trim().split(/\s+/);
    zones[f[0]] ??= { managed: 0, spanned: 0, present: 0, nrFree: 0, min: 0, low: 0, high: 0, pcp: 0 };
    const z = zones[f[0]];
    if (f[1] === 'pcp') {
      if (f[3] === 'count:') z.pcp += Number(f[4]);
    } else if (f[1] === 'nr_free_pages') z.nrFree = Number(f[2]);
    else if (['managed', 'spanned', 'present', 'min', 'low', 'high'].includes(f[1]))
      (z as unknown as Record<string, number>)[f[1]] = Number(f[2]);
  }
  const meminfo: Capture['meminfo'] = {};
  for (const l of sections.get('meminfo') ?? []) {
    const m = l.match(/^(\S+):\s+(\d+)/);
    if (m) meminfo[m[1]] = Number(m[2]);
  }
  const pool = { sysctl: 0, sysfs: 0, free: 0, surplus: 0, node0: 0 };
  for (const l of sections.get('hugepages') ?? []) {
    const f = l.trim().split(/\s+/);
    if (f[0] === 'sysctl') pool.sysctl = Number(f[1]);
    else if (f[0] === 'node0') pool.node0 = Number(f[1]);
    else if (f[0] === 'sysfs') {
      pool.sysfs = Number(f[1]);
      pool.free = Number(f[3]);
      pool.surplus = Number(f[5]);
    }
  }
  const vmstat: Capture['vmstat'] = {};
  for (const l of sections.get('vmstat') ?? []) {
    const f = l.trim().split(/\s+/);
    vmstat[f[0]] = Number(f[1]);
  }
  let kpf: Capture['kpf'];
  const k = sections.get('kpf');
  if (k?.length) {
    const line = (name: string): number[] =>
      (k.find((l) => l.startsWith(`${name} `)) ?? '').trim().split(/\s+/).slice(2).map(Number);
    kpf = { start: Number.parseInt(k[0].split(/\s+/)[1], 16), huge: line('huge'), buddy: line('buddy') };
  }
  return { buddy, zones, meminfo, pool, vmstat, kpf };
}

// ---------------------------------------------------------------------------------------------
// The model's experiment.

/** What a model run is booted and run with. */
export interface ModelOptions {
  memory: string;
  deferred: 'lazy' | 'off';
  mib: number;
  seed: number;
  /** Zone Normal's managed pages to grow to before the start (lazy), and the pages to age. */
  managed: number;
  extra: number;
  nmax: number;
  /** Request every free 2 MiB unit + extra (uncapped), not Normal's + extra. */
  overFree: boolean;
  /** The request, when given (the `off` configuration asks what `lazy` asked). */
  n?: number;
  waitS: number;
  settleS: number;
}

/** One run: its captures by stage, the request, and the simulated time of each write. */
export interface Run {
  k: number;
  n: number;
  caps: Record<Stage, Capture>;
  /** ms per write: nr_hugepages, compact_memory, nr_hugepages_again, release. */
  ms: Record<string, number>;
  /** Real runs: pages fragment.c mapped (its "touched" line). */
  fragment?: { touched: number };
}

/** Free 2 MiB units of a zone: order-9 + 2 x order-10 blocks. */
function units(c: Capture, zone: string): number {
  const o = c.buddy[zone];
  return o ? o[9] + 2 * o[10] : 0;
}

/**
 * Grow zone Normal to `managed` pages (lazy: faults grow it a section at a time; upstream: the
 * same number of pages is faulted), then age it as hours of use aged the real machine: in each
 * 4 MiB of what was faulted, give it all back (probability 0.65) or give back naturally aligned
 * pieces of random order 0..8 with probability 0.55 each (compaction-model.ts's age()). On the
 * real machine's 2 M-page Normal that leaves ~1.3 GiB used in holes all over the zone and ~1.5 GiB
 * free in blocks below 2 MiB, as its "start" captures show (~1.3 GiB used, ~1.3 GiB in small
 * blocks). Built instantly; then 60 s pass so the per-cpu lists drain.
 */
function age(
  m: Machine,
  managed: number,
  seed: number,
  pages: number | null,
): { bg: Process; pages: number } {
  const bg = m.spawn({ cpu: 1 });
  const chunk = 32 * MiB;
  const bases: number[] = [];
  const normal = m.mm.zones.find((z) => z.name === 'Normal');
  if (!normal) throw new Error('no zone Normal');
  let faulted = 0;
  m.instantly(() => {
    while (pages === null ? normal.managed_pages < managed : faulted < pages) {
      const a = bg.mmap(0, chunk, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
      bg.madvise(a, chunk, MADV_NOHUGEPAGE);
      bg.touch(a, chunk, { write: true });
      bases.push(a);
      faulted += chunk / PAGE;
    }
    const r = new Prng(seed * 7919 + 17);
    for (const base of bases) {
      for (let unit = 0; unit < chunk / PAGE; unit += 1024) {
        if (r.next() < 0.65) {
          bg.madvise(base + unit * PAGE, 1024 * PAGE, MADV_DONTNEED);
          continue;
        }
        for (let i = unit; i < unit + 1024; ) {
          let order = r.below(9);
          while (order > 0 && i % (1 << order)) order--;
          const nr = 1 << order;
          if (r.next() < 0.55) bg.madvise(base + i * PAGE, nr * PAGE, MADV_DONTNEED);
          i += nr;
        }
      }
    }
  });
  m.advance('60s');
  return { bg, pages: faulted };
}

export function runModel(
  k: number,
  o: ModelOptions,
  agePages: number | null = null,
): Run & { agePages: number } {
  const m = Machine.boot({ memory: o.memory, cpus: 2, seed: o.seed, deferred_init: o.deferred });
  const { bg, pages } = age(m, o.managed, o.seed, agePages);
  m.advance(`${o.settleS}s`);
  const caps = {} as Record<Stage, Capture>;
  const cap = (s: Stage, kpf = false): void => {
    caps[s] = parseCapture(captureModel(m, kpf));
  };
  cap('start');
  const p = m.spawn({ cpu: 0 });
  const len = o.mib * MiB;
  const n = len / PAGE;
  const base = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  p.madvise(base, len, MADV_NOHUGEPAGE);
  p.touch(base, len, { write: true });
  if (k > 1) {
    for (let i = 0; i < n; i += k) {
      const drop = Math.min(k - 1, n - i - 1);
      if (drop > 0) p.madvise(base + (i + 1) * PAGE, drop * PAGE, MADV_DONTNEED);
    }
  }
  cap('before', true);
  const before = caps.before;
  let req: number;
  if (o.n !== undefined) req = o.n;
  else if (o.overFree) req = Object.keys(before.buddy).reduce((s, z) => s + units(before, z), 0) + o.extra;
  else req = Math.min(o.nmax, units(before, 'Normal') + o.extra);
  const ms: Record<string, number> = {};
  const timed = (what: string, path: string, value: number): void => {
    const t0 = m.kernel_ns;
    m.writeFile(path, String(value));
    ms[what] = (m.kernel_ns - t0) / 1e6;
  };
  timed('nr_hugepages', NRHP, req);
  cap('pool1', true);
  timed('compact_memory', '/proc/sys/vm/compact_memory', 1);
  cap('compacted');
  m.advance(`${o.waitS}s`);
  cap('compacted30');
  timed('nr_hugepages_again', NRHP, req);
  cap('pool2', true);
  timed('release', NRHP, 0);
  cap('released');
  m.checkInvariants();
  p.exit();
  bg.exit();
  return { k, n: req, caps, ms, agePages: pages };
}

// ---------------------------------------------------------------------------------------------
// The real kernel's captures (hugetlb-real.sh).

export function readReal(dir: string): Map<number, Run[]> {
  const out = new Map<number, Run[]>();
  const writes = readFileSync(join(dir, 'writes.tsv'), 'utf8').trim().split('\n').slice(1);
  const ms = new Map<string, Record<string, number>>();
  const req = new Map<string, number>();
  for (const w of writes) {
    const [run, k, what, value, t] = w.split('\t');
    const key = `r${run}-K${k}`;
    const rec = ms.get(key) ?? {};
    rec[what] = Number(t);
    ms.set(key, rec);
    if (what === 'nr_hugepages') req.set(key, Number(value));
  }
  const dirs = readdirSync(dir)
    .filter((d) => /^r\d+-K\d+$/.test(d))
    .sort((a, b) => {
      const [ra, ka] = a.slice(1).split('-K').map(Number);
      const [rb, kb] = b.slice(1).split('-K').map(Number);
      return ra - rb || ka - kb;
    });
  for (const d of dirs) {
    if (!existsSync(join(dir, d, 'released.txt'))) continue;
    const k = Number(d.split('-K')[1]);
    const caps = {} as Record<Stage, Capture>;
    for (const s of STAGES) caps[s] = parseCapture(readFileSync(join(dir, d, `${s}.txt`), 'utf8'));
    const touched = JSON.parse(readFileSync(join(dir, d, 'fragment.jsonl'), 'utf8').split('\n')[0]);
    const list = out.get(k) ?? [];
    list.push({ k, n: req.get(d) ?? 0, caps, ms: ms.get(d) ?? {}, fragment: { touched: touched.present } });
    out.set(k, list);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Metrics and tables.

function dv(a: Capture, b: Capture, name: string): number {
  return (b.vmstat[name] ?? 0) - (a.vmstat[name] ?? 0);
}

/** Hugetlb pages (in 2 MiB pages) in the sections at index >= from of a kpf capture. */
function hugeFrom(c: Capture, from: number): number {
  return c.kpf ? c.kpf.huge.slice(from).reduce((s, x) => s + x, 0) / 512 : Number.NaN;
}

/** Sum of a zone field over every zone of a capture. */
function allZones(c: Capture, field: keyof ZoneInfo): number {
  return Object.values(c.zones).reduce((s, z) => s + z[field], 0);
}

/** The numbers the tables show for one run (same code for real and model). */
export function metrics(r: Run): Record<string, number> {
  const c = r.caps;
  const nb = c.before.zones.Normal;
  const n1 = c.pool1.zones.Normal;
  // A lazily grown Normal: the kpageflags counts stop at its initialised part (hugetlb-real.sh).
  const lazy = (c.before.kpf?.huge.length ?? 0) * SECTION < nb.spanned;
  const secBefore = Math.floor(nb.managed / SECTION);
  const bNormal = units(c.before, 'Normal');
  const total = c.pool1.meminfo.HugePages_Total;
  const inNormal = hugeFrom(c.pool1, 0);
  const inGrown = lazy ? hugeFrom(c.pool1, secBefore) : 0;
  const na = Number.NaN;
  return {
    'Normal managed, start (pages)': c.start.zones.Normal.managed,
    'Normal managed growth while fragmenting (sections)':
      (nb.managed - c.start.zones.Normal.managed) / SECTION,
    'Normal free 2 MiB units, start': units(c.start, 'Normal'),
    'Normal free 2 MiB units, before (B)': bNormal,
    'DMA32 free 2 MiB units, before': units(c.before, 'DMA32'),
    'Normal pcp pages, before': nb.pcp,
    'requested N': r.n,
    'delivered, first write (HugePages_Total)': total,
    'htlb_buddy_alloc_success, first write': dv(c.before, c.pool1, 'htlb_buddy_alloc_success'),
    'htlb_buddy_alloc_fail, first write': dv(c.before, c.pool1, 'htlb_buddy_alloc_fail'),
    'Normal sections grown by the first write': (n1.managed - nb.managed) / SECTION,
    'sections predicted, ceil((N - B) / 64) (lazy)': lazy ? Math.max(0, Math.ceil((r.n - bNormal) / 64)) : na,
    'pool pages in the grown sections': lazy ? inGrown : na,
    'pool pages from the old part of Normal beyond B (lazy)': lazy ? inNormal - inGrown - bNormal : na,
    'Normal pcp pages taken by the first write, / 512': (nb.pcp - n1.pcp) / 512,
    'pool pages outside Normal (DMA32)': total - inNormal,
    'DMA32 free pages used by the first write': c.before.zones.DMA32.nrFree - c.pool1.zones.DMA32.nrFree,
    'Normal free 2 MiB units left after the first write': units(c.pool1, 'Normal'),
    'compact_stall, first write': dv(c.before, c.pool1, 'compact_stall'),
    'compact_success, first write': dv(c.before, c.pool1, 'compact_success'),
    'compact_fail, first write': dv(c.before, c.pool1, 'compact_fail'),
    'pgmigrate_success, first write': dv(c.before, c.pool1, 'pgmigrate_success'),
    'pgscan_direct, first write': dv(c.before, c.pool1, 'pgscan_direct'),
    'first write (ms; model: simulated)': r.ms.nr_hugepages ?? na,
    'compact_memory (ms; model: simulated)': r.ms.compact_memory ?? na,
    'pgmigrate_success, compact_memory': dv(c.pool1, c.compacted, 'pgmigrate_success'),
    'Normal free 2 MiB units gained, compact_memory at once':
      units(c.compacted, 'Normal') - units(c.pool1, 'Normal'),
    'Normal free 2 MiB units gained, 30 s later': units(c.compacted30, 'Normal') - units(c.pool1, 'Normal'),
    'Normal sections grown after the first write, before the second':
      (c.compacted30.zones.Normal.managed - n1.managed) / SECTION,
    'delivered, second write (HugePages_Total)': c.pool2.meminfo.HugePages_Total,
    'Normal sections grown by the second write':
      (c.pool2.zones.Normal.managed - c.compacted30.zones.Normal.managed) / SECTION,
    'second write (ms; model: simulated)': r.ms.nr_hugepages_again ?? na,
    'release to 0 (ms; model: simulated)': r.ms.release ?? na,
    'Normal pcp pages added by the release': c.released.zones.Normal.pcp - c.pool2.zones.Normal.pcp,
    'MemTotal (kB), before': c.before.meminfo.MemTotal,
    'MemTotal - all zones managed (pages), before':
      c.before.meminfo.MemTotal / 4 - allZones(c.before, 'managed'),
    'MemFree - all zones nr_free_pages (pages), before':
      c.before.meminfo.MemFree / 4 - allZones(c.before, 'nrFree'),
    'nr_hugepages files agree (sysctl = sysfs = node0)': [c.pool1, c.pool2].every(
      (x) =>
        x.pool.sysctl === x.pool.sysfs &&
        x.pool.sysfs === x.pool.node0 &&
        x.pool.sysctl === x.meminfo.HugePages_Total,
    )
      ? 1
      : 0,
    'THP faults of other tasks, before..pool2': dv(c.before, c.pool2, 'thp_fault_alloc'),
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const h = s.length >> 1;
  return s.length % 2 ? s[h] : (s[h - 1] + s[h]) / 2;
}

function fmt(x: number): string {
  if (Number.isNaN(x)) return '–';
  return Number.isInteger(x) ? String(x) : x.toFixed(Math.abs(x) < 10 ? 2 : 1);
}

function table(header: string[], rows: string[][]): string {
  const w = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells: string[]): string =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(' | ')} |`;
  const sep = `|${w.map((n, i) => (i === 0 ? `${'-'.repeat(n + 2)}` : `${'-'.repeat(n + 1)}:`)).join('|')}|`;
  return [line(header), sep, ...rows.map(line)].join('\n');
}

function orderRows(label: string, c: Capture): string[] {
  return [label, ...c.buddy.Normal.map(String), String(c.zones.Normal.pcp), String(c.zones.Normal.managed)];
}

function main(): void {
  const { values } = parseArgs({
    options: {
      memory: { type: 'string', default: '24G' },
      mib: { type: 'string', default: '4096' },
      patterns: { type: 'string', default: '1,2,64,512' },
      extra: { type: 'string', default: '160' },
      nmax: { type: 'string', default: '3072' },
      managed: { type: 'string' },
      seed: { type: 'string', default: '1' },
      configs: { type: 'string', default: 'lazy,off,off-over' },
      wait: { type: 'string', default: '30' },
      settle: { type: 'string', default: '30' },
      real: { type: 'string' },
    },
  });
  const mib = Number(values.mib);
  if (!Number.isInteger(mib) || mib <= 0 || mib > 4096) throw new Error('--mib: 1 .. 4096');
  const patterns = values.patterns.split(',').map(Number);
  const configs = values.configs.split(',');
  const real = values.real ? readReal(values.real) : null;
  const base = {
    memory: values.memory,
    mib,
    seed: Number(values.seed),
    extra: Number(values.extra),
    nmax: Number(values.nmax),
    waitS: Number(values.wait),
    settleS: Number(values.settle),
  };
  console.log(
    `# nr_hugepages: model (${base.memory}, 2 CPUs, seed ${base.seed}) ${real ? 'vs real kernel ' : ''}— ${mib} MiB, keep 1 page of every K; N = min(${base.nmax}, B + ${base.extra})`,
  );
  for (const k of patterns) {
    const realRuns = real?.get(k) ?? [];
    const managed = values.managed
      ? Number(values.managed)
      : realRuns.length
        ? median(realRuns.map((r) => r.caps.start.zones.Normal.managed))
        : 2097152;
    console.log(
      `\n## K = ${k}${realRuns.length ? ` (real: ${realRuns.length} runs)` : ''}; model start: Normal grown to ${managed} pages, aged\n`,
    );
    const runs: Array<[string, Run]> = [];
    let lazy: (Run & { agePages: number }) | null = null;
    if (configs.includes('lazy') || configs.includes('off')) {
      lazy = runModel(k, { ...base, deferred: 'lazy', managed, overFree: false });
      if (configs.includes('lazy')) runs.push(['model lazy', lazy]);
    }
    if (configs.includes('off') && lazy)
      runs.push([
        'model off',
        runModel(k, { ...base, deferred: 'off', managed, overFree: false, n: lazy.n }, lazy.agePages),
      ]);
    if (configs.includes('off-over'))
      runs.push([
        'model off, >free',
        runModel(k, { ...base, deferred: 'off', managed, overFree: true }, lazy?.agePages ?? null),
      ]);

    const orderHeader = ['zone Normal', ...Array.from({ length: 11 }, (_, o) => `o${o}`), 'pcp', 'managed'];
    const rows: string[][] = [];
    for (const [label, r] of runs)
      for (const s of ['before', 'pool1', 'compacted30', 'pool2'] as const)
        rows.push(orderRows(`${label} ${s}`, r.caps[s]));
    if (realRuns.length)
      for (const s of ['before', 'pool1', 'compacted30', 'pool2'] as const)
        rows.push(orderRows(`real r1 ${s}`, realRuns[0].caps[s]));
    console.log(table(orderHeader, rows));
    console.log();

    const rm = realRuns.map(metrics);
    const mm = runs.map(([, r]) => metrics(r));
    const header = [
      '',
      ...(rm.length ? ['real median', 'real min..max'] : []),
      ...runs.map(([label]) => label),
    ];
    const keys = Object.keys(mm[0] ?? rm[0] ?? {});
    const trows = keys.map((key) => {
      const row = [key];
      if (rm.length) {
        const xs = rm.map((x) => x[key]).filter((x) => !Number.isNaN(x));
        row.push(
          xs.length ? fmt(median(xs)) : '–',
          xs.length ? `${fmt(Math.min(...xs))}..${fmt(Math.max(...xs))}` : '–',
        );
      }
      for (const x of mm) row.push(fmt(x[key]));
      return row;
    });
    console.log(table(header, trows));
    for (const [i, rr] of realRuns.entries()) {
      const x = metrics(rr);
      console.log(
        `real r${i + 1}: N ${rr.n}, B ${x['Normal free 2 MiB units, before (B)']}, delivered ${x['delivered, first write (HugePages_Total)']}/${x['delivered, second write (HugePages_Total)']}, sections grown ${x['Normal sections grown by the first write']} (predicted ${x['sections predicted, ceil((N - B) / 64) (lazy)']}), pool pages in them ${fmt(x['pool pages in the grown sections'])}, write ${fmt(x['first write (ms; model: simulated)'])} ms, managed ${x['Normal managed, start (pages)']}, THP faults ${x['THP faults of other tasks, before..pool2']}`,
      );
    }
  }
}

main();
