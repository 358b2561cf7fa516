/**
 * Importing a snapshot and predicting on it (src/snapshot/import.ts, predict.ts): a fragmented
 * model machine (bench/lib/memory.ts: 85% of RAM anonymous, half of it freed in 4 KiB holes) is
 * written out as a snapshot with kpageflags (src/snapshot/model_snapshot.ts), then
 *  - import: readSnapshot() + importSnapshot(), i.e. boot, classify every page, rebuild;
 *  - import --estimate: the same without kpageflags;
 *  - predict --hugepages: the four nr_hugepages writes and compact_memory on a copy.
 * The target is the "a new user runs snapshot then predict": a 64 GiB machine's answer
 * in well under a minute. --quick uses 4 GiB, the full run 16 and 64 GiB.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Machine } from '../src/sim/machine.ts';
import { importSnapshot } from '../src/snapshot/import.ts';
import { writeModelSnapshot } from '../src/snapshot/model_snapshot.ts';
import { predictHugepages } from '../src/snapshot/predict.ts';
import { readSnapshot } from '../src/snapshot/read.ts';
import { type BenchContext, defineBenchmark, note, type Row } from './lib/harness.ts';
import { fragment } from './lib/memory.ts';

const TARGET_S = 30;

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t = performance.now();
  const v = await fn();
  return [v, (performance.now() - t) / 1e3];
}

const benchmark = defineBenchmark({
  title: 'Snapshot import and prediction (a fragmented model machine, round trip)',
  async run(ctx: BenchContext): Promise<Row[]> {
    const rows: Row[] = [];
    for (const memory of ctx.quick ? ['4G'] : ['16G', '64G']) {
      note(`booting and fragmenting ${memory}`);
      const m = Machine.boot({ memory, cpus: 2, seed: 1 });
      fragment(m);
      const dir = mkdtempSync(join(tmpdir(), 'mapcontig-bench-import-'));
      try {
        await writeModelSnapshot(m, dir);
        const [imported, importS] = await timed(async () => importSnapshot(await readSnapshot(dir)));
        const [, estimateS] = await timed(async () =>
          importSnapshot(await readSnapshot(dir, { kpage: false }), { estimate: true }),
        );
        const huge = Math.floor(m.mm.totalram_pages / 512 / 2);
        const [p, predictS] = await timed(() => predictHugepages(imported, { count: huge }));
        const same = imported.machine.readFile('/proc/buddyinfo') === m.readFile('/proc/buddyinfo');
        const detail = `${memory}; buddyinfo ${same ? 'identical to the original' : 'DIFFERS from the original'}`;
        rows.push(
          {
            case: `${memory}, kpageflags`,
            metric: 'import',
            value: importS,
            unit: 's',
            detail,
            target: `< ${TARGET_S} s`,
            met: importS < TARGET_S,
          },
          {
            case: `${memory}, estimate`,
            metric: 'import',
            value: estimateS,
            unit: 's',
            detail: memory,
            target: `< ${TARGET_S} s`,
            met: estimateS < TARGET_S,
          },
          {
            case: `${memory}, nr_hugepages=${huge}`,
            metric: 'predict',
            value: predictS,
            unit: 's',
            detail: `${p.now} now, ${p.after_compaction} after compact_memory`,
            target: `< ${TARGET_S} s`,
            met: predictS < TARGET_S,
          },
        );
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
    return rows;
  },
});

export default benchmark;
