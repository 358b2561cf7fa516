/**
 * huge-regions: where the hugetlb pool's pages are, by region of physical memory, read from
 * /proc/kpageflags (root). Used by run-host.sh while the pool is held, to tell the 2 MiB pages
 * taken from blocks that were already free from those taken from memory the kernel initialised
 * for them (deferred_init=lazy: zone Normal grows 128 MiB sections at a time).
 *
 *   npx tsx fidelity/host/huge-regions.ts [--grown-from PFN]   → one JSON object on stdout
 *
 * Regions: each populated zone; zone Normal split at --grown-from (the first PFN past the
 * initialised part of Normal at snapshot time), into "Normal" and "Normal-grown". Only the PFN
 * ranges the snapshot capture reads are read (kpagePfnRanges: uninitialised struct pages are
 * never touched). Per region: hugetlb 2 MiB pages (KPF_HUGE|KPF_COMPOUND_HEAD), pages in free
 * buddy blocks (KPF_BUDDY), pages with no flag at all (free pages on pcp lists are among them).
 */
import { closeSync, openSync, readFileSync, readSync } from 'node:fs';
import { kpagePfnRanges } from '../../src/snapshot/capture.ts';
import { parseZoneinfo } from '../../src/snapshot/parse.ts';

const KPF_BUDDY = 10;
const KPF_COMPOUND_HEAD = 15;
const KPF_HUGE = 17;

let grownFrom = Number.POSITIVE_INFINITY;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--grown-from') grownFrom = Number(argv[++i]);
  else {
    console.error('usage: huge-regions.ts [--grown-from PFN]');
    process.exit(2);
  }
}

const zones = parseZoneinfo(readFileSync('/proc/zoneinfo', 'latin1'), 'proc/zoneinfo');
const { ranges } = kpagePfnRanges(
  zones,
  readFileSync('/proc/iomem', 'latin1'),
  readFileSync('/proc/cmdline', 'latin1'),
);

interface Region {
  pfns: number;
  hugetlb_2m: number;
  buddy_pages: number;
  flagless_pages: number;
  first_pfn: number;
  last_pfn: number;
}
const regions: Record<string, Region> = {};
const region = (name: string): Region =>
  (regions[name] ??= {
    pfns: 0,
    hugetlb_2m: 0,
    buddy_pages: 0,
    flagless_pages: 0,
    first_pfn: -1,
    last_pfn: -1,
  });

const fd = openSync('/proc/kpageflags', 'r');
const CHUNK = 1 << 20;
const buf = Buffer.alloc(CHUNK * 8);
const t0 = performance.now();
for (const r of ranges) {
  for (let done = 0; done < r.nr_pages; ) {
    const n = Math.min(CHUNK, r.nr_pages - done);
    const start = r.start_pfn + done;
    const got = readSync(fd, buf, 0, n * 8, start * 8);
    if (got !== n * 8) throw new Error(`short read of kpageflags at PFN ${start}`);
    for (let i = 0; i < n; i++) {
      const pfn = start + i;
      const lo = buf.readUInt32LE(i * 8);
      const hi = buf.readUInt32LE(i * 8 + 4);
      const name = r.zone === 'Normal' && pfn >= grownFrom ? 'Normal-grown' : r.zone;
      const g = region(name);
      g.pfns++;
      if (g.first_pfn < 0) g.first_pfn = pfn;
      g.last_pfn = pfn;
      if (lo === 0 && hi === 0) g.flagless_pages++;
      if ((lo >>> KPF_BUDDY) & 1) g.buddy_pages++;
      if ((lo >>> KPF_HUGE) & 1 && (lo >>> KPF_COMPOUND_HEAD) & 1) g.hugetlb_2m++;
    }
    done += n;
  }
}
closeSync(fd);
const normal = zones.find((z) => z.zone === 'Normal');
console.log(
  JSON.stringify({
    grown_from_pfn: Number.isFinite(grownFrom) ? grownFrom : null,
    normal_managed: normal?.managed ?? null,
    read_ms: Math.round(performance.now() - t0),
    regions,
  }),
);
