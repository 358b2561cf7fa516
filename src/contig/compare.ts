/**
 * The comparison: every way of getting a large, physically contiguous user buffer, each run on
 * its own copy of the same machine, measured the same way (docs/comparison.md).
 *
 * compareContenders() takes a `copy` function that returns a fresh copy of one machine state per
 * call (replayCopies() boots and replays a deterministic preparation; an exact clone can be
 * plugged in the same way), a request (bytes, the caller's credentials and limits, the devices
 * the buffer is for) and a list of contenders. For each contender it reports:
 * - the cost: success or errno, simulated latency (the requester's and the kernel threads'),
 *   pages migrated, pages scanned by compaction, reclaim and compaction stalls, all as
 *   /proc/vmstat deltas across the request;
 * - the benefit: for each device profile, the buffer's physical segments, SG entries, MTT
 *   entries and page size, IOMMU PTEs and IOTLB misses, CPU TLB reach (device.ts);
 * - with a probe (collateral.ts), the collateral damage: how a workload that runs after the
 *   request fares compared with a baseline copy on which no request was made.
 *
 * Contenders are plain objects registered by name (registerContender()); the copy is the only
 * state they touch, so one contender's request never changes another's machine.
 */
import { GFP_KERNEL } from '../mm/gfp.ts';
import { vm_event_index } from '../mm/vmstat_items.ts';
import type { MachineConfigInput } from '../sim/config.ts';
import { Machine } from '../sim/machine.ts';
import type { Process, Rlimits } from '../vm/process.ts';
import {
  DMA_HEAP_IOCTL_ALLOC,
  MADV_HUGEPAGE,
  MADV_NOHUGEPAGE,
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_CONTIG_BEST_EFFORT,
  MAP_HUGE_1GB,
  MAP_HUGE_2MB,
  MAP_HUGETLB,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  O_CLOEXEC,
  O_CREAT,
  O_RDONLY,
  O_RDWR,
  O_WRONLY,
  PROT_READ,
  PROT_WRITE,
} from '../vm/uapi.ts';
import { buffer_layout } from './buffer_layout.ts';
import {
  type Collateral,
  type CollateralProbe,
  collateral_of,
  failure,
  type ProbeResult,
  readVmstat,
  vmstatDelta,
} from './collateral.ts';

export { failure, readVmstat, vmstatDelta };

import { type DeviceReport, device_report } from './device.ts';
import { type DeviceProfile, device_profile, RDMA_NIC } from './device_profiles.ts';
import { DEFAULT_CMA_NAME } from './dma_heap.ts';
import { type ContigAdmission, type MapContigPolicyName, map_contig_policy } from './map_contig.ts';

const PAGE = 4096;
const MiB = 2 ** 20;
const GiB = 2 ** 30;
const RW = PROT_READ | PROT_WRITE;

// ---------------------------------------------------------------------------------------------
// Copies of one machine state

/**
 * A `copy` function that boots `config` and runs `prepare` on it, each call: the same seed and a
 * deterministic `prepare` give identical machines (byte-identical /proc/buddyinfo and
 * /proc/kpageflags). Slower than a clone, but needs nothing from the machine.
 */
export function replayCopies(
  config: MachineConfigInput,
  prepare: (m: Machine) => void = () => {},
): () => Machine {
  return () => {
    const m = Machine.boot(config);
    prepare(m);
    return m;
  };
}

/**
 * A `copy` function of exact clones of `m` (machine.clone(): its state as it is now, without
 * replaying how it got there; a CloneError names any closure that keeps `m` from being cloned).
 */
export function cloneCopies(m: Machine): () => Machine {
  return () => m.clone();
}

// ---------------------------------------------------------------------------------------------
// The request and the contenders

