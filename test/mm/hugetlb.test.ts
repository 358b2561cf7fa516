/** hugetlb pools: boot parameters, nr_hugepages writes, per-node files, errnos, meminfo. */
import { describe, expect, it } from 'vitest';
import { meminfo_field } from '../../src/fs/proc/meminfo.ts';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import { errno, NO_EARLY } from '../vm/helpers.ts';

const H2 = '/sys/kernel/mm/hugepages/hugepages-2048kB';
const H1G = '/sys/kernel/mm/hugepages/hugepages-1048576kB';
const num = (m: Machine, path: string): number => Number(m.readFile(path));
const vmstat = (m: Machine, name: string): number =>
  Number(m.readFile('/proc/vmstat').match(new RegExp(`^${name} (\\d+)$`, 'm'))![1]);

/** Fill memory with unmovable order-0 pages, then free all but one in every 2 MiB block of `keep` blocks. */
function fragment(m: Machine, everyNth: number): void {
  m.instantly(() => {
    const got: number[] = [];
    for (;;) {
      const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0);
      if (pfn < 0) break;
      got.push(pfn);
    }
    // Keep the first page of every `everyNth` 2 MiB block: those blocks can never be free.
    for (const pfn of got)
      if (!(pfn % 512 === 0 && (pfn / 512) % everyNth === 0)) m.kernel.free_pages(pfn, 0);
  });
}

