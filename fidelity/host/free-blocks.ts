/**
 * free-blocks: the 2 MiB blocks of zone Normal that a snapshot's kpageflags shows free, counted
 * three ways, to explain where a hugetlb pool's pages came from (docs/fidelity.md, host runs):
 *   buddy       every page KPF_BUDDY: a free block on the buddy lists (what buddyinfo counts);
 *   bare512     every page without any flag (and count 0): a free order-9 page on a per-cpu list
 *               (a released hugetlb page or THP parks there), or a run of order-0 pcp pages;
 *   mixed       every page BUDDY or bare, some of each: free only once the pcp pages drain back
 *               and merge.
 * The importer takes as many bare pages as the snapshot's pagesets count for pcp pages and parks
 * them on per-cpu lists, a whole bare 2 MiB block as one order-9 page (docs/import.md, §2 rule 6
 * and §4 step 8): like the kernel's buddyinfo, the model's at import counts only the buddy blocks.
 *
 *   npx tsx fidelity/host/free-blocks.ts SNAPSHOT ...   → one JSON line per snapshot
 *
 * SNAPSHOT is a snapshot directory or tarball, e.g. fidelity/host/runs/<run>/snapshot.tar.gz.
 */
import { readSnapshot } from '../../src/snapshot/read.ts';

const KPF_BUDDY = 10;
for (const path of process.argv.slice(2)) {
  const s = await readSnapshot(path);
  if (!s.kpage) throw new Error(`${path}: no kpageflags`);
  let buddy = 0;
  let bare512 = 0;
  let mixed = 0;
  let barePages = 0;
  for (const r of s.kpage.ranges) {
    if (r.zone !== 'Normal') continue;
    const first = Math.ceil(r.start_pfn / 512) * 512;
    for (let b = first; b + 512 <= r.start_pfn + r.nr_pages; b += 512) {
      let nb = 0;
      let nbare = 0;
      for (let p = b; p < b + 512; p++) {
        const i = p - r.start_pfn;
        const lo = r.flags[2 * i];
        const hi = r.flags[2 * i + 1];
        if ((lo >>> KPF_BUDDY) & 1) nb++;
        else if (lo === 0 && hi === 0 && r.count[2 * i] === 0) nbare++;
        else break;
      }
      if (nb === 512) buddy++;
      else if (nbare === 512) bare512++;
      else if (nb + nbare === 512) mixed++;
    }
    for (let i = 0; i < r.nr_pages; i++)
      if (r.flags[2 * i] === 0 && r.flags[2 * i + 1] === 0 && r.count[2 * i] === 0) barePages++;
  }
  console.log(
    JSON.stringify({
      snapshot: path,
      normal_2m_blocks: { buddy, bare512, mixed },
      normal_bare_pages: barePages,
    }),
  );
}
