/**
 * Regenerate test/fixtures/snapshot/ on a Linux machine, as root:
 *   npx tsx test/snapshot/make-fixture.ts
 * All the text files, and kpageflags/kpagecount for one 128 MiB section at the start of zone
 * Normal only, so the fixture stays small (~300 KiB) and the tests that read it run anywhere.
 */
import { rmSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { captureSnapshot } from '../../src/snapshot/capture.ts';
import { parseZoneinfo } from '../../src/snapshot/parse.ts';

const dir = fileURLToPath(new URL('../fixtures/snapshot', import.meta.url));
const zones = parseZoneinfo(await readFile('/proc/zoneinfo', 'latin1'));
const normal = zones.find((z) => z.zone === 'Normal' && z.start_pfn !== undefined);
if (!normal?.start_pfn) throw new Error('no populated zone Normal');
rmSync(dir, { recursive: true, force: true });
const r = await captureSnapshot(dir, {
  pfn_ranges: [{ start_pfn: normal.start_pfn, nr_pages: 32768, node: normal.node, zone: 'Normal' }],
  gzip_level: 9,
});
process.stdout.write(`${r.manifest.files.length} files, ${r.total_bytes} bytes in ${dir}\n`);
