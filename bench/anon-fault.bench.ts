/**
 * Anonymous page faults and mmap/munmap through a process: each op of "write fault" is one 4 KiB
 * demand fault (do_anonymous_page: page-table walk, a zeroed movable page, LRU and rmap), each op
 * of "mmap+munmap" maps and unmaps 64 KiB with 10^5 other VMAs in the address space. A pass
 * maps 64 MiB, faults it in, and unmaps it, so page tables are allocated and freed too.
 *
 * For scale, bench/fault-vs-kernel measures the real 6.18 kernel of the machine it runs on:
 * ≈ 1.4 µs per warm 4 KiB write fault and ≈ 1 µs per page under MAP_POPULATE here, 4-6 µs when
 * the host has taken the guest's free memory back (../shared/real-kernel-notes.md §5 quotes
 * ≈ 13 µs, measured on memory the host had reclaimed).
 */
import { Machine } from '../src/sim/machine.ts';
import {
  MAP_ANONYMOUS,
  MAP_FIXED,
  MAP_POPULATE,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../src/vm/uapi.ts';
import { defineBenchmark, note, opsRow, type Row, timeOps } from './lib/harness.ts';

const RW = PROT_READ | PROT_WRITE;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const REGION = 64 * 2 ** 20;
const PAGES = REGION / 4096;
const VMAS = 100_000;

export default defineBenchmark({
  title: 'anonymous faults and mmap/munmap (16 GiB, process on CPU 0)',
  async run(ctx) {
    const rows: Row[] = [];
    const m = Machine.boot({ memory: '16G', cpus: 2 });
    const p = m.spawn();

    note('write faults');
    const faults = (): number => {
      const a = p.mmap(0, REGION, RW, ANON);
      const n = p.touch(a, REGION, { write: true });
      p.munmap(a, REGION);
      return n;
    };
    rows.push(
      opsRow(
        '4 KiB write fault (demand, incl. mmap/munmap of the region)',
        await timeOps(faults, PAGES, ctx, 2),
      ),
    );

    note('MAP_POPULATE');
    const populate = (): number => {
      const a = p.mmap(0, REGION, RW, ANON | MAP_POPULATE);
      p.munmap(a, REGION);
      return a % 4096;
    };
    rows.push(opsRow('4 KiB page under MAP_POPULATE (incl. munmap)', await timeOps(populate, PAGES, ctx, 2)));

    note(`mmap+munmap with ${VMAS} VMAs`);
    // 10^5 one-page mappings with alternating protections, so none merge (above the default
    // vm.max_map_count of 65530, raised as a database host would).
    m.writeFile('/proc/sys/vm/max_map_count', String(2 * VMAS));
    const base = 0x100000000;
    for (let i = 0; i < VMAS; i++) p.mmap(base + i * 8192, 4096, i % 2 ? PROT_READ : RW, ANON | MAP_FIXED);
    const OPS = 4096;
    const churn = (): number => {
      let sum = 0;
      for (let i = 0; i < OPS; i++) {
        const a = p.mmap(0, 65536, RW, ANON);
        p.munmap(a, 65536);
        sum = (sum + a) % 65521;
      }
      return sum;
    };
    rows.push(opsRow(`mmap+munmap 64 KiB (${VMAS} other VMAs)`, await timeOps(churn, OPS, ctx)));
    if (p.mm.map_count !== VMAS) throw new Error(`expected ${VMAS} VMAs, found ${p.mm.map_count}`);
    p.exit();
    const v = m.invariantViolations();
    if (v.length) throw new Error(`invariants broken after the run:\n  ${v.join('\n  ')}`);
    return rows;
  },
});