/** Who asks, for how much, and for which devices. */
export interface ContigRequest {
  /** Buffer size in bytes (a whole number of pages). */
  bytes: number;
  /** The requesting process's credentials (default uid/gid 1000, no capabilities). */
  uid?: number;
  gid?: number;
  caps?: number[];
  /** Its limits; RLIMIT_MEMLOCK unlimited by default, as an RDMA service's LimitMEMLOCK=infinity. */
  rlimits?: Partial<Rlimits>;
  cpu?: number;
  /** Devices the buffer is for, by profile or name (default: the RDMA NIC). */
  devices?: Array<DeviceProfile | string>;
}

/** What a contender's run() reports: where the buffer is (still mapped), or why there is none. */
export interface ContenderOutcome {
  addr: number;
  len: number;
  ok: boolean;
  /** The errno code (ENOMEM, EAGAIN, …) or signal (SIGKILL) when !ok. */
  errno?: string;
  note: string;
}

/**
 * One way of getting the buffer. run() acts as `proc` (and, where the method needs one, as the
 * administrator: sysctl writes as root) on a machine copy it may change at will; the buffer must
 * stay mapped and resident when run() returns, so the benefit side can read its layout and the
 * probe runs while it is held.
 */
export interface Contender {
  readonly name: string;
  readonly summary: string;
  /** Why the contender cannot run on this machine or for this size, or null. */
  skip?(m: Machine, bytes: number): string | null;
  run(m: Machine, proc: Process, bytes: number): ContenderOutcome;
}

const registry = new Map<string, Contender>();

/**
 * Add a contender (or replace one of the same name). Other modules register theirs at load
 * time, e.g. the /dev/contig0 and dma-buf heap contenders (docs/comparison.md, "Adding a
 * contender").
 */
export function registerContender(c: Contender): void {
  if (!c.name || /\s/.test(c.name)) throw new RangeError(`contender name '${c.name}' must be one word`);
  registry.set(c.name, c);
}

/** A registered contender by name; RangeError naming the known ones. */
export function contender(name: string): Contender {
  const c = registry.get(name);
  if (!c) throw new RangeError(`unknown contender '${name}' (known: ${[...registry.keys()].join(', ')})`);
  return c;
}

/** Every registered contender, in registration order. */
export function contenders(): Contender[] {
  return [...registry.values()];
}

/** Run `fn`, turning an errno or a fatal signal into a failed outcome. */
function attempt(fn: () => ContenderOutcome): ContenderOutcome {
  try {
    return fn();
  } catch (e) {
    const code = failure(e);
    const why = e instanceof Error ? e.message : String(e);
    return { addr: 0, len: 0, ok: false, errno: code, note: why };
  }
}

const ok = (addr: number, len: number, note: string): ContenderOutcome => ({ addr, len, ok: true, note });

/**
 * Make `name` the machine's MAP_CONTIG policy: through the vm.contig_policy sysctl where the
 * machine has one (it builds the policy with the machine's admission bounds), else by direct
 * assignment with `admission`. Returns a note when the policy could not be given its bounds.
 */
export function setContigPolicy(
  m: Machine,
  name: MapContigPolicyName,
  admission: ContigAdmission | null = null,
): string {
  if (m.listFiles('/proc/sys/vm').includes('/proc/sys/vm/contig_policy')) {
    m.instantly(() => m.writeFile('/proc/sys/vm/contig_policy', name));
    return '';
  }
  m.vm.map_contig = map_contig_policy(m.mm, name, admission);
  return name === 'bounded' && !admission ? 'no admission bounds available: behaves as rfc' : '';
}

/**
 * A free address for `len` bytes aligned to `align`, as a hint for mmap() of a device file.
 * 6.18 THP-aligns private anonymous mappings a whole number of 2 MiB long by itself
 * (thp_get_unmapped_area()), but not files without a get_unmapped_area method (/dev/contig,
 * dma-bufs): a careful user aligns those, since the device's page size (MTT, IOMMU) depends on
 * VA/PA alignment. Found without simulated time passing: the hint costs the method nothing.
 */
