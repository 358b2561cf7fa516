/**
 * Shrinkers (mm/shrinker.c do_shrink_slab, shrink_slab), the dentry and inode caches' LRUs and
 * their super block shrinker, and /proc/sys/vm/drop_caches (fs/drop_caches.c): the scan
 * arithmetic, the batching and deferral, the second chance of referenced objects, the dentry ->
 * inode pinning, and slab pages going back to the buddy allocator when their objects are freed.
 */
import { describe, expect, it } from 'vitest';
import type { ErrnoError } from '../../src/lib/errno.ts';
import { GFP_KERNEL, GFP_NOFS } from '../../src/mm/gfp.ts';
import {
  DEF_PRIORITY,
  lru_check,
  SHRINK_EMPTY,
  SHRINK_STOP,
  type ShrinkControl,
  shrink_slab,
  vfs_object_state,
} from '../../src/mm/shrinker.ts';
import { slab_check } from '../../src/mm/slab.ts';
import { node_stat_index, vm_event_index } from '../../src/mm/vmstat_items.ts';
import { Machine } from '../../src/sim/machine.ts';
import { cleanMachine, violations } from '../helpers.ts';

const SLABS_SCANNED = vm_event_index('slabs_scanned');
const RECLAIMABLE = node_stat_index('nr_slab_reclaimable');

/** A shrinker over `freeable` imaginary objects that records each scan. */
function fakeShrinker(m: Machine, freeable: { n: number }, opts: { seeks?: number; batch?: number } = {}) {
  const scans: number[] = [];
  const shrinker = m.kernel.register_shrinker(
    'fake',
    () => (freeable.n === 0 ? SHRINK_EMPTY : freeable.n),
    (sc: ShrinkControl) => {
      scans.push(sc.nr_to_scan);
      const freed = Math.min(sc.nr_to_scan, freeable.n);
      freeable.n -= freed;
      return freed;
    },
    opts,
  );
  return { shrinker, scans };
}

describe('do_shrink_slab arithmetic', () => {
  it('defers work too small for a batch and scans it once priority drops', () => {
    const m = cleanMachine();
    const freeable = { n: 4096 };
    const { shrinker, scans } = fakeShrinker(m, freeable);
    // DEF_PRIORITY: delta = (4096 >> 12) * 4 / 2 = 2 < SHRINK_BATCH and < freeable: deferred.
    expect(m.kernel.shrink_slab(GFP_KERNEL, 0, DEF_PRIORITY)).toBe(0);
    expect(scans).toEqual([]);
    expect(shrinker.nr_deferred[0]).toBe(2);
    // Priority 6: delta = 64 * 4 / 2 = 128, plus (2 >> 6) = 0 deferred: one batch of 128.
    expect(m.kernel.shrink_slab(GFP_KERNEL, 0, 6)).toBe(128);
    expect(scans).toEqual([128]);
    expect(shrinker.nr_deferred[0]).toBe(2); // 2 + 128 - 128
    expect(m.mm.vm_events[SLABS_SCANNED]).toBe(128);
  });

  it('scans at most twice the freeable objects, in batches, at priority 0', () => {
    const m = cleanMachine();
    const freeable = { n: 300 };
    const { scans } = fakeShrinker(m, freeable);
    // delta = 300 * 4 / 2 = 600 = 2 * freeable: batches of 128 while total_scan >= 128 or >= the
    // freeable count taken at the start; the 88 left over are neither.
    m.kernel.shrink_slab(GFP_KERNEL, 0, 0);
    expect(scans).toEqual([128, 128, 128, 128]);
    expect(m.mm.vm_events[SLABS_SCANNED]).toBe(512);
  });

  it('scans a small cache whole when total_scan reaches freeable', () => {
    const m = cleanMachine();
    const { scans } = fakeShrinker(m, { n: 10 });
    m.kernel.shrink_slab(GFP_KERNEL, 0, 0); // total_scan = min(20, 20) = 20 >= 10
    expect(scans).toEqual([20]);
  });

  it('trims half with seeks = 0 and honours a shrinker’s batch', () => {
    const m = cleanMachine();
    const { scans } = fakeShrinker(m, { n: 5000 }, { seeks: 0, batch: 1000 });
    m.kernel.shrink_slab(GFP_KERNEL, 0, DEF_PRIORITY); // delta = 5000 / 2 = 2500
    expect(scans).toEqual([1000, 1000]);
  });

  it('stops at SHRINK_STOP and ignores SHRINK_EMPTY', () => {
    const m = cleanMachine();
    let calls = 0;
    m.kernel.register_shrinker(
      'stopper',
      () => 1000,
      () => {
        calls++;
        return SHRINK_STOP;
      },
    );
    fakeShrinker(m, { n: 0 });
    expect(shrink_slab(m.mm, GFP_KERNEL, 0, 0)).toBe(0);
    expect(calls).toBe(1);
  });

  it('unregisters', () => {
    const m = cleanMachine();
    const { shrinker, scans } = fakeShrinker(m, { n: 1000 });
    m.kernel.unregister_shrinker(shrinker);
    m.kernel.shrink_slab(GFP_KERNEL, 0, 0);
    expect(scans).toEqual([]);
  });
});

