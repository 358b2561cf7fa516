/**
 * /proc/slabinfo: the format of Linux 6.18's (mm/slab_common.c cache_show(): "slabinfo - version:
 * 2.1", the column header, `%-17s %6lu %6lu %6u %4u %4d : tunables %4u %4u %4u : slabdata %6lu
 * %6lu %6lu`), compared with the values masked against the real file of our 2-CPU 6.18 machines
 * (the lines of the caches the model has, in the kernel's order); root only (0400); and our own
 * output recorded in test/golden/slabinfo.txt (UPDATE_GOLDEN=1 rewrites it).
 */
import { describe, expect, it } from 'vitest';
import type { ErrnoError } from '../../src/lib/errno.ts';
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import { cleanMachine } from '../helpers.ts';
import { formatDiff } from './format.ts';
import { expectGolden } from './golden.ts';

/** The real /proc/slabinfo of a 24 GiB 2-CPU Firecracker VM (6.18.44), cut to the model's caches. */
const REAL = `${[
  'slabinfo - version: 2.1',
  '# name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>',
  'ext4_inode_cache    3026   3080   1128   14    4 : tunables    0    0    0 : slabdata    220    220      0',
  'sock_inode_cache     152    152    832   19    4 : tunables    0    0    0 : slabdata      8      8      0',
  'skbuff_head_cache    380    400    256   16    1 : tunables    0    0    0 : slabdata     25     25      0',
  'buffer_head         2390   2847    104   39    1 : tunables    0    0    0 : slabdata     73     73      0',
  'proc_inode_cache     644    644    696   23    4 : tunables    0    0    0 : slabdata     28     28      0',
  'shmem_inode_cache    189    189    752   21    4 : tunables    0    0    0 : slabdata      9      9      0',
  'kernfs_node_cache  17079  17400    136   30    1 : tunables    0    0    0 : slabdata    580    580      0',
  'mnt_cache             63     63    384   21    2 : tunables    0    0    0 : slabdata      3      3      0',
  'filp                 672    672    192   21    1 : tunables    0    0    0 : slabdata     32     32      0',
  'inode_cache          468    468    624   13    2 : tunables    0    0    0 : slabdata     36     36      0',
  'dentry              8820   8820    192   21    1 : tunables    0    0    0 : slabdata    420    420      0',
  'names_cache           24     24   4096    8    8 : tunables    0    0    0 : slabdata      3      3      0',
  'lsm_inode_cache     4969   5248     32  128    1 : tunables    0    0    0 : slabdata     41     41      0',
  'vm_area_struct      2426   2520    192   21    1 : tunables    0    0    0 : slabdata    120    120      0',
  'files_cache           46     46    704   23    4 : tunables    0    0    0 : slabdata      2      2      0',
  'signal_cache         113    140   1152   14    4 : tunables    0    0    0 : slabdata     10     10      0',
  'sighand_cache        135    135   2112   15    8 : tunables    0    0    0 : slabdata      9      9      0',
  'task_struct          155    155   5888    5    8 : tunables    0    0    0 : slabdata     31     31      0',
  'anon_vma_chain      1856   1856     64   64    1 : tunables    0    0    0 : slabdata     29     29      0',
  'anon_vma            1599   1599    104   39    1 : tunables    0    0    0 : slabdata     41     41      0',
  'pid                  378    378    192   21    1 : tunables    0    0    0 : slabdata     18     18      0',
  'radix_tree_node     2735   2786    584   14    2 : tunables    0    0    0 : slabdata    199    199      0',
  'maple_node           760   1008    256   16    1 : tunables    0    0    0 : slabdata     63     63      0',
  'mm_struct             60     60   1600   20    8 : tunables    0    0    0 : slabdata      3      3      0',
  'vmap_area           6371   6384     72   56    1 : tunables    0    0    0 : slabdata    114    114      0',
  'kmalloc-cg-8k          8      8   8192    4    8 : tunables    0    0    0 : slabdata      2      2      0',
  'kmalloc-cg-4k         80     80   4096    8    8 : tunables    0    0    0 : slabdata     10     10      0',
  'kmalloc-cg-2k        172    256   2048   16    8 : tunables    0    0    0 : slabdata     16     16      0',
  'kmalloc-cg-1k        111    144   1024   16    4 : tunables    0    0    0 : slabdata      9      9      0',
  'kmalloc-cg-512        89    160    512   16    2 : tunables    0    0    0 : slabdata     10     10      0',
  'kmalloc-cg-256        80     80    256   16    1 : tunables    0    0    0 : slabdata      5      5      0',
  'kmalloc-cg-128        96     96    128   32    1 : tunables    0    0    0 : slabdata      3      3      0',
  'kmalloc-cg-64        128    128     64   64    1 : tunables    0    0    0 : slabdata      2      2      0',
  'kmalloc-cg-32        256    256     32  128    1 : tunables    0    0    0 : slabdata      2      2      0',
  'kmalloc-cg-16        512    512     16  256    1 : tunables    0    0    0 : slabdata      2      2      0',
  'kmalloc-cg-8        1024   1024      8  512    1 : tunables    0    0    0 : slabdata      2      2      0',
  'kmalloc-cg-192       336    336    192   21    1 : tunables    0    0    0 : slabdata     16     16      0',
  'kmalloc-cg-96         84     84     96   42    1 : tunables    0    0    0 : slabdata      2      2      0',
  'dma-kmalloc-8k         0      0   8192    4    8 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-4k         0      0   4096    8    8 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-2k         0      0   2048   16    8 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-1k         0      0   1024   16    4 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-512        0      0    512   16    2 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-256        0      0    256   16    1 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-128        0      0    128   32    1 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-64         0      0     64   64    1 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-32         0      0     32  128    1 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-16         0      0     16  256    1 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-8          0      0      8  512    1 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-192        0      0    192   21    1 : tunables    0    0    0 : slabdata      0      0      0',
  'dma-kmalloc-96         0      0     96   42    1 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-8k         0      0   8192    4    8 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-4k         0      0   4096    8    8 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-2k         0      0   2048   16    8 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-1k         0      0   1024   16    4 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-512        0      0    512   16    2 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-256        0      0    256   16    1 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-128      448    448    128   32    1 : tunables    0    0    0 : slabdata     14     14      0',
  'kmalloc-rcl-64         0      0     64   64    1 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-32         0      0     32  128    1 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-16         0      0     16  256    1 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-8          0      0      8  512    1 : tunables    0    0    0 : slabdata      0      0      0',
  'kmalloc-rcl-192      252    252    192   21    1 : tunables    0    0    0 : slabdata     12     12      0',
  'kmalloc-rcl-96      1088   1092     96   42    1 : tunables    0    0    0 : slabdata     26     26      0',
  'kmalloc-8k            36     36   8192    4    8 : tunables    0    0    0 : slabdata      9      9      0',
  'kmalloc-4k           243    328   4096    8    8 : tunables    0    0    0 : slabdata     41     41      0',
  'kmalloc-2k           272    272   2048   16    8 : tunables    0    0    0 : slabdata     17     17      0',
  'kmalloc-1k           719    752   1024   16    4 : tunables    0    0    0 : slabdata     47     47      0',
  'kmalloc-512          727   1440    512   16    2 : tunables    0    0    0 : slabdata     90     90      0',
  'kmalloc-256          848    848    256   16    1 : tunables    0    0    0 : slabdata     53     53      0',
  'kmalloc-128         1207   2496    128   32    1 : tunables    0    0    0 : slabdata     78     78      0',
  'kmalloc-64          1573   2048     64   64    1 : tunables    0    0    0 : slabdata     32     32      0',
  'kmalloc-32          1187   3712     32  128    1 : tunables    0    0    0 : slabdata     29     29      0',
  'kmalloc-16          2048   2048     16  256    1 : tunables    0    0    0 : slabdata      8      8      0',
  'kmalloc-8           2046   2048      8  512    1 : tunables    0    0    0 : slabdata      4      4      0',
  'kmalloc-192         1343   1932    192   21    1 : tunables    0    0    0 : slabdata     92     92      0',
  'kmalloc-96          3447   3486     96   42    1 : tunables    0    0    0 : slabdata     83     83      0',
  'kmem_cache_node      256    256    128   32    1 : tunables    0    0    0 : slabdata      8      8      0',
  'kmem_cache           256    256    256   16    1 : tunables    0    0    0 : slabdata     16     16      0',
].join('\n')}\n`;