function alignedHint(m: Machine, proc: Process, len: number, align = 2 * MiB): number {
  if (len % (2 * MiB)) return 0;
  return m.instantly(() => {
    const a = proc.mmap(0, len + align, 0, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE);
    proc.munmap(a, len + align);
    return Math.ceil(a / align) * align;
  });
}

/** mmap(MAP_CONTIG [| MAP_CONTIG_BEST_EFFORT]) under policy `policy`. */
function mapContig(
  name: string,
  policy: MapContigPolicyName,
  best_effort: boolean,
  summary: string,
): Contender {
  return {
    name,
    summary,
    run(m, proc, bytes) {
      const setup = setContigPolicy(m, policy);
      const flags = MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG | (best_effort ? MAP_CONTIG_BEST_EFFORT : 0);
      const r = attempt(() => ok(proc.mmap(0, bytes, RW, flags), bytes, ''));
      if (setup) r.note = r.note ? `${r.note}; ${setup}` : setup;
      return r;
    },
  };
}

/** The hugetlb pool file of a page size. */
function poolFile(huge: number): string {
  return huge === 2 * MiB
    ? '/proc/sys/vm/nr_hugepages'
    : `/sys/kernel/mm/hugepages/hugepages-${huge / 1024}kB/nr_hugepages`;
}

function readNumber(m: Machine, path: string): number {
  return Number(m.readFile(path).trim());
}

/**
 * hugetlb: the administrator grows the pool at runtime by what the request needs beyond its free
 * pages (echo N > nr_hugepages, which silently gives fewer when memory is fragmented), then the
 * process maps MAP_HUGETLB and faults the pages in.
 */
function hugetlb(name: string, huge: number, sizeFlag: number, summary: string): Contender {
  const dir = `/sys/kernel/mm/hugepages/hugepages-${huge / 1024}kB`;
  return {
    name,
    summary,
    skip(m, bytes) {
      if (!m.listFiles('/sys/kernel/mm/hugepages').includes(`${dir}/nr_hugepages`))
        return `no ${huge / MiB} MiB hugetlb page size`;
      const need = Math.ceil(bytes / huge) * huge;
      if (need > m.mm.totalram_pages * PAGE) return `${need / MiB} MiB of huge pages exceed RAM`;
      return null;
    },
    run(m, proc, bytes) {
      const need = Math.ceil(bytes / huge);
      const total0 = readNumber(m, `${dir}/nr_hugepages`);
      const free0 = readNumber(m, `${dir}/free_hugepages`);
      const want = total0 + Math.max(0, need - free0);
      m.writeFile(poolFile(huge), String(want));
      const delivered = readNumber(m, `${dir}/nr_hugepages`) - total0;
      const pool = `${delivered} of ${want - total0} pages added to the pool`;
      const len = need * huge;
      const r = attempt(() => {
        const addr = proc.mmap(0, len, RW, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | sizeFlag);
        proc.touch(addr, len, { write: true });
        return ok(addr, len, '');
      });
      r.note = r.ok ? `${pool}; ${need} huge pages mapped` : `${pool}; ${r.note}`;
      return r;
    },
  };
}

/** Anonymous memory faulted in with writes, with MADV_HUGEPAGE (thp) or MADV_NOHUGEPAGE (4k). */
function anonymous(name: string, advice: number, summary: string): Contender {
  const FALLBACK = vm_event_index('thp_fault_fallback');
  const ALLOC = vm_event_index('thp_fault_alloc');
  return {
    name,
    summary,
    run(m, proc, bytes) {
      const ev = m.mm.vm_events;
      const a0 = ev[ALLOC];
      const f0 = ev[FALLBACK];
      const r = attempt(() => {
        const addr = proc.mmap(0, bytes, RW, MAP_PRIVATE | MAP_ANONYMOUS);
        proc.madvise(addr, bytes, advice);
        proc.touch(addr, bytes, { write: true });
        return ok(addr, bytes, '');
      });
      if (advice === MADV_HUGEPAGE)
        r.note = `${ev[ALLOC] - a0} THP faults, ${ev[FALLBACK] - f0} fell back${r.note ? `; ${r.note}` : ''}`;
      return r;
    },
  };
}

