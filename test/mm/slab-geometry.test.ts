/**
 * Cache geometry as SLUB computes it (mm/slub.c calculate_sizes, calculate_order,
 * calc_slab_order, set_min_partial, set_cpu_partial; mm/slab_common.c calculate_alignment and
 * the kmalloc size classes), checked against a real 6.18 kernel: the table is
 * /sys/kernel/slab/<cache>/{object_size,slab_size,align,order,objs_per_slab,min_partial,
 * cpu_partial} of our 2-CPU machines.
 */
import { describe, expect, it } from 'vitest';
import { __GFP_ACCOUNT, __GFP_DMA, __GFP_RECLAIMABLE, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { calc_slab_order, calculate_order } from '../../src/mm/slab.ts';
import {
  KMALLOC_CGROUP,
  KMALLOC_DMA,
  KMALLOC_NORMAL,
  KMALLOC_RECLAIM,
  kmalloc_index,
  kmalloc_name,
  kmalloc_size,
  kmalloc_slab,
  kmalloc_type,
} from '../../src/mm/slab_common.ts';
import { cleanMachine } from '../helpers.ts';

// name, object_size, slab_size, align, order, objs_per_slab, min_partial, cpu_partial
const REAL_2CPU: ReadonlyArray<readonly [string, number, number, number, number, number, number, number]> = [
  ['kmem_cache', 232, 256, 64, 0, 16, 5, 52],
  ['kmem_cache_node', 72, 128, 64, 0, 32, 5, 120],
  ['kmalloc-8', 8, 8, 8, 0, 512, 5, 120],
  ['kmalloc-16', 16, 16, 16, 0, 256, 5, 120],
  ['kmalloc-32', 32, 32, 32, 0, 128, 5, 120],
  ['kmalloc-64', 64, 64, 64, 0, 64, 5, 120],
  ['kmalloc-96', 96, 96, 32, 0, 42, 5, 120],
  ['kmalloc-128', 128, 128, 128, 0, 32, 5, 120],
  ['kmalloc-192', 192, 192, 64, 0, 21, 5, 120],
  ['kmalloc-256', 256, 256, 256, 0, 16, 5, 52],
  ['kmalloc-512', 512, 512, 512, 1, 16, 5, 52],
  ['kmalloc-1k', 1024, 1024, 1024, 2, 16, 5, 24],
  ['kmalloc-2k', 2048, 2048, 2048, 3, 16, 5, 24],
  ['kmalloc-4k', 4096, 4096, 4096, 3, 8, 6, 6],
  ['kmalloc-8k', 8192, 8192, 8192, 3, 4, 6, 6],
  ['vmap_area', 72, 72, 8, 0, 56, 5, 120],
  ['mm_struct', 1568, 1600, 64, 3, 20, 5, 24],
  ['maple_node', 256, 256, 256, 0, 16, 5, 52],
  ['radix_tree_node', 576, 584, 8, 1, 14, 5, 52],
  ['pid', 184, 192, 64, 0, 21, 5, 120],
  ['anon_vma', 96, 104, 8, 0, 39, 5, 120],
  ['anon_vma_chain', 64, 64, 8, 0, 64, 5, 120],
  ['task_struct', 5888, 5888, 64, 3, 5, 6, 6],
  ['sighand_cache', 2080, 2112, 64, 3, 15, 5, 24],
  ['signal_cache', 1152, 1152, 64, 2, 14, 5, 24],
  ['files_cache', 704, 704, 64, 2, 23, 5, 52],
  ['vm_area_struct', 192, 192, 64, 0, 21, 5, 120],
  ['lsm_inode_cache', 32, 32, 8, 0, 128, 5, 120],
  ['names_cache', 4096, 4096, 64, 3, 8, 6, 6],
  ['dentry', 192, 192, 8, 0, 21, 5, 120],
  ['inode_cache', 616, 624, 8, 1, 13, 5, 52],
  ['filp', 184, 192, 64, 0, 21, 5, 120],
  ['mnt_cache', 384, 384, 64, 1, 21, 5, 52],
  ['kernfs_node_cache', 136, 136, 8, 0, 30, 5, 120],
  ['shmem_inode_cache', 744, 752, 8, 2, 21, 5, 52],
  ['proc_inode_cache', 688, 696, 8, 2, 23, 5, 52],
  ['buffer_head', 104, 104, 8, 0, 39, 5, 120],
  ['skbuff_head_cache', 224, 256, 64, 0, 16, 5, 52],
  ['sock_inode_cache', 768, 832, 64, 2, 19, 5, 52],
  ['ext4_inode_cache', 1120, 1128, 8, 2, 14, 5, 24],
];

describe('the boot caches of a 2-CPU machine match the real 6.18 kernel', () => {
  const m = cleanMachine({ cpus: 2 });
  it.each(REAL_2CPU)('%s', (name, object_size, size, align, order, objs, min_partial, cpu_partial) => {
    const s = m.kernel.kmem_cache(name)!;
    expect(s, name).toBeDefined();
    expect([s.object_size, s.size, s.align, s.oo_order, s.oo_objects, s.min_partial, s.cpu_partial]).toEqual([
      object_size,
      size,
      align,
      order,
      objs,
      min_partial,
      cpu_partial,
    ]);
  });

  it('every cache also has a minimum order that fits one object (s->min)', () => {
    const s = m.kernel.kmem_cache('task_struct')!;
    expect([s.min_order, s.min_objects]).toEqual([1, 1]); // get_order(5888) = 1
    expect(m.kernel.kmem_cache('kmalloc-2k')!.min_order).toBe(0);
  });
});

describe('calculate_order', () => {
  it('needs 4 * (fls(nr_cpus) + 1) objects per slab where order 3 allows', () => {
    // 2 CPUs: 12 objects; 8 CPUs: 20; 64 CPUs: 32 (fls(64) = 7).
    expect(calculate_order(512, 2)).toBe(1); // 16 per order-1 slab
    expect(calculate_order(256, 8)).toBe(1); // 20 * 256 = 5120 bytes
    expect(calculate_order(1024, 8)).toBe(3);
    expect(calculate_order(192, 64)).toBe(1); // 32 * 192 = 6144: kmalloc-192 "42 2" on big machines
    expect(calculate_order(192, 8)).toBe(0); // 21 >= 20
  });

  it('never goes above PAGE_ALLOC_COSTLY_ORDER while one object fits, and uses get_order() beyond', () => {
    expect(calculate_order(8192, 1024)).toBe(3);
    expect(calculate_order(40000, 2)).toBe(4); // 32 KiB cannot hold one: get_order(40000)
    expect(calculate_order(5 << 20, 2)).toBe(-1); // above MAX_PAGE_ORDER: -ENOSYS
  });

  it('accepts 1/16 waste first, then more: calc_slab_order()', () => {
    // 700 bytes: order 0 wastes 596/4096 (> 1/16 = 256), order 1 wastes 492/8192 (<= 512).
    expect(calc_slab_order(700, 0, 3, 16)).toBe(1);
    expect(calc_slab_order(700, 0, 3, 4)).toBe(0);
    // Nothing fits within 1/16 up to order 3: the caller tries 1/8 next.
    expect(calc_slab_order(3000, 3, 3, 16)).toBe(4);
  });

  it('shrinks min_objects to what order 3 can hold (task_struct: 5 per slab)', () => {
    expect(calculate_order(5888, 2)).toBe(3);
  });
});

describe('kmalloc size classes', () => {
  it('maps request sizes to the kmalloc caches', () => {
    const cases: Array<[number, string]> = [
      [1, 'kmalloc-8'],
      [8, 'kmalloc-8'],
      [9, 'kmalloc-16'],
      [17, 'kmalloc-32'],
      [33, 'kmalloc-64'],
      [65, 'kmalloc-96'],
      [96, 'kmalloc-96'],
      [97, 'kmalloc-128'],
      [129, 'kmalloc-192'],
      [192, 'kmalloc-192'],
      [193, 'kmalloc-256'],
      [257, 'kmalloc-512'],
      [1000, 'kmalloc-1k'],
      [1025, 'kmalloc-2k'],
      [4096, 'kmalloc-4k'],
      [4097, 'kmalloc-8k'],
      [8192, 'kmalloc-8k'],
    ];
    for (const [size, name] of cases)
      expect(kmalloc_name(KMALLOC_NORMAL, kmalloc_index(size)), String(size)).toBe(name);
    expect(kmalloc_size(1)).toBe(96);
    expect(kmalloc_size(2)).toBe(192);
  });

  it('picks the type from the GFP flags: DMA, then reclaimable, then accounted', () => {
    expect(kmalloc_type(GFP_KERNEL)).toBe(KMALLOC_NORMAL);
    expect(kmalloc_type(GFP_KERNEL | __GFP_RECLAIMABLE)).toBe(KMALLOC_RECLAIM);
    expect(kmalloc_type(GFP_KERNEL | __GFP_ACCOUNT)).toBe(KMALLOC_CGROUP);
    expect(kmalloc_type(__GFP_DMA | __GFP_RECLAIMABLE | __GFP_ACCOUNT)).toBe(KMALLOC_DMA);
    expect(kmalloc_type(__GFP_RECLAIMABLE | __GFP_ACCOUNT)).toBe(KMALLOC_RECLAIM);
    const m = cleanMachine();
    expect(kmalloc_slab(m.mm, 100, GFP_KERNEL | __GFP_RECLAIMABLE).name).toBe('kmalloc-rcl-128');
    expect(kmalloc_slab(m.mm, 3000, __GFP_DMA).name).toBe('dma-kmalloc-4k');
    expect(kmalloc_slab(m.mm, 24, GFP_KERNEL | __GFP_ACCOUNT).name).toBe('kmalloc-cg-32');
  });

  it('names the large classes in KiB', () => {
    expect(kmalloc_name(KMALLOC_RECLAIM, 13)).toBe('kmalloc-rcl-8k');
    expect(kmalloc_name(KMALLOC_DMA, 10)).toBe('dma-kmalloc-1k');
  });
});
