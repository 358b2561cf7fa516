/**
 * The Machine facade: boot a configured machine, read and write its /proc and /sys files, reach
 * the in-kernel API, and check the model's invariants.
 */

import { ContigBounds, contig_check } from '../contig/bounds.ts';
import { type ContigDevice, contig_dev_init } from '../contig/contig_dev.ts';
import { type DmaHeap, dma_heap_init } from '../contig/dma_heap.ts';
import { registerFiles, registerVmFiles } from '../fs/files.ts';
import { register_contig_files } from '../fs/sysctl/contig.ts';
import { vm_tables_init } from '../fs/sysctl/vm_tables.ts';
import { register_contig_sysfs } from '../fs/sysfs/contig_sysfs.ts';
import { type Cred, ROOT, Vfs } from '../fs/vfs.ts';
import { parseDuration } from '../lib/duration.ts';
import { ErrnoError } from '../lib/errno.ts';
import { Prng } from '../lib/prng.ts';
import { kcompactd_init } from '../mm/compaction.ts';
import type { CostModel } from '../mm/cost.ts';
import { check_invariants } from '../mm/debug.ts';
import { filemap_check } from '../mm/filemap.ts';
import { gup_check } from '../mm/gup.ts';
import { thp_init } from '../mm/huge_memory.ts';
import { hugetlb_bootmem_alloc, hugetlb_init } from '../mm/hugetlb.ts';
import type { MM, Sched } from '../mm/mm.ts';
import { KernelHooks, mm_init } from '../mm/mm_init.ts';
import { wb_start_periodic } from '../mm/page-writeback.ts';
import { lru_check } from '../mm/shrinker.ts';
import { slab_check } from '../mm/slab.ts';
import { SwapInfo } from '../mm/swapfile.ts';
import { no_tracepoints } from '../mm/trace.ts';
import { vmalloc_check } from '../mm/vmalloc.ts';
import { start_vmstat_workers } from '../mm/vmstat.ts';
import type { ImportOptions } from '../snapshot/import.ts';
import { vm_check } from '../vm/debug.ts';
import { khugepaged_init } from '../vm/khugepaged.ts';
import type { MmStruct } from '../vm/mm_struct.ts';
import { Process, type ProcessSpawner, type SpawnOptions } from '../vm/process.ts';
import { Vm } from '../vm/vm.ts';
import { Clock } from './clock.ts';
import { cloneGraph } from './clone.ts';
import {
  buildLayout,
  earlyAllocations,
  type MachineConfig,
  type MachineConfigInput,
  parseMachineConfig,
} from './config.ts';
import { KernelApi } from './kernel.ts';

export class InvariantError extends Error {
  constructor(readonly violations: string[]) {
    super(`${violations.length} invariant violation(s):\n  ${violations.join('\n  ')}`);
    this.name = 'InvariantError';
  }
}

export class Machine {
  readonly config: MachineConfig;
  readonly mm: MM;
  /** The in-kernel API (alloc_pages, free_pages, …). */
  readonly kernel: KernelApi;
  /** The machine's PRNG; the only source of randomness in the model. */
  readonly rand: Prng;
  /** Simulated time; kernel background work runs as events on it. */
  readonly clock = new Clock();
  /** Address spaces, VMAs and page tables. */
  readonly vm: Vm;
  /** MAP_CONTIG's accounting and admin bounds (src/contig/bounds.ts); it makes the policies. */
  readonly contig: ContigBounds;
  /** The /dev/contig<N> drivers (src/contig/contig_dev.ts), in configuration order. */
  readonly contig_devices: ContigDevice[];
  /** The dma-buf heaps under /dev/dma_heap (src/contig/dma_heap.ts): system, then CMA. */
  readonly dma_heaps: DmaHeap[];
  private readonly vfs = new Vfs();
  private readonly processes = new Map<number, Process>();
  /** Parent pid of each forked process (for /proc/<pid>/status). */
  private readonly ppids = new Map<number, number>();
  private nextPid = 1;
  /** The part of mm.kernel_ns the clock has already advanced by (catchUp()). */
  private onClock = 0;
  /** Inside instantly(): the clock stands still. */
  private frozen = 0;

