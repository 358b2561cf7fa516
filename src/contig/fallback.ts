/**
 * The userspace fallback Guy Shattah described in the 2017 thread ("failure is acceptable and
 * expected ... a typical user falls back to non-contiguous memory"), as a library function a
 * driver's user-space library would carry. It climbs down a ladder until a rung gives memory:
 *
 * 1. `contig`: mmap(MAP_CONTIG), one physically contiguous run or an errno;
 * 2. `contig-best-effort`: mmap(MAP_CONTIG | MAP_CONTIG_BEST_EFFORT), the fewest, largest runs;
 * 3. `hugetlb`: mmap(MAP_HUGETLB) of 2 MiB pages, only if the pool already has enough free pages
 *    (an unprivileged library cannot grow it: nr_hugepages is root's);
 * 4. `4k-thp`: plain anonymous memory with MADV_HUGEPAGE, faulted in.
 *
 * A kernel without MAP_CONTIG ignores the flag (an unknown mmap flag is silently dropped with
 * MAP_PRIVATE), so the helper checks what it got: a `contig` mapping must be one resident
 * physical segment, as the library would see through /proc/self/pagemap (PFNs need
 * CAP_SYS_ADMIN there; the model reads the page tables directly). If the flag was ignored, the
 * best-effort rung is skipped too.
 */
import { PAGE_SIZE } from '../mm/mmzone.ts';
import type { Machine } from '../sim/machine.ts';
import type { Process } from '../vm/process.ts';
import {
  MADV_HUGEPAGE,
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_CONTIG_BEST_EFFORT,
  MAP_HUGE_2MB,
  MAP_HUGETLB,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../vm/uapi.ts';
import { buffer_layout, missing_pages } from './buffer_layout.ts';
import { failure } from './collateral.ts';
import { type DeviceBenefit, deviceBenefits } from './compare.ts';
import { type DeviceProfile, device_profile, RDMA_NIC } from './device_profiles.ts';
import { physical_segments } from './segments.ts';

export const FALLBACK_RUNGS = ['contig', 'contig-best-effort', 'hugetlb', '4k-thp'] as const;
export type FallbackRung = (typeof FALLBACK_RUNGS)[number];

const RW = PROT_READ | PROT_WRITE;
const HPAGE = 2 * 2 ** 20;
const POOL = '/sys/kernel/mm/hugepages/hugepages-2048kB';

/** One rung tried. */
export interface RungAttempt {
  rung: FallbackRung;
  ok: boolean;
  /** The errno of a failed call; null when the rung succeeded or was skipped. */
  errno: string | null;
  /** The requesting process's time in the kernel on this rung, ns. */
  latency_ns: number;
  note: string;
}

/** Where the ladder ended (JSON-serialisable). */
export interface FallbackResult {
  /** The rung that gave the buffer, or null if none did. */
  rung: FallbackRung | null;
  addr: number;
  len: number;
  attempts: RungAttempt[];
  /** What the device makes of the final buffer (null without one). */
  device: DeviceBenefit | null;
}

export interface FallbackOptions {
  /** The device the buffer is for (default: the RDMA NIC). */
  device?: DeviceProfile | string;
  /** Rungs to try, in order (default: all four). */
  rungs?: readonly FallbackRung[];
}

/** A rung's outcome before timing: the buffer, an errno, or a reason to skip. */
type Try = { addr: number; len: number } | { errno: string; note: string } | { skip: string };

function tryMap(proc: Process, len: number, flags: number, then?: (a: number) => void): Try {
  try {
    const a = proc.mmap(0, len, RW, flags);
    then?.(a);
    return { addr: a, len };
  } catch (e) {
    return { errno: failure(e), note: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * Climb down the ladder for `bytes` as `proc`: the first rung that gives memory wins, its buffer
 * stays mapped (the caller owns it) and its device cost is reported.
 */
export function contigFallback(
  m: Machine,
  proc: Process,
  bytes: number,
  opts: FallbackOptions = {},
): FallbackResult {
  if (!Number.isInteger(bytes) || bytes <= 0 || bytes % PAGE_SIZE)
    throw new RangeError(`contigFallback: bytes ${bytes} is not a positive multiple of ${PAGE_SIZE}`);
  const device = typeof opts.device === 'string' ? device_profile(opts.device) : (opts.device ?? RDMA_NIC);
  const rungs = opts.rungs ?? FALLBACK_RUNGS;
  const attempts: RungAttempt[] = [];
  let ignored = false;

  const rung = (name: FallbackRung): Try => {
    const contig = MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG;
    switch (name) {
      case 'contig': {
        const r = tryMap(proc, bytes, contig);
        if (!('addr' in r)) return r;
        // A kernel without MAP_CONTIG maps ordinary, unpopulated memory: give it back.
        const layout = buffer_layout(m.vm, proc.mm, r.addr, r.len);
        if (missing_pages(layout) === 0 && physical_segments(layout.pfns).count === 1) return r;
        proc.munmap(r.addr, r.len);
        ignored = true;
        return { skip: 'the kernel ignored MAP_CONTIG: the mapping was not one resident physical segment' };
      }
      case 'contig-best-effort':
        if (ignored) return { skip: 'MAP_CONTIG is not supported by this kernel' };
        return tryMap(proc, bytes, contig | MAP_CONTIG_BEST_EFFORT);
      case 'hugetlb': {
        const need = Math.ceil(bytes / HPAGE);
        const files = m.listFiles('/sys/kernel/mm/hugepages');
        if (!files.includes(`${POOL}/free_hugepages`)) return { skip: 'no 2 MiB hugetlb pages' };
        const free =
          Number(m.readFile(`${POOL}/free_hugepages`)) - Number(m.readFile(`${POOL}/resv_hugepages`));
        if (free < need)
          return { skip: `the hugetlb pool has ${Math.max(0, free)} free 2 MiB pages, ${need} needed` };
        return tryMap(proc, need * HPAGE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, (a) =>
          proc.touch(a, need * HPAGE, { write: true }),
        );
      }
      case '4k-thp':
        return tryMap(proc, bytes, MAP_PRIVATE | MAP_ANONYMOUS, (a) => {
          proc.madvise(a, bytes, MADV_HUGEPAGE);
          proc.touch(a, bytes, { write: true });
        });
    }
  };

  for (const name of rungs) {
    if (!FALLBACK_RUNGS.includes(name))
      throw new RangeError(`contigFallback: unknown rung '${name}' (known: ${FALLBACK_RUNGS.join(', ')})`);
    const t0 = proc.kernel_ns;
    const r = rung(name);
    const latency_ns = proc.kernel_ns - t0;
    if ('addr' in r) {
      attempts.push({ rung: name, ok: true, errno: null, latency_ns, note: '' });
      const [benefit] = deviceBenefits(m, proc, r.addr, r.len, [device]);
      return { rung: name, addr: r.addr, len: r.len, attempts, device: benefit };
    }
    if ('skip' in r) attempts.push({ rung: name, ok: false, errno: null, latency_ns, note: r.skip });
    else attempts.push({ rung: name, ok: false, errno: r.errno, latency_ns, note: r.note });
  }
  return { rung: null, addr: 0, len: 0, attempts, device: null };
}
