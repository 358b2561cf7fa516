/**
 * Machine.clone() (src/sim/clone.ts): how long an exact copy of a fragmented machine takes,
 * against building that state again (boot + fragment), which is what comparing contenders "on
 * copies of the same machine state" would otherwise cost per contender.
 *
 * Fragmentation is bench/lib/memory.ts's: ~85% of RAM faulted in as anonymous memory by 8
 * processes in 64 MiB chunks, half of it freed again at random in 4 KiB holes, built instantly.
 * The machines boot with the upstream default (deferred_init 'off').
 *
 * - clone: wall time of machine.clone(), median and spread of several copies (each dropped
 *   before the next), and the typed-array bytes copied per copy (the frame table dominates).
 * - rebuild: wall time of Machine.boot() + fragment() for the same state, once.
 *
 * Each copy is checked: its /proc/buddyinfo equals the original's, and the first copy passes the
 * invariant checker. --quick uses a 16 GiB machine only; the full run adds 64 GiB.
 */
import { Machine } from '../src/sim/machine.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';
import { checkInvariants, describeFragmentation, fragment, label } from './lib/memory.ts';

const TARGET_MS = 1000;

/** Bytes of every distinct ArrayBuffer reachable from `root` (what clone() memcpys). */
function typedBytes(root: unknown): number {
  const seen = new Set<unknown>();
  const buffers = new Set<ArrayBufferLike>();
  const stack: unknown[] = [root];
  while (stack.length) {
    const v = stack.pop();
    if (typeof v !== 'object' || v === null || seen.has(v)) continue;
    seen.add(v);
    if (ArrayBuffer.isView(v)) {
      buffers.add(v.buffer);
      continue;
    }
    if (v instanceof Map) for (const [k, x] of v) stack.push(k, x);
    else if (v instanceof Set) for (const x of v) stack.push(x);
    for (const k of Object.keys(v)) stack.push((v as Record<string, unknown>)[k]);
  }
  let n = 0;
  for (const b of buffers) n += b.byteLength;
  return n;
}

function rows(memory: string, copies: number): Row[] {
  const t0 = performance.now();
  const m = Machine.boot({ memory, cpus: 2 });
  const state = describeFragmentation(fragment(m));
  const rebuild = performance.now() - t0;
  note(`${memory}: ${state}, built in ${(rebuild / 1e3).toFixed(1)} s`);
  const buddyinfo = m.readFile('/proc/buddyinfo');
  const times: number[] = [];
  for (let i = 0; i < copies; i++) {
    const t = performance.now();
    const c = m.clone();
    times.push(performance.now() - t);
    if (c.readFile('/proc/buddyinfo') !== buddyinfo) throw new Error(`${memory}: the copy differs`);
    if (i === 0) checkInvariants(c, `${memory} clone`);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const median = sorted[Math.floor(sorted.length / 2)];
  const bytes = typedBytes(m);
  const name = `fragmented ${label(memory)}`;
  note(`${memory}: clones ${times.map((t) => t.toFixed(0)).join(', ')} ms`);
  return [
    {
      case: name,
      metric: 'clone',
      value: median,
      unit: 'ms',
      detail: `median of ${copies} (min ${sorted[0].toFixed(0)}, max ${sorted[sorted.length - 1].toFixed(0)}); ${(bytes / 2 ** 20).toFixed(0)} MiB of typed arrays; ${state}`,
      target: `< ${TARGET_MS} ms`,
      met: median < TARGET_MS,
    },
    { case: name, metric: 'rebuild (boot + fragment)', value: rebuild, unit: 'ms', detail: state },
    {
      case: name,
      metric: 'clone speedup',
      value: rebuild / median,
      unit: 'x',
      detail: 'rebuild time / clone time',
    },
  ];
}

export default defineBenchmark({
  title: 'Machine.clone() of a fragmented machine (85% of RAM anonymous, half freed) vs rebuilding it',
  async run(ctx: BenchContext) {
    const out = rows('16G', ctx.quick ? 3 : 5);
    if (!ctx.quick) out.push(...rows('64G', 3));
    return out;
  },
});