  /**
   * What the vm layer calls back into: the process table (fork) and the clock's catch-up after a
   * task's syscall or fault. A class, not closures, so a cloned machine's copy calls the clone.
   */
  private static readonly Host = class implements ProcessSpawner, Sched {
    constructor(readonly machine: Machine) {}

    spawn(parent: Process, make: (cpu: number, nid: number) => MmStruct | null): Process {
      const m = this.machine;
      return m.forked(parent, m.newProcess(parent.options, make));
    }

    task_done(): void {
      this.machine.catchUp();
    }

    cond_resched(): void {
      this.machine.catchUp();
    }
  };
  private readonly host = new Machine.Host(this);

  private constructor(config: MachineConfig) {
    this.config = config;
    this.rand = new Prng(config.seed);
    // hugetlb_bootmem_alloc(): gigantic pages come out of memblock before the buddy allocator.
    const layout = buildLayout(config);
    const hugetlb = hugetlb_bootmem_alloc(config.hugetlb, layout);
    this.mm = mm_init({
      layout,
      config: { ...config.kernel },
      sysctl: {
        min_free_kbytes: 0,
        user_min_free_kbytes: -1,
        watermark_scale_factor: 10,
        watermark_boost_factor: 15000,
        lowmem_reserve_ratio: [256, 256, 32, 0, 0],
        defrag_mode: 0,
        percpu_pagelist_high_fraction: 0,
      },
      thp_enabled: config.thp !== 'never',
      deferred_lazy: config.deferred_init === 'lazy',
      early: earlyAllocations(config),
      rand: this.rand,
    });
    // subsys_initcall(hugetlb_init): the 2 MiB boot pages come from the buddy allocator.
    hugetlb_init(this.mm, hugetlb);
    this.kernel = new KernelApi(this.mm);
    this.vm = new Vm(this.mm, config.disk);
    // hugepage_init(): /sys/kernel/mm/transparent_hugepage/enabled and the THP shrinker.
    thp_init(this.mm, config.thp);
    // The slow path's OOM killer is the vm layer's.
    this.mm.hooks = new KernelHooks(this.mm, this.vm);
    // Kernel work runs on the clock (mm.defer()), in kernel threads with CPU time of their own.
    this.mm.timer = this.clock;
    this.vm.host = this.host;
    this.mm.sched = this.host;
    this.contig = new ContigBounds(this.vm);
    this.vm.map_contig = this.contig.policy(config.map_contig);
    for (const [step, ns] of Object.entries(config.cost))
      if (ns !== undefined) this.mm.cost[step as keyof CostModel] = ns;
    // swapon: the device's first page is its header.
    if (config.swap >= 2 * 4096) this.mm.swap = new SwapInfo(Math.floor(config.swap / 4096));
    // The flusher's periodic run (dirty_writeback_centisecs).
    wb_start_periodic(this.mm);
    // kcompactd on every node with memory, checking fragmentation every 500 ms (proactive).
    kcompactd_init(this.mm);
    // khugepaged, while PMD-sized THPs are enabled (hugepage_init()'s start_stop_khugepaged()).
    khugepaged_init(this.vm);
    // The boot-time values of the vm sysctls kept in vm.sysctl (the user and admin reserves).
    vm_tables_init(this.vm);
    // Device nodes: /dev/contig<N> (with /sys/class/contig/) and /dev/dma_heap/*.
    this.contig_devices = contig_dev_init(this.vm, config.contig_devices);
    this.dma_heaps = dma_heap_init(this.vm, config.dma_heap);
    // /proc and /sys, before the configured sysctls are written.
    this.mountFiles();
    // The vmstat worker on every CPU (vmstat_update), once per stat_interval.
    start_vmstat_workers(this.mm);
    for (const [name, value] of Object.entries(config.sysctl)) {
      try {
        this.vfs.write(`/proc/sys/vm/${name}`, String(value), ROOT);
      } catch (e) {
        throw new Error(`invalid machine configuration:\n  sysctl.${name}: ${(e as Error).message}`);
      }
    }
    // Simulated time starts when boot ends: booting costs none of it.
    this.mm.kernel_ns = 0;
    this.mm.kthreads.cpu_ns = 0;
  }

