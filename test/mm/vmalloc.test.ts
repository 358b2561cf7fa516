/**
 * vmalloc (mm/vmalloc.c, Linux 6.18): an area is its pages (order-0, unmovable, from the bulk
 * allocator), a kmalloc-96 vm_struct, a vmap_area object and a page array (kmalloc up to a page
 * of pointers, vmalloc above); VmallocUsed counts every area's pages; /proc/vmallocinfo lists the
 * areas with their guard pages, root only; vfree() gives everything back.
 */
import { describe, expect, it } from 'vitest';
import { meminfo_field } from '../../src/fs/proc/meminfo.ts';
import { stable_page_flags } from '../../src/fs/proc/page.ts';
import type { Cred } from '../../src/fs/vfs.ts';
import type { ErrnoError } from '../../src/lib/errno.ts';
import { Prng } from '../../src/lib/prng.ts';
import { __GFP_NOWARN, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { MIGRATE_UNMOVABLE, PAGE_SIZE, pageblock_nr_pages } from '../../src/mm/mmzone.ts';
import { PGI_alloc } from '../../src/mm/page-flags.ts';
import { get_pfnblock_migratetype } from '../../src/mm/pageblock.ts';
import { cache_objects_inuse, NULL } from '../../src/mm/slab.ts';
import {
  find_vm_area,
  is_vmalloc_addr,
  PMD_SIZE,
  VMALLOC_START,
  vmalloc_check,
  vmalloc_to_pfn,
} from '../../src/mm/vmalloc.ts';
import { global_node_page_state, global_zone_page_state } from '../../src/mm/vmstat.ts';
import { NR_FREE_PAGES, node_stat_index } from '../../src/mm/vmstat_items.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { cleanMachine, markAllocated, takeAll, untake, violations } from '../helpers.ts';

const UNRECLAIMABLE = node_stat_index('nr_slab_unreclaimable');
const USER: Cred = { uid: 1000, gid: 1000 };

/** Free pages, wherever they sit: the buddy lists and every CPU's per-cpu lists. */
function freePages(m: Machine): number {
  let n = global_zone_page_state(m.mm, NR_FREE_PAGES);
  for (const z of m.mm.zones) for (let cpu = 0; cpu < m.mm.nr_cpus; cpu++) n += z.pcp.count[cpu];
  return n;
}
const slabPages = (m: Machine): number => global_node_page_state(m.mm, UNRECLAIMABLE);
const inuse = (m: Machine, cache: string): number => cache_objects_inuse(m.kernel.kmem_cache(cache)!);
function consistent(m: Machine): void {
  expect(vmalloc_check(m.mm)).toEqual([]);
  expect(violations(m)).toEqual([]);
}

describe('what an area is made of', () => {
  it('takes its pages, a kmalloc-96 vm_struct, a vmap_area and a kmalloc page array', () => {
    const m = cleanMachine();
    const free0 = freePages(m);
    const slab0 = slabPages(m);
    const objs0 = ['kmalloc-96', 'vmap_area', 'kmalloc-32'].map((c) => inuse(m, c));
    const a = m.kernel.vmalloc(4 * PAGE_SIZE);
    expect(a).toBe(VMALLOC_START);
    const vm = find_vm_area(m.mm, a)!;
    expect([vm.nr_pages, vm.size, vm.page_order]).toEqual([4, 5 * PAGE_SIZE, 0]);
    // 4 pointers: a kmalloc-32 object; the vm_struct (72 bytes) is kmalloc-96.
    expect(['kmalloc-96', 'vmap_area', 'kmalloc-32'].map((c) => inuse(m, c))).toEqual(
      objs0.map((n) => n + 1),
    );
    expect(is_vmalloc_addr(vm.pages_addr)).toBe(false);
    // Free memory fell by the four pages and the slab pages the three objects needed.
    expect(free0 - freePages(m)).toBe(4 + slabPages(m) - slab0);
    for (let i = 0; i < 4; i++) {
      const pfn = vmalloc_to_pfn(m.mm, a + i * PAGE_SIZE);
      expect(m.mm.frames.flags[pfn]).toBe(PGI_alloc);
      expect(m.mm.frames.order[pfn]).toBe(0);
      expect(get_pfnblock_migratetype(m.mm, pfn)).toBe(MIGRATE_UNMOVABLE);
      expect(stable_page_flags(m.mm, pfn)).toBe(0n); // no KPF flag marks vmalloc pages
    }
    consistent(m);
  });

  it('vmallocs the page array itself above 512 pages (vpages), and counts its pages too', () => {
    const m = cleanMachine();
    const free0 = freePages(m);
    const slab0 = slabPages(m);
    const a = m.kernel.vmalloc(1000 * PAGE_SIZE);
    const vm = find_vm_area(m.mm, a)!;
    expect(is_vmalloc_addr(vm.pages_addr)).toBe(true);
    const arr = find_vm_area(m.mm, vm.pages_addr)!;
    expect(arr.nr_pages).toBe(2); // 8000 bytes of pointers
    expect(m.mm.vmalloc.nr_vmalloc_pages).toBe(1002);
    expect(free0 - freePages(m)).toBe(1002 + slabPages(m) - slab0);
    // 512 pointers still fit a page: kmalloc-4k.
    const b = m.kernel.vmalloc(512 * PAGE_SIZE);
    expect(is_vmalloc_addr(find_vm_area(m.mm, b)!.pages_addr)).toBe(false);
    consistent(m);
  });

  it('hands out the address space lowest-fit, with a guard page after each area', () => {
    const m = cleanMachine();
    const a = m.kernel.vmalloc(4 * PAGE_SIZE);
    const b = m.kernel.vmalloc(PAGE_SIZE + 1); // two pages
    const c = m.kernel.vmalloc(PAGE_SIZE);
    expect([b - a, c - b]).toEqual([5 * PAGE_SIZE, 3 * PAGE_SIZE]);
    m.kernel.vfree(b);
    // A one-page area fits the hole b left; a larger one goes after c.
    expect(m.kernel.vmalloc(10 * PAGE_SIZE)).toBe(c + 2 * PAGE_SIZE);
    expect(m.kernel.vmalloc(PAGE_SIZE)).toBe(b);
    consistent(m);
  });

  it('takes its pages through the bulk path from UNMOVABLE pageblocks', () => {
    const m = cleanMachine();
    const a = m.kernel.vmalloc(64 << 20);
    const vm = find_vm_area(m.mm, a)!;
    const blocks = new Set<number>();
    for (let i = 0; i < vm.nr_pages; i++) {
      const pfn = vm.pages[i];
      expect(get_pfnblock_migratetype(m.mm, pfn)).toBe(MIGRATE_UNMOVABLE);
      blocks.add(Math.floor(pfn / pageblock_nr_pages));
    }
    // Whole free pageblocks were claimed for UNMOVABLE, so 16384 pages sit in few of them.
    expect(blocks.size).toBeLessThanOrEqual(16384 / pageblock_nr_pages + 2);
    consistent(m);
  });
});

describe('huge areas (VM_ALLOW_HUGE_VMAP)', () => {
  it('builds a PMD-aligned area of order-9 blocks split into order-0 pages', () => {
    const m = cleanMachine();
    m.kernel.vmalloc(PAGE_SIZE); // so the huge area cannot start at VMALLOC_START by chance
    const a = m.kernel.vmalloc_huge(4 << 20);
    expect((a - VMALLOC_START) % PMD_SIZE).toBe(0);
    const vm = find_vm_area(m.mm, a)!;
    expect([vm.nr_pages, vm.page_order, vm.size]).toEqual([1024, 9, (4 << 20) + PAGE_SIZE]);
    for (const first of [0, 512]) {
      const head = vm.pages[first];
      expect(head % 512).toBe(0);
      for (let i = 0; i < 512; i++) {
        expect(vm.pages[first + i]).toBe(head + i);
        expect(m.mm.frames.flags[head + i]).toBe(PGI_alloc);
        expect(m.mm.frames.order[head + i]).toBe(0);
      }
    }
    expect(m.readFile('/proc/vmallocinfo')).toContain(' vmalloc_huge pages=1024 vmalloc vpages N0=1024\n');
    m.kernel.vfree(a + 48 * PAGE_SIZE); // any page-aligned address inside the area frees it
    expect(find_vm_area(m.mm, a)).toBeNull();
    consistent(m);
  });

  it('falls back to order-0 pages when no order-9 block is free', () => {
    const m = cleanMachine();
    const zone = m.mm.zones.find((z) => z.zone_idx === 1 && z.present_pages > 0)!;
    // Leave only scattered free pages: every other page of 32 max-order blocks.
    const taken = takeAll(m.mm, zone);
    for (const [pfn, order] of taken.filter(([, o]) => o === 10).slice(0, 32)) {
      untake(m.mm, pfn);
      markAllocated(m.mm, pfn, 1 << order);
      for (let p = pfn; p < pfn + (1 << order); p += 2) m.kernel.free_pages(p, 0);
    }
    for (const z of m.mm.zones) if (z !== zone) takeAll(m.mm, z);
    const a = m.kernel.vmalloc_huge(2 << 20);
    expect(a).not.toBe(NULL);
    const vm = find_vm_area(m.mm, a)!;
    expect([vm.nr_pages, vm.page_order, vm.size]).toEqual([512, 0, (2 << 20) + PAGE_SIZE]);
    expect(m.mm.klog.filter((l) => l.includes('vmalloc error'))).toEqual([]);
    expect(vmalloc_check(m.mm)).toEqual([]);
  });
});

describe('accounting and /proc', () => {
  it('shows vmalloc_nr_pages() as VmallocUsed and keeps VmallocChunk 0', () => {
    const m = cleanMachine();
    expect(meminfo_field(m.readFile('/proc/meminfo'), 'VmallocUsed')).toBe(0);
    const a = m.kernel.vzalloc(100 * PAGE_SIZE);
    const b = m.kernel.vmalloc(600 * PAGE_SIZE);
    const text = m.readFile('/proc/meminfo');
    expect(meminfo_field(text, 'VmallocUsed')).toBe((100 + 600 + 2) * 4);
    expect(meminfo_field(text, 'VmallocChunk')).toBe(0);
    m.kernel.vfree(b);
    expect(meminfo_field(m.readFile('/proc/meminfo'), 'VmallocUsed')).toBe(400);
    m.kernel.vfree(a);
    expect(meminfo_field(m.readFile('/proc/meminfo'), 'VmallocUsed')).toBe(0);
  });

  it('prints /proc/vmallocinfo as 6.18 does', () => {
    const m = cleanMachine({ cpus: 1 }); // one vmap node: the lines are in address order
    m.kernel.vmalloc(4 * PAGE_SIZE, GFP_KERNEL, { caller: 'drv_probe+0x5e/0x120' });
    m.kernel.vzalloc(600 * PAGE_SIZE);
    expect(m.readFile('/proc/vmallocinfo')).toBe(
      '0xffffc90000000000-0xffffc90000005000   20480 drv_probe+0x5e/0x120 pages=4 vmalloc N0=4\n' +
        '0xffffc90000005000-0xffffc9000025e000 2461696 vzalloc pages=600 vmalloc vpages N0=600\n' +
        '0xffffc9000025e000-0xffffc90000261000   12288 vzalloc pages=2 vmalloc N0=2\n',
    );
  });

  it('lists the areas vmap node by vmap node (64 KiB zones dealt out to min(cpus, 128) nodes)', () => {
    const m = cleanMachine({ cpus: 2 });
    const areas = [0, 1, 2, 3].map(() => m.kernel.vmalloc(15 * PAGE_SIZE)); // 16 pages: one zone each
    const starts = m
      .readFile('/proc/vmallocinfo')
      .trimEnd()
      .split('\n')
      .map((l) => Number.parseInt(l.slice(2, 18), 16) - VMALLOC_START);
    const off = areas.map((a) => a - VMALLOC_START);
    expect(starts).toEqual([off[0], off[2], off[1], off[3]]);
  });

  it('makes /proc/vmallocinfo readable by root only (0400)', () => {
    const m = cleanMachine();
    m.kernel.vmalloc(PAGE_SIZE);
    let code: string | undefined;
    try {
      m.readFile('/proc/vmallocinfo', USER);
    } catch (e) {
      code = (e as ErrnoError).code;
    }
    expect(code).toBe('EACCES');
    expect(m.readFile('/proc/vmallocinfo')).toMatch(
      /^0x[0-9a-f]{16}-0x[0-9a-f]{16} +\d+ vmalloc pages=1 vmalloc/,
    );
  });
});

describe('vfree', () => {
  it('returns every page, the page arrays, the vm_structs and the vmap_areas', () => {
    const m = cleanMachine();
    const free0 = freePages(m);
    const slab0 = slabPages(m);
    const objs0 = ['kmalloc-96', 'vmap_area', 'kmalloc-32', 'kmalloc-4k'].map((c) => inuse(m, c));
    const hs = [4, 1000, 512, 3000].map((n) => m.kernel.vmalloc(n * PAGE_SIZE));
    const huge = m.kernel.vmalloc_huge(6 << 20);
    for (const h of [...hs, huge]) m.kernel.vfree(h, { cpu: 1 });
    expect(m.mm.vmalloc.busy).toEqual([]);
    expect(m.mm.vmalloc.nr_vmalloc_pages).toBe(0);
    expect(m.readFile('/proc/vmallocinfo')).toBe('');
    expect(['kmalloc-96', 'vmap_area', 'kmalloc-32', 'kmalloc-4k'].map((c) => inuse(m, c))).toEqual(objs0);
    // Every page is free again, except the (now empty) slabs SLUB keeps.
    expect(free0 - freePages(m)).toBe(slabPages(m) - slab0);
    consistent(m);
  });

  it('ignores NULL and warns about an address that is no area, changing nothing', () => {
    const m = cleanMachine();
    const a = m.kernel.vmalloc(PAGE_SIZE);
    m.kernel.vfree(NULL);
    m.kernel.vfree(a + 2 * PAGE_SIZE); // past the guard page
    m.kernel.vfree(a + 2048); // not page-aligned (near 2^64 doubles hold multiples of 2048)
    expect(m.mm.klog).toEqual([
      expect.stringContaining('Trying to vfree() nonexistent vm area (0xffffc90000002000)'),
      expect.stringContaining('Trying to vfree() bad address'),
    ]);
    expect(find_vm_area(m.mm, a)).not.toBeNull();
    consistent(m);
  });
});

describe('failures and arguments', () => {
  it('returns NULL for size 0 (a WARN) and for more than totalram_pages (a warn_alloc line)', () => {
    const m = cleanMachine();
    expect(m.kernel.vmalloc(0)).toBe(NULL);
    expect(m.kernel.vmalloc((m.mm.totalram_pages + 1) * PAGE_SIZE)).toBe(NULL);
    expect(m.kernel.vmalloc((m.mm.totalram_pages + 1) * PAGE_SIZE, GFP_KERNEL | __GFP_NOWARN)).toBe(NULL);
    expect(m.mm.klog).toEqual([
      expect.stringContaining('mm/vmalloc.c'),
      expect.stringMatching(/^vmalloc error: size \d+, exceeds total pages, mode:0xcc0\(GFP_KERNEL\)/),
    ]);
    consistent(m);
  });

  it('gives everything back when memory runs out halfway', () => {
    const m = cleanMachine();
    const free0 = freePages(m);
    const slab0 = slabPages(m);
    expect(m.kernel.vmalloc(Math.floor(m.mm.totalram_pages * 0.99) * PAGE_SIZE)).toBe(NULL);
    expect(
      m.mm.klog.some((l) => l.startsWith('vmalloc error: size') && l.includes('failed to allocate pages')),
    ).toBe(true);
    expect(m.mm.vmalloc.busy).toEqual([]);
    expect(m.mm.vmalloc.nr_vmalloc_pages).toBe(0);
    expect(free0 - freePages(m)).toBe(slabPages(m) - slab0);
    consistent(m);
  });

  it('refuses arguments that are not a size, a GFP mask, a node or a CPU', () => {
    const m = cleanMachine();
    expect(() => m.kernel.vmalloc(-1)).toThrow(RangeError);
    expect(() => m.kernel.vmalloc(1.5)).toThrow(RangeError);
    expect(() => m.kernel.vzalloc(Number.NaN)).toThrow(RangeError);
    expect(() => m.kernel.vmalloc(PAGE_SIZE, -1)).toThrow(RangeError);
    expect(() => m.kernel.vmalloc(PAGE_SIZE, GFP_KERNEL, { nid: 5 })).toThrow(RangeError);
    expect(() => m.kernel.vmalloc_huge(PAGE_SIZE, GFP_KERNEL, { cpu: 9 })).toThrow(RangeError);
    expect(() => m.kernel.vfree(Number.NaN)).toThrow(RangeError);
    expect(m.mm.vmalloc.busy).toEqual([]);
  });
});

describe('kvmalloc', () => {
  it('uses kmalloc while it can and vmalloc (huge pages allowed) beyond', () => {
    const m = cleanMachine();
    const small = m.kernel.kvmalloc(64 << 10);
    expect(is_vmalloc_addr(small)).toBe(false);
    const big = m.kernel.kvmalloc(8 << 20); // above KMALLOC_MAX_SIZE
    expect(is_vmalloc_addr(big)).toBe(true);
    expect(find_vm_area(m.mm, big)!.page_order).toBe(9);
    expect(m.readFile('/proc/vmallocinfo')).toContain(' kvmalloc pages=2048 vmalloc vpages');
    m.kernel.kvfree(small);
    m.kernel.kvfree(big);
    expect(m.mm.vmalloc.busy).toEqual([]);
    consistent(m);
  });
});

describe('invariants', () => {
  it('hold over a seeded sequence of vmallocs and vfrees on several CPUs', () => {
    const m = cleanMachine({ memory: '512M', cpus: 4 });
    const rand = new Prng(3);
    const live: number[] = [];
    for (let step = 0; step < 400; step++) {
      const r = rand.next();
      if (live.length && r < 0.45) {
        const i = Math.floor(rand.next() * live.length);
        m.kernel.vfree(live.splice(i, 1)[0], { cpu: step % 4 });
      } else {
        const pages = 1 + Math.floor(rand.next() ** 3 * 2000);
        const h =
          r > 0.95
            ? m.kernel.vmalloc_huge(pages * PAGE_SIZE, GFP_KERNEL, { cpu: step % 4 })
            : m.kernel.vmalloc(pages * PAGE_SIZE, GFP_KERNEL, { cpu: step % 4 });
        if (h !== NULL) live.push(h);
      }
      if (step % 50 === 0) consistent(m);
    }
    consistent(m);
    for (const h of live) m.kernel.vfree(h);
    expect(m.mm.vmalloc.nr_vmalloc_pages).toBe(0);
    consistent(m);
  });
});