/**
 * A contender that maps a buffer from the device node at `path` (skipped where the machine has
 * none): `open_buffer` turns the node's fd into the fd to mmap (MAP_SHARED); the mapping keeps
 * the buffer once the fds are closed.
 */
function deviceNode(
  name: string,
  path: string,
  summary: string,
  open_flags: number,
  open_buffer: (proc: Process, fd: number, bytes: number) => number,
): Contender {
  return {
    name,
    summary,
    skip: (m) => (m.vm.files.lookup(path) ? null : `no ${path} on this machine`),
    run(m, proc, bytes) {
      return attempt(() => {
        const fd = proc.open(path, open_flags);
        const buf = open_buffer(proc, fd, bytes);
        const addr = proc.mmap(alignedHint(m, proc, bytes), bytes, RW, MAP_SHARED, buf, 0);
        proc.touch(addr, bytes, { write: true });
        if (buf !== fd) proc.close(buf);
        proc.close(fd);
        return ok(addr, bytes, '');
      });
    },
  };
}

/** mmap(MAP_SHARED) of a /dev/contig<N> device: the driver allocates through contig_alloc(). */
function device(name: string, path: string, summary: string): Contender {
  return deviceNode(name, path, summary, O_RDWR, (_proc, fd) => fd);
}

/** DMA_HEAP_IOCTL_ALLOC on /dev/dma_heap/<heap>, then mmap of the dma-buf. */
function dmaHeap(name: string, heap: string, summary: string): Contender {
  // Userspace (libdmabufheap) opens the heap read-only.
  return deviceNode(name, `/dev/dma_heap/${heap}`, summary, O_RDONLY, (proc, fd, bytes) => {
    const data = { len: bytes, fd: 0, fd_flags: O_RDWR | O_CLOEXEC, heap_flags: 0 };
    proc.ioctl(fd, DMA_HEAP_IOCTL_ALLOC, data);
    return data.fd;
  });
}

export const BUILTIN_CONTENDERS: readonly Contender[] = [
  mapContig(
    'rfc-poc',
    'rfc-poc',
    false,
    'mmap(MAP_CONTIG), the 2017 proof of concept: one buddy block, 4 MiB at most',
  ),
  mapContig(
    'rfc',
    'rfc',
    false,
    "mmap(MAP_CONTIG), the RFC's design: alloc_contig_pages() of exactly the size",
  ),
  mapContig(
    'bounded',
    'bounded',
    false,
    'mmap(MAP_CONTIG) under admin bounds (caps, quota, group, kernel reserve)',
  ),
  mapContig(
    'best-effort',
    'rfc',
    true,
    'mmap(MAP_CONTIG | MAP_CONTIG_BEST_EFFORT): the fewest, largest runs to be had',
  ),
  hugetlb(
    'hugetlb',
    2 * MiB,
    MAP_HUGE_2MB,
    'MAP_HUGETLB, 2 MiB pages, pool grown at runtime to cover the request',
  ),
  hugetlb(
    'hugetlb-1g',
    GiB,
    MAP_HUGE_1GB,
    'MAP_HUGETLB, 1 GiB pages, pool grown at runtime (alloc_contig_pages)',
  ),
  anonymous('thp', MADV_HUGEPAGE, 'anonymous memory with MADV_HUGEPAGE, touched: THP where it can be had'),
  anonymous('4k', MADV_NOHUGEPAGE, 'plain anonymous memory in 4 KiB pages, touched: the baseline'),
  device(
    'device',
    '/dev/contig0',
    "Hocko's per-device mmap: /dev/contig0 with file permissions, per-device limits and its fallback",
  ),
  dmaHeap('dma-heap', 'system', 'dma-buf system heap: DMA_HEAP_IOCTL_ALLOC, orders 8/4/0, no compaction'),
  dmaHeap('cma-heap', DEFAULT_CMA_NAME, 'dma-buf CMA heap: cma_alloc() from the cma= area'),
];
for (const c of BUILTIN_CONTENDERS) registerContender(c);

