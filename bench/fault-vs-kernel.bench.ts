/**
 * The model's anonymous fault path against the real kernel of the machine the benchmark runs on.
 * bench/c/fault.c (built with `gcc -O2` into bench/out/) maps N MiB private anonymous memory and
 * faults it in three ways, one byte per 4 KiB page: stores (a zeroed page per fault), loads of
 * never-written memory (the zero page is mapped, nothing is allocated) and mmap(MAP_POPULATE)
 * (the kernel faults every page in itself, with no exception per page). It times the faulting with
 * CLOCK_MONOTONIC and counts the faults the kernel charged with getrusage() ru_minflt; THP is kept
 * out (PR_SET_THP_DISABLE, MADV_NOHUGEPAGE). The model does the same on a 16 GiB machine
 * (Process.mmap + madvise + touch, and mmap with MAP_POPULATE) and counts its faults with the
 * pgfault line of its /proc/vmstat, the counter the kernel bumps next to min_flt.
 *
 * Both sides time only the faulting (munmap is timed apart and shown in the detail), run untimed
 * warm-up runs first (one for the kernel, a few for the model's JIT) and report the median run. Rows per mode: the kernel's and the model's ns per
 * fault, the model's speed relative to the kernel's (kernel time / model time: above 1 the model
 * is faster), and the model's faults per page against the kernel's count (which must be equal:
 * one per page in every mode). Without gcc (or off Linux) the kernel rows are skipped with a note.
 *
 * In a VM the kernel's numbers depend on the host: where the guest reports free memory to it
 * (free page reporting: virtio-balloon in our Firecracker VMs, /sys/module/page_reporting), the
 * host drops the reported pages and the guest's next touch of one pays a host fault as well
 * (≈ 5-6 µs per 4 KiB write fault here against ≈ 1.5 µs warm). Back-to-back runs mostly reuse
 * warm pages, so the medians are the warm cost; the "first run" and "reported" details show
 * when that was not so.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { platform } from 'node:os';
import { fileURLToPath } from 'node:url';
import { Machine } from '../src/sim/machine.ts';
import { MM_ANONPAGES } from '../src/vm/mm_struct.ts';
import type { Process } from '../src/vm/process.ts';
import {
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../src/vm/uapi.ts';
import { defineBenchmark, note, type Row } from './lib/harness.ts';

const SOURCE = fileURLToPath(new URL('./c/fault.c', import.meta.url));
const OUT = fileURLToPath(new URL('./out/', import.meta.url));
const BINARY = `${OUT}fault`;
const PAGE = 4096;
const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

type Mode = 'write' | 'read' | 'populate';
const MODES: Mode[] = ['write', 'read', 'populate'];
const LABEL: Record<Mode, string> = {
  write: 'write fault (zeroed page)',
  read: 'read fault (zero page)',
  populate: 'MAP_POPULATE, per page',
};

/** One line of fault.c's output. */
interface KernelResult {
  mode: Mode;
  mib: number;
  page_size: number;
  pages: number;
  runs: number;
  thp: string;
  faults: number[];
  ns: number[];
  munmap_ns: number[];
  first_ns: number;
  first_faults: number;
  median_ns: number;
  median_faults: number;
  median_munmap_ns: number;
  ns_per_fault: number;
  /** KiB of free memory the guest reported to its host during the mode's runs; -1 if none. */
  reported_kib: number;
}

/** The model's runs of one mode. */
interface ModelResult {
  ns: number[];
  faults: number[];
  munmap_ns: number[];
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  return s[(s.length - 1) >> 1];
}

