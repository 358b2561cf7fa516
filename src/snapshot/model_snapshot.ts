/**
 * A snapshot of a model machine, in the layout `mapcontig snapshot` writes for a real one
 * (docs/snapshot.md): its /proc and /sys files as it renders them, the System RAM lines of a
 * /proc/iomem, kpageflags and kpagecount whole, no manifest. Importing it back is the round trip that checks the importer against a
 * machine whose every page is known (test/snapshot/round-trip.test.ts, bench/import.bench.ts).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Machine } from '../sim/machine.ts';

/** The release the model reports (the kpageflags layout the importer reads it with). */
export const MODEL_RELEASE = '6.18.0-mapcontig';
const PROC = ['buddyinfo', 'zoneinfo', 'pagetypeinfo', 'meminfo', 'vmstat', 'slabinfo', 'swaps'];
/** Files a snapshot skips: actions, and files that change the machine when read. */
const SKIP = new Set([
  '/proc/sys/vm/compact_memory',
  '/proc/sys/vm/drop_caches',
  '/proc/sys/vm/stat_refresh',
]);

/** Write `m`'s snapshot into `dir` (created). */
export async function writeModelSnapshot(m: Machine, dir: string): Promise<void> {
  const put = async (path: string, data: string | Uint8Array): Promise<void> => {
    const file = join(dir, path);
    await mkdir(dirname(file), { recursive: true });
    await writeFile(file, data);
  };
  for (const f of PROC) await put(`proc/${f}`, m.readFile(`/proc/${f}`));
  // The model has no /proc/iomem; its System RAM lines are what an import needs of it.
  const hex = (n: number) => n.toString(16).padStart(8, '0');
  await put(
    'proc/iomem',
    m.mm.ram.map((r) => `${hex(r.start * 4096)}-${hex(r.end * 4096 - 1)} : System RAM\n`).join(''),
  );
  await put('proc/sys/kernel/osrelease', `${MODEL_RELEASE}\n`);
  await put('proc/cmdline', m.config.deferred_init === 'lazy' ? 'deferred_init=lazy\n' : '\n');
  const sysfs = [
    ...m.listFiles('/sys/kernel/mm/hugepages'),
    ...m.listFiles('/sys/kernel/mm/transparent_hugepage'),
  ];
  for (const path of [...m.listFiles('/proc/sys/vm'), ...sysfs]) {
    if (SKIP.has(path)) continue;
    try {
      await put(path.slice(1), m.readFile(path));
    } catch {
      // Write-only files (sysfs without a show method) are not in a snapshot either.
    }
  }
  await put('proc/kpageflags', m.readFileBytes('/proc/kpageflags'));
  await put('proc/kpagecount', m.readFileBytes('/proc/kpagecount'));
}