// ---------------------------------------------------------------------------------------------
// Measuring

/** /proc/vmstat counters measured across a request. */
export const COST_COUNTERS = [
  'pgmigrate_success',
  'pgmigrate_fail',
  'compact_migrate_scanned',
  'compact_free_scanned',
  'compact_isolated',
  'compact_stall',
  'compact_fail',
  'compact_success',
  'compact_daemon_migrate_scanned',
  'compact_daemon_free_scanned',
  'pgscan_kswapd',
  'pgscan_direct',
  'pgsteal_kswapd',
  'pgsteal_direct',
  'allocstall_normal',
  'allocstall_dma32',
  'allocstall_movable',
  'thp_fault_alloc',
  'thp_fault_fallback',
  'htlb_buddy_alloc_success',
  'htlb_buddy_alloc_fail',
  'oom_kill',
] as const;
export type CostCounter = (typeof COST_COUNTERS)[number];

/** CPU time of the kernel threads (kswapd, kcompactd, the rest) so far, ns. */
export function kthreadNs(m: Machine): number {
  let ns = m.mm.kthreads.cpu_ns + m.mm.khugepaged.cpu_ns;
  for (const k of m.mm.kswapd) ns += k.cpu_ns;
  for (const k of m.mm.kcompactd) ns += k.cpu_ns;
  return ns;
}

/** What a request cost, measured across it. */
export interface RequestCost {
  /** Time the requester (and the administrator's sysctl writes) spent in the kernel, ns. */
  latency_ns: number;
  /** Of that, the requesting process's own syscalls and faults. */
  process_ns: number;
  /** CPU time of kernel threads (kswapd, kcompactd, …) meanwhile. */
  kthread_ns: number;
  /** Simulated time that passed. */
  elapsed_ns: number;
  pages_migrated: number;
  migrate_failed: number;
  /** Pages scanned by compaction's migrate and free scanners, direct and kcompactd. */
  compact_migrate_scanned: number;
  compact_free_scanned: number;
  compact_stalls: number;
  /** Pages scanned and reclaimed by kswapd and direct reclaim. */
  pgscan: number;
  pgsteal: number;
  /** Direct reclaim entries (allocstall_*). */
  allocstalls: number;
  /** Every counter of COST_COUNTERS, as measured. */
  vmstat: Record<CostCounter, number>;
}

/** A snapshot of the clocks and counters a cost is the difference of. */
export interface CostMark {
  kernel_ns: number;
  process_ns: number;
  kthread_ns: number;
  now: number;
  vmstat: Map<string, number>;
}

export function costMark(m: Machine, proc: Process): CostMark {
  return {
    kernel_ns: m.kernel_ns,
    process_ns: proc.kernel_ns,
    kthread_ns: kthreadNs(m),
    now: m.now,
    vmstat: readVmstat(m),
  };
}

export function costSince(m: Machine, proc: Process, a: CostMark): RequestCost {
  const b = costMark(m, proc);
  const v = vmstatDelta(a.vmstat, b.vmstat, COST_COUNTERS);
  return {
    latency_ns: b.kernel_ns - a.kernel_ns,
    process_ns: b.process_ns - a.process_ns,
    kthread_ns: b.kthread_ns - a.kthread_ns,
    elapsed_ns: b.now - a.now,
    pages_migrated: v.pgmigrate_success,
    migrate_failed: v.pgmigrate_fail,
    compact_migrate_scanned: v.compact_migrate_scanned + v.compact_daemon_migrate_scanned,
    compact_free_scanned: v.compact_free_scanned + v.compact_daemon_free_scanned,
    compact_stalls: v.compact_stall,
    pgscan: v.pgscan_kswapd + v.pgscan_direct,
    pgsteal: v.pgsteal_kswapd + v.pgsteal_direct,
    allocstalls: v.allocstall_normal + v.allocstall_dma32 + v.allocstall_movable,
    vmstat: v,
  };
}