describe('the dentry and inode caches', () => {
  it('keeps a dentry on the LRU after its last dput and frees it under pressure, then its inode', () => {
    const m = cleanMachine();
    const k = m.kernel;
    const sb = k.sb;
    const d = k.d_alloc(GFP_KERNEL);
    const i = k.new_inode(GFP_KERNEL);
    k.d_instantiate(d, i);
    k.dput(d);
    expect(vfs_object_state(sb, sb.dentry_cache, d)).toEqual({
      ref: 0,
      on_lru: true,
      referenced: false,
      doomed: false,
    });
    expect(sb.nr_unused_dentries).toBe(1);
    expect(sb.nr_unused_inodes).toBe(0); // pinned by the dentry
    // Pruning the dcache frees the dentry, whose iput puts the inode on its LRU; the icache pass
    // that follows in the same scan frees the inode.
    expect(k.shrink_slab(GFP_KERNEL, 0, 0)).toBe(2);
    expect([sb.nr_dentry, sb.nr_inodes, sb.nr_unused_inodes]).toEqual([0, 0, 0]);
    expect(slab_check(m.mm)).toEqual([]);
    expect(lru_check(m.mm)).toEqual([]);
  });

  it('gives referenced dentries a second chance and drops in-use ones from the LRU', () => {
    const m = cleanMachine();
    const k = m.kernel;
    const sb = k.sb;
    const a = k.d_alloc(GFP_KERNEL);
    const b = k.d_alloc(GFP_KERNEL);
    const c = k.d_alloc(GFP_KERNEL);
    for (const d of [a, b, c]) k.dput(d);
    k.dget(b); // a lookup hit: in use again, still on the LRU (lazy LRU)
    k.dget(c);
    k.dput(c); // put again while on the LRU: referenced
    expect(vfs_object_state(sb, sb.dentry_cache, c).referenced).toBe(true);
    // GFP_NOFS: the super block shrinker refuses (SHRINK_STOP).
    expect(k.shrink_slab(GFP_NOFS, 0, 0)).toBe(0);
    expect(sb.nr_unused_dentries).toBe(3);
    // One walk over [a, b, c]: a freed, b (in use) taken off the LRU and counted as freed, c loses
    // its referenced bit and stays; the next walk frees it.
    expect(k.shrink_slab(GFP_KERNEL, 0, 0)).toBe(2);
    expect(sb.nr_dentry).toBe(2);
    expect(vfs_object_state(sb, sb.dentry_cache, b)).toEqual({
      ref: 1,
      on_lru: false,
      referenced: false,
      doomed: false,
    });
    expect(vfs_object_state(sb, sb.dentry_cache, c)).toEqual({
      ref: 0,
      on_lru: true,
      referenced: false,
      doomed: false,
    });
    expect(k.shrink_slab(GFP_KERNEL, 0, 0)).toBe(1);
    expect(sb.nr_dentry).toBe(1);
    expect(lru_check(m.mm)).toEqual([]);
  });

  it('frees an unhashed dentry at its last dput, and a deleted inode at its last iput', () => {
    const m = cleanMachine();
    const k = m.kernel;
    const sb = k.sb;
    const d = k.d_alloc(GFP_KERNEL);
    const i = k.new_inode(GFP_KERNEL);
    k.ihold(i);
    k.d_instantiate(d, i);
    k.d_drop(d);
    k.dput(d);
    expect([sb.nr_dentry, sb.nr_unused_dentries]).toEqual([0, 0]);
    expect(vfs_object_state(sb, sb.inode_cache, i).ref).toBe(1);
    k.iput(i);
    expect(sb.nr_unused_inodes).toBe(1);
    expect(() => k.iput(i)).toThrow(/no references/);
    expect(() => k.dput(d)).toThrow(/double free or free of an unallocated object/);
    expect(slab_check(m.mm)).toEqual([]);
  });

  it('returns the slab pages once every dentry of a slab is freed', () => {
    const m = cleanMachine();
    const k = m.kernel;
    const dentries: number[] = [];
    for (let n = 0; n < 21 * 40; n++) dentries.push(k.d_alloc(GFP_KERNEL, { cpu: n % 2 }));
    for (const d of dentries) k.dput(d, { cpu: 1 });
    const before = m.mm.nodes[0].vm_stat[RECLAIMABLE];
    expect(before).toBe(40);
    const reclaimed = m.mm.slab.reclaimed_pages;
    expect(k.shrink_slab(GFP_KERNEL, 0, 0)).toBe(840);
    // All objects are free. SLUB still holds the two cpu slabs, the freeing CPU's partial list (up
    // to cpu_partial_slabs = 12) and min_partial (5) empty slabs on the node.
    const after = m.mm.nodes[0].vm_stat[RECLAIMABLE];
    expect(after).toBeLessThanOrEqual(2 + 12 + 5);
    expect(m.mm.slab.reclaimed_pages - reclaimed).toBe(before - after);
    k.kmem_cache_shrink(k.sb.dentry_cache);
    expect(m.mm.nodes[0].vm_stat[RECLAIMABLE]).toBe(0);
    expect(slab_check(m.mm)).toEqual([]);
    expect(violations(m)).toEqual([]);
  });
});

