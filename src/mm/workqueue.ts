/**
 * Deferred kernel work (kernel: include/linux/workqueue.h struct work_struct, delayed_work):
 * what kswapd, kcompactd, khugepaged, the flusher and the vmstat worker queue to run later,
 * `mm.defer(delay, work)`, on the machine's clock.
 *
 * A work item is **data**: an instance of a small class whose `run()` is a prototype method and
 * whose fields are what the kernel's work item reaches through container_of() (the node, the
 * pages written back, the wait it ends). No closures: a machine's whole state, its pending work
 * included, can then be copied (Machine.clone(), src/sim/clone.ts) and the copy's work runs
 * against the copy (docs/decisions.md, "No closures in machine state").
 */
import { run_kthread } from './cost.ts';
import type { MM } from './mm.ts';

/** A piece of deferred kernel work. */
export interface Work {
  run(): void;
}

/** An event on the machine's clock (src/sim/clock.ts): run at its time. */
export interface TimerEvent {
  run(now: number): void;
}

/** What MM needs of the machine's clock: its time, and running work later on it. */
export interface Timer {
  readonly now: number;
  after(delay: number, ev: TimerEvent): void;
}

/**
 * The clock event of `mm.defer(delay, work)`: kernel work runs in a kernel thread, on CPU time
 * of its own (mm.kthreads), not the time of the task whose syscall let the clock reach it.
 */
export class KthreadWork implements TimerEvent {
  constructor(
    readonly mm: MM,
    readonly work: Work,
  ) {}

  run(): void {
    run_kthread(this.mm, this.mm.kthreads, this.work);
  }
}