/** What one device makes of the buffer (device.ts, the profile's IOMMU mode; plus translated). */
export interface DeviceBenefit {
  device: string;
  iommu: string;
  usable: boolean;
  problems: string[];
  /** Resident pages of the buffer. */
  pages: number;
  segments: number;
  largest_segment_bytes: number;
  sg_entries: number | null;
  /** RDMA: the MTT page size ib_umem_find_best_pgsz() chose and the entries needed. */
  mtt_page_size: number | null;
  mtt_entries: number | null;
  /** Behind a translating IOMMU: leaf PTEs by size and IOTLB misses (per access or per pass). */
  iommu_ptes: { '4K': number; '2M': number; '1G': number; total: number };
  iotlb_misses: number;
  /** CPU translations of the buffer and the share of it the STLB covers. */
  cpu_tlb: { '4K': number; '2M': number; '1G': number; coverage: number };
  /** Throughput model (estimate): effective / link. */
  efficiency: number;
}

function benefitOf(r: DeviceReport, translated: DeviceReport): DeviceBenefit {
  const t = translated.iommu_ptes;
  const iotlb = t
    ? translated.pattern === 'random'
      ? t.iotlb.misses_per_access
      : t.iotlb.sequential_misses_per_pass
    : 0;
  return {
    device: r.profile,
    iommu: r.iommu,
    usable: r.usable,
    problems: [...r.problems],
    pages: r.buffer.pages - r.buffer.missing_pages,
    segments: r.segments.count,
    largest_segment_bytes: r.segments.largest_bytes,
    sg_entries: r.sg_entries,
    mtt_page_size: r.mtt?.page_size ?? null,
    mtt_entries: r.mtt?.entries ?? null,
    iommu_ptes: t
      ? { '4K': t.ptes['4K'], '2M': t.ptes['2M'], '1G': t.ptes['1G'], total: t.ptes.total }
      : { '4K': 0, '2M': 0, '1G': 0, total: 0 },
    iotlb_misses: iotlb,
    cpu_tlb: {
      '4K': r.cpu_tlb.translations_4k,
      '2M': r.cpu_tlb.translations_2m,
      '1G': r.cpu_tlb.translations_1g,
      coverage: r.cpu_tlb.coverage,
    },
    efficiency: r.throughput.efficiency,
  };
}

/** The device side of a buffer [addr, addr + len) of `proc`, for each profile. */
export function deviceBenefits(
  m: Machine,
  proc: Process,
  addr: number,
  len: number,
  devices: readonly DeviceProfile[],
): DeviceBenefit[] {
  const layout = buffer_layout(m.vm, proc.mm, addr, len);
  return devices.map((d) => {
    const r = device_report(layout, d);
    // IOMMU PTEs and IOTLB misses are reported as if translated, whatever the profile's mode.
    return benefitOf(r, r.iommu === 'translated' ? r : device_report(layout, d, { iommu: 'translated' }));
  });
}

// ---------------------------------------------------------------------------------------------
// The comparison

/** One contender's row of the comparison (JSON-serialisable). */
export interface ContenderResult {
  name: string;
  summary: string;
  /** Why it did not run (then nothing else is measured). */
  skipped: string | null;
  ok: boolean;
  errno: string | null;
  note: string;
  /** The buffer's length as mapped (hugetlb rounds up to its page size). */
  len: number;
  cost: RequestCost | null;
  benefit: DeviceBenefit[];
  /** The probe workload's results after this request, and their difference from the baseline. */
  probe: ProbeResult | null;
  collateral: Collateral | null;
}

export interface Comparison {
  request: { bytes: number; uid: number; gid: number; devices: string[] };
  /** The probe on the baseline copy (no request), when a probe was given. */
  baseline: ProbeResult | null;
  results: ContenderResult[];
}

