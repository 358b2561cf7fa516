/**
 * The simulated clock: a discrete-event loop in nanoseconds. Kernel background work (kswapd,
 * kcompactd, khugepaged, the flusher, the vmstat worker) runs as events on it. Events at the same
 * time run in the order they were scheduled, so a run is deterministic.
 *
 * The machine's events are objects whose run() is a prototype method (src/mm/workqueue.ts), so a
 * clock with events pending can be cloned with its machine. A function is accepted too (tests,
 * scripts), but a clock holding one cannot be cloned (src/sim/clone.ts).
 */
import type { Timer, TimerEvent } from '../mm/workqueue.ts';

export type EventFn = (now: number) => void;

/** What runs at an event's time. */
export type ClockEvent = TimerEvent | EventFn;

export class Clock implements Timer {
  /** Simulated time since boot, in nanoseconds. */
  now = 0;
  private seq = 0;
  // A binary min-heap of events ordered by (time, seq), in parallel arrays.
  private times: number[] = [];
  private seqs: number[] = [];
  private fns: ClockEvent[] = [];

  /** Run `fn` at absolute time `at` (not before now). */
  at(at: number, fn: ClockEvent): void {
    this.push(Math.max(at, this.now), fn);
  }

  /** Run `fn` after `delay` nanoseconds. */
  after(delay: number, fn: ClockEvent): void {
    this.push(this.now + delay, fn);
  }

  /** Run `fn` every `period` nanoseconds, first after one period, until it returns false. */
  every(period: number, fn: (now: number) => boolean | undefined): void {
    const tick: EventFn = (now) => {
      if (fn(now) !== false) this.after(period, tick);
    };
    this.after(period, tick);
  }

  /** Run every event due up to now + duration, then set the clock there. */
  advance(duration: number): void {
    this.runUntil(this.now + duration);
  }

  /** Run events in time order up to and including `time`, then set the clock to `time`. */
  runUntil(time: number): void {
    while (this.times.length && this.times[0] <= time) {
      const t = this.times[0];
      const fn = this.fns[0];
      this.pop();
      this.now = t;
      if (typeof fn === 'function') fn(t);
      else fn.run(t);
    }
    if (time > this.now) this.now = time;
  }

  /** Events waiting to run. */
  get pending(): number {
    return this.times.length;
  }

  private less(i: number, j: number): boolean {
    return this.times[i] < this.times[j] || (this.times[i] === this.times[j] && this.seqs[i] < this.seqs[j]);
  }

  private swap(i: number, j: number): void {
    [this.times[i], this.times[j]] = [this.times[j], this.times[i]];
    [this.seqs[i], this.seqs[j]] = [this.seqs[j], this.seqs[i]];
    [this.fns[i], this.fns[j]] = [this.fns[j], this.fns[i]];
  }

  private push(time: number, fn: ClockEvent): void {
    this.times.push(time);
    this.seqs.push(this.seq++);
    this.fns.push(fn);
    let i = this.times.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!this.less(i, parent)) break;
      this.swap(i, parent);
      i = parent;
    }
  }

  private pop(): void {
    const last = this.times.length - 1;
    this.swap(0, last);
    this.times.pop();
    this.seqs.pop();
    this.fns.pop();
    let i = 0;
    const n = this.times.length;
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < n && this.less(l, m)) m = l;
      if (r < n && this.less(r, m)) m = r;
      if (m === i) break;
      this.swap(i, m);
      i = m;
    }
  }
}