describe('/proc/slabinfo', () => {
  const m = Machine.boot({ memory: '24G', cpus: 2, kernel: { CMA: false }, seed: 1 });
  const ours = m.readFile('/proc/slabinfo');

  it('has the real header, and every cache line has the real format, in the real order', () => {
    expect(ours.split('\n').slice(0, 2)).toEqual(REAL.split('\n').slice(0, 2));
    expect(formatDiff(REAL, ours)).toEqual([]);
  });

  it('lists every cache, newest first, with its geometry', () => {
    const names = ours
      .split('\n')
      .slice(2, -1)
      .map((l) => l.split(' ')[0]);
    expect(names).toEqual(m.mm.slab.slab_caches.map((s) => s.name).reverse());
    expect(ours).toMatch(
      /\ndentry +\d+ +\d+ +192 +21 +1 : tunables {4}0 {4}0 {4}0 : slabdata +\d+ +\d+ +0\n/,
    );
  });

  it('counts objects free in cpu and cpu-partial slabs as active, as SLUB does', () => {
    const c = cleanMachine();
    const h = c.kernel.kmalloc(500, GFP_KERNEL);
    c.kernel.kfree(h);
    const line = c
      .readFile('/proc/slabinfo')
      .split('\n')
      .find((l) => l.startsWith('kmalloc-512 '));
    expect(line).toBe(
      'kmalloc-512           16     16    512   16    2 : tunables    0    0    0 : slabdata      1      1      0',
    );
  });

  it('is readable by root only', () => {
    let code: string | undefined;
    try {
      m.readFile('/proc/slabinfo', { uid: 1000, gid: 1000 });
    } catch (e) {
      code = (e as ErrnoError).code;
    }
    expect(code).toBe('EACCES');
  });

  it('matches the golden file', () => {
    expectGolden('slabinfo', ours);
  });
});