  /**
   * Register the machine's /proc and /sys files (the VFS holds closures over the machine's
   * objects: it is the one part of a machine that clone() rebuilds instead of copying).
   * Registering may change nothing but the VFS.
   */
  private mountFiles(): void {
    registerFiles(this.vfs, this.mm);
    // /proc/kpage*, /proc/<pid>/ of live processes, and the vm sysctls kept in vm.sysctl.
    registerVmFiles(this.vfs, this.vm, {
      process: (pid) => this.process(pid),
      pids: () => [...this.processes.keys()].filter((pid) => this.process(pid)),
      ppid: (pid) => this.ppids.get(pid) ?? 0,
    });
    // vm.contig_* and /proc/contiginfo.
    register_contig_files(this.vfs, this.contig);
    // /sys/class/contig/ of the /dev/contig<N> devices.
    register_contig_sysfs(this.vfs, this.contig_devices);
  }

  /** Boot a machine. Throws an Error naming every invalid field of the configuration. */
  static boot(config: MachineConfigInput): Machine {
    return new Machine(parseMachineConfig(config));
  }

  /**
   * A machine in the state a real one's snapshot shows (docs/import.md): `path` is a directory
   * `mapcontig snapshot` wrote, or a tar of one. The snapshot layer does the work; it is loaded
   * only here, so the facade keeps DESIGN.md's contract without sim importing it at load time.
   * Throws a SnapshotError naming the bad file. fromSnapshot() in src/snapshot/import.ts also
   * returns the import's report.
   */
  static async fromSnapshot(path: string, opts: ImportOptions = {}): Promise<Machine> {
    const { fromSnapshot } = await import('../snapshot/import.ts');
    return (await fromSnapshot(path, opts)).machine;
  }

  /**
   * An exact copy of this machine: from here on it behaves byte-identically to the original
   * (the same /proc and /sys output, the same PRNG stream, the same background work pending at
   * the same times), and the two share nothing, so running something on one leaves the other
   * as it was. Build a machine state once and compare contenders on copies of it.
   *
   * Objects you hold from the original (a Process, a Shrinker) belong to the original: look up
   * the copy's, e.g. `copy.process(pid)`. Tracepoint probes belong to whoever attached them, as
   * a tracer's do: the copy starts with none. A machine holding any other closure in its state (a
   * shrinker registered with callbacks, a function queued on its clock) cannot be copied:
   * clone() throws a CloneError naming where (docs/decisions.md, "No closures in machine state").
   *
   * Cost: a copy of every typed array (the frame table: about 40 bytes per page) and of the
   * objects (VMAs, files, slab caches); see bench/clone.bench.ts.
   */
  clone(): Machine {
    const vfs = new Vfs();
    const seed = new Map<object, unknown>([
      [this.vfs, vfs],
      [this.mm.trace, no_tracepoints()],
    ]);
    const copy = cloneGraph<Machine>(this, seed);
    copy.mountFiles();
    return copy;
  }