describe('hugetlb pools', () => {
  it('has both x86-64 hstates, and the files Linux 6.18 has', () => {
    const m = Machine.boot({ memory: '512M', early: NO_EARLY });
    expect(m.listFiles('/sys/kernel/mm/hugepages/hugepages-2048kB').sort()).toEqual(
      [
        'free_hugepages',
        'nr_hugepages',
        'nr_hugepages_mempolicy',
        'nr_overcommit_hugepages',
        'resv_hugepages',
        'surplus_hugepages',
      ].map((f) => `${H2}/${f}`),
    );
    expect(m.readFile(`${H1G}/nr_hugepages`)).toBe('0\n');
    expect(m.listFiles('/sys/devices/system/node/node0/hugepages/hugepages-2048kB').length).toBe(3);
    const text = m.readFile('/proc/meminfo');
    expect(text).toContain(
      'HugePages_Total:       0\nHugePages_Free:        0\nHugePages_Rsvd:        0\nHugePages_Surp:        0\nHugepagesize:       2048 kB\nHugetlb:               0 kB\n',
    );
  });

  it('a fresh machine gives every page asked for, and shrinking frees them', () => {
    const m = Machine.boot({ memory: '1G', early: NO_EARLY });
    const free0 = meminfo_field(m.readFile('/proc/meminfo'), 'MemFree');
    m.writeFile('/proc/sys/vm/nr_hugepages', '100');
    expect(m.readFile('/proc/sys/vm/nr_hugepages')).toBe('100\n');
    expect(num(m, `${H2}/free_hugepages`)).toBe(100);
    expect(meminfo_field(m.readFile('/proc/meminfo'), 'Hugetlb')).toBe(204800);
    expect(free0 - meminfo_field(m.readFile('/proc/meminfo'), 'MemFree')).toBe(204800);
    expect(vmstat(m, 'htlb_buddy_alloc_success')).toBe(100);
    m.checkInvariants();
    m.writeFile(`${H2}/nr_hugepages`, '10\n');
    expect(num(m, `${H2}/nr_hugepages`)).toBe(10);
    m.checkInvariants();
  });

  it('a fragmented machine gives fewer pages than asked, silently; compaction helps', () => {
    const m = Machine.boot({ memory: '1G', early: NO_EARLY });
    fragment(m, 2); // half of all 2 MiB blocks pinned by one unmovable page
    m.writeFile('/proc/sys/vm/nr_hugepages', '400');
    const got = num(m, '/proc/sys/vm/nr_hugepages');
    expect(got).toBeGreaterThan(0);
    expect(got).toBeLessThan(400);
    expect(vmstat(m, 'htlb_buddy_alloc_fail')).toBeGreaterThan(0);
    m.checkInvariants();
  });

  it('more pages after compact_memory when movable pages fragment memory', () => {
    const m = Machine.boot({ memory: '1G', early: NO_EARLY });
    const p = m.spawn();
    // Movable pages everywhere, then every other one unmapped: no free 2 MiB block anywhere.
    const len = 700 << 20;
    const a = p.mmap(0, len, 3, 0x22);
    p.touch(a, len, { write: true });
    for (let off = 0; off < len; off += 8192) p.madvise(a + off, 4096, 4);
    m.writeFile('/proc/sys/vm/compact_memory', '1');
    m.writeFile('/proc/sys/vm/nr_hugepages', '300');
    expect(num(m, '/proc/sys/vm/nr_hugepages')).toBeGreaterThan(50);
    m.checkInvariants();
  });

  it('gigantic pages: runtime via alloc_contig_pages, boot via memblock', () => {
    const m = Machine.boot({ memory: '8G', early: NO_EARLY, hugetlb: 'hugepagesz=1G hugepages=2' });
    expect(num(m, `${H1G}/nr_hugepages`)).toBe(2);
    expect(m.mm.klog).toContain('HugeTLB: registered 1.00 GiB page size, pre-allocated 2 pages');
    m.checkInvariants();
    m.writeFile(`${H1G}/nr_hugepages`, '4');
    const n = num(m, `${H1G}/nr_hugepages`);
    expect(n).toBeGreaterThan(2);
    expect(vmstat(m, 'htlb_buddy_alloc_success')).toBe(0); // gigantic pages do not count
    m.writeFile(`${H1G}/nr_hugepages`, '0');
    expect(num(m, `${H1G}/nr_hugepages`)).toBe(0);
    m.checkInvariants();
  });

  it('gigantic runtime allocation fails with a pinned page in every 1 GiB range', () => {
    const m = Machine.boot({ memory: '4G', early: NO_EARLY });
    m.instantly(() => {
      const got: number[] = [];
      for (;;) {
        const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0);
        if (pfn < 0) break;
        got.push(pfn);
      }
      // One unmovable page kept per 128 MiB.
      for (const pfn of got) if (pfn % 32768 !== 7) m.kernel.free_pages(pfn, 0);
    });
    m.writeFile(`${H1G}/nr_hugepages`, '1');
    expect(num(m, `${H1G}/nr_hugepages`)).toBe(0);
    m.checkInvariants();
  });

  it('boot parameters: per-node counts and the default size', () => {
    const m = Machine.boot({
      memory: '2G',
      nodes: 2,
      cpus: 2,
      early: NO_EARLY,
      hugetlb: 'hugepagesz=2M hugepages=0:3,1:2',
    });
    expect(m.readFile('/sys/devices/system/node/node0/hugepages/hugepages-2048kB/nr_hugepages')).toBe('3\n');
    expect(m.readFile('/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages')).toBe('2\n');
    m.writeFile('/sys/devices/system/node/node1/hugepages/hugepages-2048kB/nr_hugepages', '5');
    expect(num(m, `${H2}/nr_hugepages`)).toBe(8);
    m.checkInvariants();
    const d = Machine.boot({ memory: '512M', early: NO_EARLY, hugetlb: 'hugepages=7 default_hugepagesz=2M' });
    expect(meminfo_field(d.readFile('/proc/meminfo'), 'HugePages_Total')).toBe(7);
    const bad = Machine.boot({ memory: '512M', early: NO_EARLY, hugetlb: 'hugepagesz=4M hugepages=3' });
    expect(bad.mm.klog).toContain('HugeTLB: unsupported hugepagesz=4M');
    expect(bad.mm.klog).toContain('HugeTLB: hugepages=3 does not follow a valid hugepagesz, ignoring');
  });

  it('write errnos', () => {
    const m = Machine.boot({ memory: '512M', early: NO_EARLY });
    expect(errno(() => m.writeFile(`${H2}/nr_hugepages`, 'abc'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${H2}/nr_hugepages`, ' 1'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${H2}/nr_hugepages`, '-1'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${H2}/nr_hugepages`, '99999999999999999999'))).toBe('ERANGE');
    expect(errno(() => m.writeFile('/proc/sys/vm/nr_hugepages', 'x'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${H1G}/nr_overcommit_hugepages`, '1'))).toBe('EINVAL');
    expect(errno(() => m.writeFile(`${H2}/free_hugepages`, '1'))).toBe('EACCES');
    expect(errno(() => m.writeFile(`${H2}/nr_hugepages`, '+2\n'))).toBe('ok');
    expect(num(m, `${H2}/nr_hugepages`)).toBe(2);
  });
});