export interface CompareOptions {
  /** A fresh copy of the same machine state per call. */
  copy: () => Machine;
  request: ContigRequest;
  /** Contenders or their names (default: every registered one). */
  contenders?: Array<Contender | string>;
  /** Collateral damage probe run after each request, and on a baseline copy (collateral.ts). */
  probe?: CollateralProbe | null;
}

/** The requesting process, spawned the same way on every copy (the baseline's included). */
function spawnRequester(m: Machine, req: ContigRequest): Process {
  return m.spawn({
    name: 'requester',
    uid: req.uid ?? 1000,
    gid: req.gid ?? 1000,
    caps: req.caps ?? [],
    rlimits: { memlock: Number.POSITIVE_INFINITY, ...req.rlimits },
    cpu: req.cpu ?? 0,
  });
}

function checkRequest(req: ContigRequest): DeviceProfile[] {
  if (!Number.isInteger(req.bytes) || req.bytes <= 0 || req.bytes % PAGE)
    throw new RangeError(`compareContenders: bytes ${req.bytes} is not a positive multiple of ${PAGE}`);
  return (req.devices ?? [RDMA_NIC]).map((d) => (typeof d === 'string' ? device_profile(d) : d));
}

/** Run one contender on a fresh copy: request, measure, read the layout, then probe. */
export function runContender(
  c: Contender,
  copy: () => Machine,
  req: ContigRequest,
  devices: readonly DeviceProfile[],
  probe: CollateralProbe | null,
  baseline: ProbeResult | null,
): ContenderResult {
  const m = copy();
  const proc = spawnRequester(m, req);
  const skipped = c.skip?.(m, req.bytes) ?? null;
  const row: ContenderResult = {
    name: c.name,
    summary: c.summary,
    skipped,
    ok: false,
    errno: null,
    note: '',
    len: 0,
    cost: null,
    benefit: [],
    probe: null,
    collateral: null,
  };
  if (skipped) return row;
  const before = costMark(m, proc);
  const out = c.run(m, proc, req.bytes);
  row.cost = costSince(m, proc, before);
  row.ok = out.ok;
  row.errno = out.ok ? null : (out.errno ?? 'EINVAL');
  row.note = out.note;
  row.len = out.ok ? out.len : 0;
  if (out.ok && out.len > 0) row.benefit = deviceBenefits(m, proc, out.addr, out.len, devices);
  if (probe) {
    row.probe = probe.run(m);
    row.collateral = baseline ? collateral_of(row.probe, baseline) : null;
  }
  return row;
}

/**
 * Every contender on its own copy of the machine, the same request, the same measurements; with
 * a probe, each contender's collateral damage against a baseline copy where nothing was asked.
 */
export function compareContenders(opts: CompareOptions): Comparison {
  const req = opts.request;
  const devices = checkRequest(req);
  const list = (opts.contenders ?? contenders()).map((c) => (typeof c === 'string' ? contender(c) : c));
  const probe = opts.probe ?? null;
  let baseline: ProbeResult | null = null;
  if (probe) {
    const m = opts.copy();
    spawnRequester(m, req);
    baseline = probe.run(m);
  }
  return {
    request: {
      bytes: req.bytes,
      uid: req.uid ?? 1000,
      gid: req.gid ?? 1000,
      devices: devices.map((d) => d.name),
    },
    baseline,
    results: list.map((c) => runContender(c, opts.copy, req, devices, probe, baseline)),
  };
}

// ---------------------------------------------------------------------------------------------
// A machine worth comparing on

/** How fragmentLikeAServer() fills memory, as shares of RAM. */
export interface ServerFragmentation {
  /** Anonymous memory faulted in by batch jobs, a quarter of which stays (default 1). */
  anon?: number;
  /** File data read into the page cache (default 0.6). */
  cache?: number;
  /** Pages pinned long-term by RDMA registrations (default 1/256). */
  pinned?: number;
  /** Rounds the work is interleaved over: more rounds scatter kernel memory wider (default 32). */
  rounds?: number;
}