  /**
   * Start a process with an empty address space, running on `cpu` (default 0) with memory from
   * `nid` (default: the CPU's node). Throws ENOMEM if not even its page directory fits.
   */
  spawn(opts: SpawnOptions = {}): Process {
    const cpu = opts.cpu ?? 0;
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.mm.nr_cpus)
      throw new RangeError(`spawn: no cpu ${cpu}`);
    const nid = opts.nid ?? this.mm.cpu_to_node[cpu];
    if (!Number.isInteger(nid) || nid < 0 || nid >= this.mm.nodes.length)
      throw new RangeError(`spawn: no node ${nid}`);
    return this.newProcess(opts, () => this.vm.mm_alloc(nid, cpu));
  }

  /** Register a process whose address space `makeMm` builds (empty for spawn, a copy for fork). */
  private newProcess(opts: SpawnOptions, makeMm: (cpu: number, nid: number) => MmStruct | null): Process {
    const cpu = opts.cpu ?? 0;
    const nid = opts.nid ?? this.mm.cpu_to_node[cpu];
    const mm = makeMm(cpu, nid);
    if (!mm) throw new ErrnoError('ENOMEM', 'fork', undefined, 'out of memory for page tables');
    const p = new Process(this.vm, this.nextPid++, mm, opts, this.host);
    this.processes.set(p.pid, p);
    return p;
  }

  /** Record a fork child's parent. */
  private forked(parent: Process, child: Process): Process {
    this.ppids.set(child.pid, parent.pid);
    return child;
  }

  /** The live process with this pid, if any. */
  process(pid: number): Process | undefined {
    const p = this.processes.get(pid);
    return p && !p.exited ? p : undefined;
  }

  /** Simulated nanoseconds since boot. */
  get now(): number {
    return this.clock.now;
  }

  /** Let simulated time pass (`'500ms'`, `'24h'`, or nanoseconds), running background work. */
  advance(duration: string | number): void {
    const ns = parseDuration(duration);
    this.catchUp();
    this.clock.advance(ns);
  }

  /**
   * Time, ns, that processes and in-kernel callers have spent in the kernel since boot: the
   * difference across a call is its latency (cost.ts). Kernel threads keep their own CPU time
   * (mm.kswapd[nid].cpu_ns, mm.kcompactd[nid].cpu_ns, mm.kthreads.cpu_ns).
   */
  get kernel_ns(): number {
    return this.mm.kernel_ns;
  }

  /**
   * Run `fn` without letting simulated time pass: the state it builds (a warm-up, a fragmented
   * memory) takes no time, its waits for the disk included, and no background work runs
   * meanwhile; work it queued (a kswapd wake-up) runs when the clock next moves.
   */
  instantly<T>(fn: () => T): T {
    const kernel_ns = this.mm.kernel_ns;
    const busy_until = this.mm.writeback.busy_until;
    this.frozen++;
    try {
      return fn();
    } finally {
      this.frozen--;
      this.mm.kernel_ns = kernel_ns;
      this.mm.writeback.busy_until = busy_until;
    }
  }

  /**
   * Let the clock catch up with the CPU time used since the last call: simulated time passes
   * as tasks work, and the background work due meanwhile runs (after a syscall, a fault, a
   * write to a /proc or /sys file, or before advance()).
   */
  private catchUp(): void {
    if (this.frozen) return;
    const dt = this.mm.kernel_ns - this.onClock;
    this.onClock = this.mm.kernel_ns;
    if (dt > 0) this.clock.advance(dt);
  }

  /** Read a /proc or /sys file as the given user (root by default). */
  readFile(path: string, cred: Cred = ROOT): string {
    return this.vfs.read(path, cred);
  }

  /**
   * Read bytes of a /proc file, as pread(2) would: `length` bytes (default: to the end of the
   * file) at `offset`. Binary files (/proc/kpageflags, /proc/kpagecount, /proc/<pid>/pagemap)
   * are only readable this way; Linux's errors apply (EINVAL for a read of a u64 file that is
   * not 8-byte aligned, EACCES). Pass a Process as `cred` to read with its ids and capabilities
   * (pagemap shows PFNs only to CAP_SYS_ADMIN).
   */
  readFileBytes(
    path: string,
    opts: { offset?: number; length?: number } = {},
    cred: Cred = ROOT,
  ): Uint8Array {
    return this.vfs.readBytes(path, opts.offset ?? 0, opts.length, cred);
  }

  /** Write a /proc or /sys file; bad values throw the ErrnoError Linux gives (EINVAL, …). */
  writeFile(path: string, text: string, cred: Cred = ROOT): void {
    this.mm.kernel_ns += this.mm.cost.syscall;
    try {
      this.vfs.write(path, text, cred);
    } finally {
      this.catchUp();
    }
  }

  /** The files under a directory, e.g. listFiles('/proc/sys/vm'). */
  listFiles(dir: string): string[] {
    return this.vfs.list(dir);
  }

  /** Every invariant violation, or an empty list. */
  invariantViolations(): string[] {
    return [
      ...check_invariants(this.mm),
      ...slab_check(this.mm),
      ...lru_check(this.mm),
      ...filemap_check(this.mm),
      ...vmalloc_check(this.mm),
      ...gup_check(this.mm),
      ...vm_check(this.vm),
      ...contig_check(this.contig),
    ];
  }

  /** Throw an InvariantError if the model's state disagrees with itself. */
  checkInvariants(): void {
    const v = this.invariantViolations();
    if (v.length) throw new InvariantError(v);
  }
}
