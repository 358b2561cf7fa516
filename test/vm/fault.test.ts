/**
 * Page faults on anonymous private memory: reads map the shared zero page, writes allocate zeroed
 * movable pages on the LRU and in the reverse map, write-after-read replaces the zero page, bad
 * accesses get SIGSEGV, and page tables are real unmovable frames.
 */
import { describe, expect, it } from 'vitest';
import { LRU_INACTIVE_ANON, LRU_UNEVICTABLE } from '../../src/mm/lru.ts';
import { MIGRATE_MOVABLE, MIGRATE_UNMOVABLE } from '../../src/mm/mmzone.ts';
import { PG_anon, PG_lru, PG_mlocked, PG_table } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { node_stat_index } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import { walk_pte_table } from '../../src/vm/memory.ts';
import { PTRS_PER_TABLE, pte_index } from '../../src/vm/pgtable.ts';
import { FaultError } from '../../src/vm/process.ts';
import { rmap_walk } from '../../src/vm/rmap.ts';
import {
  MAP_ANONYMOUS,
  MAP_LOCKED,
  MAP_NORESERVE,
  MAP_PRIVATE,
  PROT_NONE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';

const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

function setup() {
  const m = Machine.boot({ memory: '2G', cpus: 2 });
  return { m, p: m.spawn() };
}

function pfnAt(m: Machine, p: ReturnType<Machine['spawn']>, addr: number): number {
  const vpn = addr / 4096;
  const table = walk_pte_table(m.vm, p.mm, vpn);
  return table < 0 ? -1 : m.vm.pt.pfn[table * PTRS_PER_TABLE + pte_index(vpn)];
}

describe('anonymous faults', () => {
  it('map the zero page on read and a new page on write', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 16384, PROT_READ | PROT_WRITE, ANON);
    expect(p.touch(a, 8192)).toBe(2);
    expect(pfnAt(m, p, a)).toBe(m.mm.zero_pfn);
    expect(p.mm.rss[1]).toBe(0);
    expect(p.touch(a, 8192)).toBe(0); // already mapped for reading
    expect(p.touch(a, 4096, { write: true })).toBe(1); // the zero page is replaced
    const pfn = pfnAt(m, p, a);
    expect(pfn).not.toBe(m.mm.zero_pfn);
    const f = m.mm.frames;
    expect(f.flags[pfn] & (PG_anon | PG_lru)).toBe(PG_anon | PG_lru);
    expect(f.mapcount[pfn]).toBe(1);
    expect(get_pfnblock_migratetype(m.mm, pfn)).toBe(MIGRATE_MOVABLE);
    expect(m.mm.nodes[0].vm_stat[LRU_INACTIVE_ANON]).toBe(1);
    expect(m.mm.nodes[0].vm_stat[node_stat_index('nr_anon_pages')]).toBe(1);
    expect(m.readFile('/proc/vmstat')).toMatch(/^pgfault 3$/m);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('find every mapping of a page through the reverse map', () => {
    const { m, p } = setup();
    const a = p.mmap(0, 8192, PROT_READ | PROT_WRITE, ANON);
    p.touch(a + 4096, 1, { write: true });
    const pfn = pfnAt(m, p, a + 4096);
    const found: number[] = [];
    rmap_walk(
      m.vm,
      pfn,
      (_vm, _mm, _vma, addr) => {
        found.push(addr);
      },
      null,
    );
    expect(found).toEqual([a + 4096]);
  });

  it('allocate page tables as unmovable frames counted in PageTables', () => {
    const { m, p } = setup();
    const before = m.vm.pt.count;
    const a = p.mmap(0x7f0000000000, 4096, PROT_READ | PROT_WRITE, ANON | 0x10);
    p.touch(a, 1, { write: true });
    expect(m.vm.pt.count - before).toBe(3); // PUD, PMD and PTE tables under the existing PGD
    const table = walk_pte_table(m.vm, p.mm, a / 4096);
    const tpfn = m.vm.pt.frame[table];
    expect(m.mm.frames.flags[tpfn] & PG_table).toBeTruthy();
    expect(get_pfnblock_migratetype(m.mm, tpfn)).toBe(MIGRATE_UNMOVABLE);
    expect(m.readFile('/proc/meminfo')).toMatch(new RegExp(`^PageTables:\\s+${m.vm.pt.count * 4} kB$`, 'm'));
  });

  it('put pages of a locked mapping on the unevictable list', () => {
    const { m, p } = setup();
    p.mmap(0, 65536, PROT_READ | PROT_WRITE, ANON | MAP_LOCKED);
    expect(m.mm.nodes[0].vm_stat[LRU_UNEVICTABLE]).toBe(16);
    expect(m.readFile('/proc/meminfo')).toMatch(/^Mlocked:\s+64 kB$/m);
    const f = m.mm.frames;
    let mlocked = 0;
    for (let pfn = 0; pfn < f.nr_frames; pfn++) if (f.flags[pfn] & PG_mlocked) mlocked++;
    expect(mlocked).toBe(16);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('bad accesses', () => {
  it('SIGSEGV with SEGV_MAPERR outside every mapping and SEGV_ACCERR against protections', () => {
    const { p } = setup();
    const ro = p.mmap(0, 4096, PROT_READ, ANON);
    const none = p.mmap(0, 4096, PROT_NONE, ANON);
    const code = (fn: () => void) => {
      try {
        fn();
      } catch (e) {
        if (e instanceof FaultError) return `${e.signal}/${e.code}`;
        throw e;
      }
      return 'ok';
    };
    expect(code(() => p.touch(0x1000, 1))).toBe('SIGSEGV/SEGV_MAPERR');
    expect(code(() => p.touch(ro, 1, { write: true }))).toBe('SIGSEGV/SEGV_ACCERR');
    expect(code(() => p.touch(none, 1))).toBe('SIGSEGV/SEGV_ACCERR');
    expect(code(() => p.touch(ro, 1))).toBe('ok');
  });

  it('SIGKILL (oom) when memory runs out, with no OOM killer to help yet', () => {
    const m = Machine.boot({ memory: '256M', cpus: 1 });
    const p = m.spawn();
    // More than all RAM: heuristic overcommit refuses it unless MAP_NORESERVE.
    const a = p.mmap(0, 512 * 2 ** 20, PROT_READ | PROT_WRITE, ANON | MAP_NORESERVE);
    expect(() => p.touch(a, 512 * 2 ** 20, { write: true })).toThrow(/SIGKILL \(oom\)/);
    expect(m.invariantViolations()).toEqual([]);
    p.exit();
    expect(m.invariantViolations()).toEqual([]);
  });
});