/** gcc's version, or undefined when there is no gcc to build the yardstick with. */
function gccVersion(): string | undefined {
  try {
    return execFileSync('gcc', ['-dumpfullversion'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim();
  } catch {
    return undefined;
  }
}

function runKernel(mib: number, runs: number): Map<Mode, KernelResult> {
  const out = execFileSync(BINARY, [String(mib), String(runs)], { encoding: 'utf8' });
  const byMode = new Map<Mode, KernelResult>();
  for (const line of out.trim().split('\n')) {
    const r = JSON.parse(line) as KernelResult;
    if (r.page_size !== PAGE) throw new Error(`fault.c: page size ${r.page_size}, the model's is ${PAGE}`);
    byMode.set(r.mode, r);
  }
  return byMode;
}

const hrnow = (): number => Number(process.hrtime.bigint());

/** One model run of `mode` on `len` bytes: the fault time, the faults counted, the munmap time. */
function modelRun(
  m: Machine,
  p: Process,
  mode: Mode,
  len: number,
  verify: boolean,
): [number, number, number] {
  const pgfault = (): number =>
    Number(/^pgfault (\d+)$/m.exec(m.readFile('/proc/vmstat'))?.[1] ?? Number.NaN);
  const pages = len / PAGE;
  // No forced gc() between runs: a full collection before each one made the runs slower and
  // bimodal (write 230-300 ns against a steady 180, read 76-150 against 80).
  let a: number;
  let t0: number;
  let t1: number;
  let f0: number;
  let done: number;
  if (mode === 'populate') {
    f0 = pgfault();
    t0 = hrnow();
    a = p.mmap(0, len, RW, ANON | MAP_POPULATE);
    t1 = hrnow();
    done = p.mm.rss[MM_ANONPAGES];
  } else {
    a = p.mmap(0, len, RW, ANON);
    p.madvise(a, len, MADV_NOHUGEPAGE);
    f0 = pgfault();
    t0 = hrnow();
    done = p.touch(a, len, { write: mode === 'write' });
    t1 = hrnow();
  }
  const faults = pgfault() - f0;
  // The work itself must have happened whatever the counters say: every page faulted in (and,
  // for reads, nothing allocated: the zero page is mapped).
  const rss = p.mm.rss[MM_ANONPAGES];
  if (done !== pages || rss !== (mode === 'read' ? 0 : pages))
    throw new Error(`model ${mode}: ${done} of ${pages} pages faulted in, RssAnon ${rss} pages`);
  if (verify) {
    const again = p.touch(a, len, { write: mode !== 'read' });
    if (again !== 0) throw new Error(`model ${mode}: touching the region again took ${again} faults`);
  }
  const u0 = hrnow();
  p.munmap(a, len);
  return [t1 - t0, faults, hrnow() - u0];
}

function runModel(
  m: Machine,
  p: Process,
  mode: Mode,
  len: number,
  runs: number,
  warmup: number,
): ModelResult {
  for (let i = 0; i < warmup; i++) modelRun(m, p, mode, len, i === 0);
  const r: ModelResult = { ns: [], faults: [], munmap_ns: [] };
  for (let i = 0; i < runs; i++) {
    const [ns, faults, un] = modelRun(m, p, mode, len, false);
    r.ns.push(ns);
    r.faults.push(faults);
    r.munmap_ns.push(un);
  }
  return r;
}

const fmt = (ns: number): string => (ns >= 1000 ? `${(ns / 1000).toFixed(2)} µs` : `${ns.toFixed(0)} ns`);

export default defineBenchmark({
  title: 'anonymous faults, model vs the real kernel of this machine (fault.c, gcc -O2)',
  async run(ctx) {
    const mib = ctx.quick ? 64 : 256; // at most 512 MiB on the real machine
    const runs = ctx.quick ? 5 : 9;
    // A model run is ~10 ms against the kernel's ~100 ms: more of them steady the median on a
    // shared box.
    const modelRuns = ctx.quick ? 7 : 15;
    const len = mib * 2 ** 20;
    const pages = len / PAGE;
    const rows: Row[] = [];

    let kernel: Map<Mode, KernelResult> | undefined;
    const gcc = gccVersion();
    if (platform() !== 'linux') note(`not Linux (${platform()}): no real-kernel rows`);
    else if (!gcc) note('gcc not found: no real-kernel rows (install gcc to compare with the kernel)');
    else {
      mkdirSync(OUT, { recursive: true });
      note(`gcc ${gcc} -O2 ${SOURCE}`);
      execFileSync('gcc', ['-O2', '-o', BINARY, SOURCE], { stdio: 'inherit' });
      note(`real kernel: ${mib} MiB x (1 + ${runs}) runs per mode`);
      kernel = runKernel(mib, runs);
    }

    note('model: boot 16G');
    const thp = 'madvise'; // the default; the regions are MADV_NOHUGEPAGE anyway
    const m = Machine.boot({ memory: '16G', cpus: 2, thp });
    const p = m.spawn();

    for (const mode of MODES) {
      note(`model: ${mode}`);
      const model = runModel(m, p, mode, len, modelRuns, ctx.quick ? 3 : 5);
      const mFaults = median(model.faults);
      // Per page faulted in (modelRun checked every page was): the model's counter may disagree.
      const mNs = median(model.ns) / pages;
      const mMin = Math.min(...model.ns) / pages;
      const mUnmap = median(model.munmap_ns) / pages;
      const k = kernel?.get(mode);
      const label = LABEL[mode];
      if (k) {
        const kMin = Math.min(...k.ns) / k.median_faults;
        rows.push({
          case: `${label}: real kernel`,
          metric: 'time per fault',
          value: k.ns_per_fault,
          unit: 'ns',
          detail:
            `median of ${k.runs} runs of ${k.mib} MiB (min ${kMin.toFixed(0)} ns); first run ` +
            `${(k.first_ns / k.first_faults).toFixed(0)} ns/fault; munmap ${(k.median_munmap_ns / k.pages).toFixed(0)} ns/page; ` +
            `THP ${k.thp}` +
            (k.reported_kib >= 0
              ? `; ${(k.reported_kib / 1024).toFixed(0)} MiB reported free to the host meanwhile`
              : ''),
        });
      }
      rows.push({
        case: `${label}: model`,
        metric: 'time per fault',
        value: mNs,
        unit: 'ns',
        detail:
          `median of ${modelRuns} runs of ${mib} MiB (min ${mMin.toFixed(0)} ns); munmap ${mUnmap.toFixed(0)} ns/page; ` +
          `THP ${thp}`,
      });
      if (!k) continue;
      const speed = k.ns_per_fault / mNs;
      rows.push({
        case: `${label}: model speed / kernel speed`,
        metric: 'speed ratio',
        value: speed,
        unit: 'x',
        detail:
          speed >= 1
            ? `the model faults ${speed.toFixed(1)}x as fast as this kernel (${fmt(mNs)} vs ${fmt(k.ns_per_fault)})`
            : `the model is ${(1 / speed).toFixed(1)}x slower than this kernel (${fmt(mNs)} vs ${fmt(k.ns_per_fault)})`,
      });
      const same =
        model.faults.every((f) => f === k.median_faults) && k.faults.every((f) => f === k.median_faults);
      let why = '';
      if (!same && mode === 'populate' && mFaults === 0)
        why =
          '; the model populated every page but counted no pgfault: the kernel charges GUP faults ' +
          '(mm_account_fault() counts PGFAULT and min_flt when regs is NULL)';
      rows.push({
        case: `${label}: faults, model vs kernel`,
        metric: 'faults per page',
        value: mFaults / pages,
        unit: 'faults/page',
        target: `= kernel (${(k.median_faults / k.pages).toFixed(2)})`,
        met: same,
        detail: `model ${mFaults} (vmstat pgfault), kernel ${k.median_faults} (ru_minflt) for ${pages} pages${why}`,
      });
    }
    p.exit();
    const v = m.invariantViolations();
    if (v.length) throw new Error(`invariants broken after the run:\n  ${v.join('\n  ')}`);
    return rows;
  },
});