/**
 * A day of a small server, compressed (src/cli/demo.ts tells it at length): batch jobs fault in
 * anonymous memory and give back three quarters of it in 64 KiB pieces at random, a reader fills
 * the page cache, path lookups fill the dentry cache, NIC receive queues keep order-3 buffers,
 * modules and BPF programs are vmalloc'ed, and an RDMA service pins buffers — interleaved, so
 * kernel and pinned memory end up scattered among movable pages. Built instantly (no background
 * work meanwhile) and deterministic for a seed. Use as replayCopies()'s `prepare`.
 */
export function fragmentLikeAServer(m: Machine, opts: ServerFragmentation = {}): void {
  const ram = m.mm.totalram_pages * PAGE;
  const rounds = opts.rounds ?? 32;
  const chunk = (share: number): number =>
    Math.max(PAGE, Math.floor((ram * share) / rounds / (64 * 1024)) * 64 * 1024);
  const anon = chunk(opts.anon ?? 1);
  const cache = chunk(opts.cache ?? 0.6);
  const pinned = Math.max(PAGE, Math.floor((ram * (opts.pinned ?? 1 / 256)) / (rounds / 4) / PAGE) * PAGE);
  const cpus = m.mm.nr_cpus;
  const r = m.rand;
  m.instantly(() => {
    const jobs = Array.from({ length: 4 }, (_, i) =>
      m.spawn({ name: `job${i}`, uid: 1001 + i, cpu: i % cpus }),
    );
    const reader = m.spawn({ name: 'nginx', uid: 33, cpu: 1 % cpus });
    const rdma = m.spawn({
      name: 'rdma-server',
      uid: 1000,
      cpu: 0,
      rlimits: { memlock: Number.POSITIVE_INFINITY },
    });
    const fd0 = reader.open('/srv/data', O_CREAT | O_WRONLY, 0o644);
    reader.ftruncate(fd0, cache * rounds);
    reader.close(fd0);
    const data = reader.open('/srv/data', O_RDONLY);
    const pools = Array.from({ length: cpus }, (_, cpu) =>
      m.kernel.page_pool_create({ order: 3, pool_size: 256, cpu }),
    );
    for (let i = 0; i < rounds; i++) {
      const job = jobs[i % jobs.length];
      const a = job.mmap(0, anon, RW, MAP_PRIVATE | MAP_ANONYMOUS);
      job.madvise(a, anon, MADV_NOHUGEPAGE);
      job.touch(a, anon, { write: true });
      for (let off = 0; off + 64 * 1024 <= anon; off += 64 * 1024)
        if (r.below(4)) job.munmap(a + off, 64 * 1024);
      for (let n = 0; n < cache; ) {
        const got = reader.read(data, Math.min(MiB, cache - n));
        if (!got) break;
        n += got;
      }
      // Kernel memory: dentries (a quarter released to the LRU), NIC buffers, a BPF program.
      for (let d = 0; d < 500; d++) {
        const h = m.kernel.d_alloc(GFP_KERNEL, { cpu: r.below(cpus) });
        if (h && r.below(4) === 0) m.kernel.dput(h);
      }
      for (const pool of pools) for (let b = 0; pool && b < 16; b++) m.kernel.page_pool_alloc_pages(pool);
      m.kernel.vmalloc(4 * PAGE, GFP_KERNEL, { caller: 'bpf_prog_alloc_no_stats', cpu: r.below(cpus) });
      if (i % 4 === 3) {
        const b = rdma.mmap(0, pinned, RW, MAP_PRIVATE | MAP_ANONYMOUS);
        rdma.touch(b, pinned, { write: true });
        rdma.ib_umem_get(b, pinned, true);
      }
    }
    reader.close(data);
    m.kernel.drain_all_pages();
  });
}
