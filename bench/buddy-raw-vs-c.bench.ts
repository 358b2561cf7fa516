/**
 * The raw buddy path against a plain C yardstick. bench/c/buddy.c implements the same loop
 * (same struct-of-arrays layout, same __rmqueue_smallest/expand/__free_one_page logic including
 * buddy_merge_likely) and is built with `gcc -O2` into bench/out/. Both replay the same tape from
 * the same state: the TypeScript side dumps its machine right after filling the live set, and the
 * C side must reproduce the first pass's checksum and free-page count exactly before its timings
 * count. Reports C ops/s and the TS/C time ratio (median pass against median pass).
 *
 * Target: the raw buddy path within 2x of C.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { type BuddyMix, BuddyWorkload, OPS_PER_PASS } from './lib/buddy-workload.ts';
import { defineBenchmark, note, type Row, timeOps } from './lib/harness.ts';

const SOURCE = fileURLToPath(new URL('./c/buddy.c', import.meta.url));
const OUT = fileURLToPath(new URL('./out/', import.meta.url));
const BINARY = `${OUT}buddy`;
const TARGET_RATIO = 2;

interface CResult {
  checksum: number;
  free_pages: number;
  ops_per_pass: number;
  ns: number[];
}

function gccVersion(): string {
  return execFileSync('gcc', ['-dumpfullversion'], { encoding: 'utf8' }).trim();
}

export default defineBenchmark({
  title: 'raw buddy path, TypeScript vs C (gcc -O2), same state and tape',
  async run(ctx) {
    mkdirSync(OUT, { recursive: true });
    note(`gcc ${gccVersion()} -O2 ${SOURCE}`);
    execFileSync('gcc', ['-O2', '-o', BINARY, SOURCE], { stdio: 'inherit' });
    const rows: Row[] = [];
    for (const mix of ['order0', 'mixed'] as BuddyMix[]) {
      note(mix);
      const w = new BuddyWorkload(mix);
      const dump = `${OUT}buddy-${mix}.bin`;
      w.dump(dump);
      // The TypeScript check pass runs on the dumped state, as the C one will.
      const checksum = w.pass();
      const freePages = w.freePages();
      const ts = await timeOps(() => w.pass(), OPS_PER_PASS, ctx);
      const passes = ctx.quick ? 7 : 21;
      const c = JSON.parse(execFileSync(BINARY, [dump, String(passes)], { encoding: 'utf8' })) as CResult;
      rmSync(dump); // ~60 MB each
      if (c.checksum !== checksum || c.free_pages !== freePages || c.ops_per_pass !== OPS_PER_PASS) {
        throw new Error(
          `${mix}: C replay diverged (checksum ${c.checksum} vs ${checksum}, free ${c.free_pages} vs ${freePages})`,
        );
      }
      const sorted = [...c.ns].sort((a, b) => a - b);
      const cNsPerOp = sorted[(sorted.length - 1) >> 1] / OPS_PER_PASS;
      const label = mix === 'order0' ? 'order 0' : 'orders 0-3 + 9';
      rows.push({
        case: `${label}, C`,
        metric: 'throughput',
        value: 1e9 / cNsPerOp,
        unit: 'ops/s',
        detail: `${cNsPerOp.toFixed(1)} ns/op (min ${(sorted[0] / OPS_PER_PASS).toFixed(1)}; ${passes} passes; checksum matches TS)`,
      });
      rows.push({
        case: `${label}, TypeScript`,
        metric: 'throughput',
        value: ts.opsPerSec,
        unit: 'ops/s',
        detail: `${ts.nsPerOp.toFixed(1)} ns/op (min ${ts.nsPerOpMin.toFixed(1)}; ${ts.samples} passes)`,
      });
      const ratio = ts.nsPerOp / cNsPerOp;
      rows.push({
        case: `${label}, TS / C`,
        metric: 'time ratio',
        value: ratio,
        unit: 'x',
        target: `<= ${TARGET_RATIO}x`,
        met: ratio <= TARGET_RATIO,
      });
      const bad = w.releaseAndCheck();
      if (bad.length) throw new Error(`${mix}: invariants broken after the run:\n  ${bad.join('\n  ')}`);
    }
    return rows;
  },
});