describe('/proc/sys/vm/drop_caches', () => {
  const errnoOf = (f: () => unknown): string | undefined => {
    try {
      f();
    } catch (e) {
      return (e as ErrnoError).code;
    }
    return undefined;
  };

  it('2 frees the unused dentries and inodes of a booted machine and counts drop_slab', () => {
    const m = Machine.boot({ memory: '1G', cpus: 2 });
    const sb = m.kernel.sb;
    const unused = sb.nr_unused_dentries;
    expect(unused).toBeGreaterThan(1000);
    const before = m.mm.nodes[0].vm_stat[RECLAIMABLE];
    m.writeFile('/proc/sys/vm/drop_caches', '2');
    expect(sb.nr_unused_dentries).toBe(0);
    expect(sb.nr_unused_inodes).toBe(0);
    expect(m.mm.nodes[0].vm_stat[RECLAIMABLE]).toBeLessThan(before);
    const vmstat = m.readFile('/proc/vmstat');
    expect(vmstat).toMatch(/\ndrop_slab 1\n/);
    expect(vmstat).toMatch(/\ndrop_pagecache 0\n/);
    expect(Number(/\nslabs_scanned (\d+)\n/.exec(vmstat)![1])).toBeGreaterThanOrEqual(unused);
    expect(m.mm.klog.at(-1)).toBe('sh (1): drop_caches: 2');
    expect(slab_check(m.mm)).toEqual([]);
    expect(lru_check(m.mm)).toEqual([]);
    expect(violations(m)).toEqual([]);
  });

  it('1 only counts drop_pagecache (no page cache yet); 4 silences the log from then on', () => {
    const m = cleanMachine();
    m.writeFile('/proc/sys/vm/drop_caches', '1');
    expect(m.readFile('/proc/vmstat')).toMatch(/\ndrop_pagecache 1\n/);
    m.writeFile('/proc/sys/vm/drop_caches', '4');
    const lines = m.mm.klog.length;
    m.writeFile('/proc/sys/vm/drop_caches', '3');
    expect(m.mm.klog.length).toBe(lines);
    expect(m.readFile('/proc/vmstat')).toMatch(/\ndrop_pagecache 2\ndrop_slab 1\n/);
  });

  it('is write-only (0200) and takes 1..4', () => {
    const m = cleanMachine();
    const path = '/proc/sys/vm/drop_caches';
    expect(errnoOf(() => m.readFile(path))).toBe('EACCES');
    expect(errnoOf(() => m.writeFile(path, '2', { uid: 1000, gid: 1000 }))).toBe('EACCES');
    for (const bad of ['0', '5', '-1', 'abc', '2x'])
      expect(
        errnoOf(() => m.writeFile(path, bad)),
        bad,
      ).toBe('EINVAL');
    expect(m.listFiles('/proc/sys/vm')).toContain(path);
  });
});
