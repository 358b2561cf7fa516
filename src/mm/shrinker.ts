/**
 * Shrinkers and the caches they shrink: mm/shrinker.c (shrinker_alloc/register/free,
 * do_shrink_slab, shrink_slab), mm/vmscan.c drop_slab(), fs/drop_caches.c, mm/list_lru.c, and
 * the dentry and inode caches of a super block with their LRUs of unused objects (fs/dcache.c,
 * fs/inode.c, fs/super.c super_cache_count/super_cache_scan).
 *
 * Reclaim (kswapd, direct reclaim) calls shrink_slab(gfp, nid, priority) once per node per
 * pass; it walks every registered shrinker: count_objects() says how many objects could be
 * freed, and the scan target is
 *
 *   delta      = (freeable >> priority) * 4 / seeks        (freeable / 2 if seeks is 0)
 *   total_scan = min((nr_deferred >> priority) + delta, 2 * freeable)
 *
 * scanned in batches of `batch` (SHRINK_BATCH = 128 by default; the super block shrinker uses
 * 1024) while total_scan >= batch or total_scan >= freeable; work not done is deferred to the
 * next call (nr_deferred += nr + delta - scanned, at most 2 * freeable). Each batch adds its
 * nr_scanned to the slabs_scanned vm event. With 4096 unused dentries and DEFAULT_SEEKS (2), a
 * DEF_PRIORITY (12) pass scans (4096 >> 12) * 4 / 2 = 2 objects — too few for a batch, so they
 * are deferred — while priority 0 (drop_caches) scans up to 8192.
 *
 * A super block's dentries and inodes are slab objects (the `dentry` cache and the file
 * system's inode cache). A dentry is in use while its count is positive; when the last reference
 * goes (dput) it stays cached on its super block's LRU, unused, unless it was unhashed (d_drop),
 * in which case it is freed at once. A dentry pins its inode; freeing the dentry puts the inode
 * (iput), and an unused inode goes on the inode LRU. The shrinker prunes dentries first, then
 * inodes, each with a second chance for recently used objects (DCACHE_REFERENCED,
 * I_REFERENCED). Freed objects return to their slabs; a slab that empties goes back to the
 * buddy allocator under SLUB's rules (slab.ts), which is what turns reclaim into free pages.
 *
 * Simplified: no memcg (every object belongs to the root memcg: shrink_slab walks the global
 * list, list_lru counts per node); no dentry tree (a dentry's parent is not pinned); inodes have
 * no page cache, so every unused inode is shrinkable; vfs_cache_pressure is the default 100;
 * RCU-delayed frees are immediate.
 */
import { __GFP_FS, GFP_KERNEL } from './gfp.ts';
import type { MM } from './mm.ts';
import { type KmemCache, kmem_cache_free, NULL, NUMA_NO_NODE, object_of, slab_alloc_oid } from './slab.ts';
import { kmem_cache_by_name } from './slab_common.ts';
import { drop_pagecache } from './truncate.ts';
import { vm_event_index } from './vmstat_items.ts';

/** scan_objects() found nothing it can do now (kernel: SHRINK_STOP, ~0UL). */
export const SHRINK_STOP = -1;
/** count_objects() has no objects at all (kernel: SHRINK_EMPTY, ~0UL - 1). */
export const SHRINK_EMPTY = -2;
/** DEFAULT_SEEKS: the cost of recreating an object, relative to a page (2). */
export const DEFAULT_SEEKS = 2;
/** SHRINK_BATCH: objects scanned per scan_objects() call unless the shrinker sets `batch`. */
export const SHRINK_BATCH = 128;
/** The lowest reclaim priority; each step down doubles the scan (DEF_PRIORITY). */
export const DEF_PRIORITY = 12;
/** The shrinker keeps nr_deferred per node and is called with the node. */
export const SHRINKER_NUMA_AWARE = 1 << 2;
/** The shrinker counts per memcg (accepted, not modelled). */
export const SHRINKER_MEMCG_AWARE = 1 << 1;
/** sysctl_vfs_cache_pressure (default 100). */
const VFS_CACHE_PRESSURE = 100;

const SLABS_SCANNED = vm_event_index('slabs_scanned');
const DROP_PAGECACHE = vm_event_index('drop_pagecache');
const DROP_SLAB = vm_event_index('drop_slab');

/** struct shrink_control: passed to count_objects() and scan_objects(). */
export interface ShrinkControl {
  gfp_mask: number;
  /** The node to shrink (0 for shrinkers that are not SHRINKER_NUMA_AWARE). */
  nid: number;
  /** Objects to scan; scan_objects() may count it down. */
  nr_to_scan: number;
  /** Objects scanned: preset to nr_to_scan; a shrinker may lower it. */
  nr_scanned: number;
}

/** struct shrinker */
export class Shrinker {
  /** Cost of recreating an object (DEFAULT_SEEKS); 0 trims half the freeable objects per call. */
  seeks = DEFAULT_SEEKS;
  /** Objects per scan_objects() call (0: SHRINK_BATCH). */
  batch = 0;
  /** Scan work deferred to later calls, per node (node 0 only if not NUMA aware). */
  readonly nr_deferred: Float64Array;
  registered = false;

  constructor(
    readonly flags: number,
    readonly name: string,
    nr_nodes: number,
  ) {
    this.nr_deferred = new Float64Array(nr_nodes);
  }

  /**
   * count_objects(): freeable objects, 0, or SHRINK_EMPTY. A shrinker is a subclass overriding
   * this and scan_objects() (methods, not closures: see workqueue.ts on cloning).
   */
  count_objects(_sc: ShrinkControl): number {
    return 0;
  }

  /** scan_objects(): objects freed, or SHRINK_STOP. */
  scan_objects(_sc: ShrinkControl): number {
    return SHRINK_STOP;
  }
}

/** kernel: mm/shrinker.c shrinker_alloc(): a shrinker to fill in, then register. */
export function shrinker_alloc(mm: MM, flags: number, name: string): Shrinker {
  return new Shrinker(flags, name, mm.nodes.length);
}

/** kernel: mm/shrinker.c shrinker_register(): add to the tail of shrinker_list. */
export function shrinker_register(mm: MM, shrinker: Shrinker): void {
  if (shrinker.registered) throw new Error(`shrinker ${shrinker.name} is already registered`);
  shrinker.registered = true;
  mm.slab.shrinker_list.push(shrinker);
}

/** kernel: mm/shrinker.c shrinker_free(): unregister. */
export function shrinker_free(mm: MM, shrinker: Shrinker): void {
  const list = mm.slab.shrinker_list;
  const i = list.indexOf(shrinker);
  if (i >= 0) list.splice(i, 1);
  shrinker.registered = false;
}

/**
 * kernel: mm/shrinker.c do_shrink_slab()
 * One shrinker at one priority (see the file comment). Returns the objects freed (or the
 * count, when it was 0 or SHRINK_EMPTY).
 */
export function do_shrink_slab(mm: MM, sc: ShrinkControl, shrinker: Shrinker, priority: number): number {
  const batch_size = shrinker.batch ? shrinker.batch : SHRINK_BATCH;
  const freeable = shrinker.count_objects(sc);
  if (freeable === 0 || freeable === SHRINK_EMPTY) return freeable;
  const nid = shrinker.flags & SHRINKER_NUMA_AWARE ? sc.nid : 0;
  // xchg_nr_deferred()
  const nr = shrinker.nr_deferred[nid];
  shrinker.nr_deferred[nid] = 0;
  let delta: number;
  if (shrinker.seeks) {
    delta = Math.floor(freeable / 2 ** priority) * 4;
    delta = Math.floor(delta / shrinker.seeks);
  } else {
    delta = Math.floor(freeable / 2);
  }
  let total_scan = Math.floor(nr / 2 ** priority) + delta;
  total_scan = Math.min(total_scan, 2 * freeable);
  let freed = 0;
  let scanned = 0;
  while (total_scan >= batch_size || total_scan >= freeable) {
    const nr_to_scan = Math.min(batch_size, total_scan);
    sc.nr_to_scan = nr_to_scan;
    sc.nr_scanned = nr_to_scan;
    const ret = shrinker.scan_objects(sc);
    if (ret === SHRINK_STOP) break;
    freed += ret;
    mm.vm_events[SLABS_SCANNED] += sc.nr_scanned;
    total_scan -= sc.nr_scanned;
    scanned += sc.nr_scanned;
    // The kernel trusts nr_scanned > 0; a shrinker that scans nothing would loop forever.
    if (sc.nr_scanned <= 0) break;
  }
  let next_deferred = Math.max(nr + delta - scanned, 0);
  next_deferred = Math.min(next_deferred, 2 * freeable);
  shrinker.nr_deferred[nid] += next_deferred; // add_nr_deferred()
  return freed;
}

/**
 * kernel: mm/shrinker.c shrink_slab() (the root memcg: the global shrinker_list)
 * Run every registered shrinker for node `nid` at `priority` (DEF_PRIORITY = 12 is the gentlest,
 * 0 scans everything). Returns the objects freed. Slab pages this frees are added to
 * mm.slab.reclaimed_pages (reclaim_state->reclaimed).
 */
export function shrink_slab(mm: MM, gfp: number, nid: number, priority: number): number {
  let freed = 0;
  const sc: ShrinkControl = { gfp_mask: gfp, nid, nr_to_scan: 0, nr_scanned: 0 };
  for (const shrinker of [...mm.slab.shrinker_list]) {
    sc.nid = nid;
    let ret = do_shrink_slab(mm, sc, shrinker, priority);
    if (ret === SHRINK_EMPTY) ret = 0;
    freed += ret;
  }
  return freed;
}

/**
 * kernel: mm/vmscan.c drop_slab()
 * shrink_slab() at priority 0 on every node, repeated while it frees enough: the loop stops
 * once a round frees at most 1 object, 2 in the second round, 4 in the third, and so on.
 */
export function drop_slab(mm: MM): void {
  let shift = 0;
  let freed: number;
  do {
    freed = 0;
    for (let nid = 0; nid < mm.nodes.length; nid++) freed += shrink_slab(mm, GFP_KERNEL, nid, 0);
  } while (Math.floor(freed / 2 ** shift++) > 1);
}

/**
 * kernel: fs/drop_caches.c drop_caches_sysctl_handler() (after a write of 1..4 was parsed)
 * Bit 1 drops the clean, unmapped page cache (drop_pagecache_sb), bit 2 drops reclaimable slab
 * objects (drop_slab), bit 4 silences the kernel log line from then on.
 */
export function drop_caches(mm: MM, value: number): void {
  if (value & 1) {
    drop_pagecache(mm);
    mm.vm_events[DROP_PAGECACHE]++;
  }
  if (value & 2) {
    drop_slab(mm);
    mm.vm_events[DROP_SLAB]++;
  }
  if (!mm.slab.drop_caches_stfu) mm.klog.push(`sh (1): drop_caches: ${value}`);
  if (value & 4) mm.slab.drop_caches_stfu = true;
}

/*
 * Per-object state of the dentry and inode caches: the few struct dentry / struct inode fields
 * the model needs, in typed arrays indexed by the object id (slot * objects-per-slab + index)
 * that grow with the cache's slab table.
 */
/** The object is on its super block's LRU (DCACHE_LRU_LIST / inode->i_lru not empty). */
const OBJ_LRU = 1 << 0;
/** Used again since it went on the LRU: one more pass (DCACHE_REFERENCED / I_REFERENCED). */
const OBJ_REFERENCED = 1 << 1;
/** Dentry unhashed (d_drop): freed when its last reference goes. Inode: i_nlink == 0. */
const OBJ_DOOMED = 1 << 2;

export class ObjectTable {
  ref = new Int32Array(0);
  flags = new Uint8Array(0);
  next = new Int32Array(0);
  prev = new Int32Array(0);
  /** Dentry: the inode's handle (d_inode), NULL for a negative dentry. */
  link = new Float64Array(0);
  /** The super block's index. */
  sb = new Uint16Array(0);

  constructor(readonly s: KmemCache) {
    this.grow(s.capacity);
    s.grow_hooks.push(this);
  }

  /** The cache's slab table grew to `capacity` slots: grow the per-object arrays with it. */
  grow(capacity: number): void {
    const n = capacity * this.s.oo_objects;
    const g = <T extends Int32Array | Uint8Array | Float64Array | Uint16Array>(
      old: T,
      make: (n: number) => T,
    ): T => {
      const a = make(n);
      a.set(old);
      return a;
    };
    this.ref = g(this.ref, (k) => new Int32Array(k));
    this.flags = g(this.flags, (k) => new Uint8Array(k));
    this.next = g(this.next, (k) => new Int32Array(k));
    this.prev = g(this.prev, (k) => new Int32Array(k));
    this.link = g(this.link, (k) => new Float64Array(k));
    this.sb = g(this.sb, (k) => new Uint16Array(k));
  }
}

function table_of(s: KmemCache): ObjectTable {
  let t = s.object_table;
  if (!t) {
    t = new ObjectTable(s);
    s.object_table = t;
  }
  return t;
}

/** enum lru_status (include/linux/list_lru.h) */
export const LRU_REMOVED = 0;
export const LRU_ROTATE = 1;
export const LRU_SKIP = 2;

/**
 * struct list_lru: per-node lists of unused objects of one cache, oldest first, linked through
 * the cache's object table. An object is on the list of the node its slab page is on.
 */
export class ListLru {
  readonly head: Int32Array;
  readonly tail: Int32Array;
  readonly count: Float64Array;
  readonly t: ObjectTable;

  constructor(
    readonly s: KmemCache,
    nr_nodes: number,
  ) {
    this.t = table_of(s);
    this.head = new Int32Array(nr_nodes).fill(-1);
    this.tail = new Int32Array(nr_nodes).fill(-1);
    this.count = new Float64Array(nr_nodes);
  }

  /** The node of object id `oid`. */
  nid_of(oid: number): number {
    return this.s.slab_nid[Math.floor(oid / this.s.oo_objects)];
  }

  // kernel: mm/list_lru.c list_lru_add(): at the tail (newest).
  add(oid: number): void {
    const nid = this.nid_of(oid);
    const t = this.t;
    const last = this.tail[nid];
    t.prev[oid] = last;
    t.next[oid] = -1;
    if (last >= 0) t.next[last] = oid;
    else this.head[nid] = oid;
    this.tail[nid] = oid;
    this.count[nid]++;
    t.flags[oid] |= OBJ_LRU;
  }

  // kernel: mm/list_lru.c list_lru_del()
  del(oid: number): void {
    const nid = this.nid_of(oid);
    const t = this.t;
    const n = t.next[oid];
    const p = t.prev[oid];
    if (p >= 0) t.next[p] = n;
    else this.head[nid] = n;
    if (n >= 0) t.prev[n] = p;
    else this.tail[nid] = p;
    this.count[nid]--;
    t.flags[oid] &= ~OBJ_LRU;
  }

  /** Unused objects on all nodes. */
  total(): number {
    let n = 0;
    for (let nid = 0; nid < this.count.length; nid++) n += this.count[nid];
    return n;
  }

  /**
   * kernel: mm/list_lru.c list_lru_walk_one()
   * Visit up to sc.nr_to_scan objects of node `nid` from the oldest, counting sc.nr_to_scan
   * down; `isolate` returns LRU_REMOVED (after taking the object off the list and onto
   * `dispose`), LRU_ROTATE (move to the tail) or LRU_SKIP. Returns the objects removed.
   */
  walk(
    nid: number,
    sc: ShrinkControl,
    isolate: (oid: number, dispose: number[]) => number,
    dispose: number[],
  ): number {
    let isolated = 0;
    let oid = this.head[nid];
    // As list_for_each_safe(): the next entry is read before the visit, so an object rotated to
    // the tail is met again later in the same walk if nr_to_scan lasts.
    while (oid >= 0 && sc.nr_to_scan > 0) {
      sc.nr_to_scan--;
      const next = this.t.next[oid];
      const ret = isolate(oid, dispose);
      if (ret === LRU_REMOVED) isolated++;
      else if (ret === LRU_ROTATE && next >= 0) {
        this.del(oid);
        this.add(oid);
      }
      oid = next;
    }
    return isolated;
  }
}

/**
 * struct super_block, as far as its caches go: the dentries and inodes of one mounted file
 * system, their LRUs of unused objects and the "sb-<name>" shrinker that prunes them.
 */
export class SuperBlock {
  readonly id: number;
  readonly dentry_cache: KmemCache;
  readonly s_dentry_lru: ListLru;
  readonly s_inode_lru: ListLru;
  readonly s_shrink: Shrinker;
  /** Dentries and inodes allocated for this super block. */
  nr_dentry = 0;
  nr_inodes = 0;

  constructor(
    readonly mm: MM,
    readonly name: string,
    readonly inode_cache: KmemCache,
  ) {
    this.id = mm.slab.super_blocks.length;
    this.dentry_cache = kmem_cache_by_name(mm, 'dentry');
    this.s_dentry_lru = new ListLru(this.dentry_cache, mm.nodes.length);
    this.s_inode_lru = new ListLru(inode_cache, mm.nodes.length);
    // kernel: fs/super.c alloc_super()
    const shrink = new SuperShrinker(this, SHRINKER_NUMA_AWARE | SHRINKER_MEMCG_AWARE, `sb-${name}`);
    shrink.seeks = DEFAULT_SEEKS;
    shrink.batch = 1024;
    this.s_shrink = shrink;
  }

  /** nr_unused of /proc/sys/fs/dentry-state: dentries on the LRU. */
  get nr_unused_dentries(): number {
    return this.s_dentry_lru.total();
  }

  /** nr_unused of /proc/sys/fs/inode-state: inodes on the LRU. */
  get nr_unused_inodes(): number {
    return this.s_inode_lru.total();
  }
}

/** A super block's "sb-<name>" shrinker: super_cache_count() / super_cache_scan(). */
class SuperShrinker extends Shrinker {
  constructor(
    readonly sb: SuperBlock,
    flags: number,
    name: string,
  ) {
    super(flags, name, sb.mm.nodes.length);
  }

  override count_objects(sc: ShrinkControl): number {
    return super_cache_count(this.sb, sc);
  }

  override scan_objects(sc: ShrinkControl): number {
    return super_cache_scan(this.sb, sc);
  }
}

/**
 * kernel: fs/super.c alloc_super() + sget()
 * Mount a file system whose inodes live in `inode_cache` (e.g. ext4_inode_cache) and register
 * its shrinker.
 */
export function alloc_super(mm: MM, name: string, inode_cache: KmemCache): SuperBlock {
  const sb = new SuperBlock(mm, name, inode_cache);
  mm.slab.super_blocks.push(sb);
  shrinker_register(mm, sb.s_shrink);
  return sb;
}

/** The object id of `addr`, an allocated object of `s` (throws otherwise). */
function oid_of(mm: MM, s: KmemCache, addr: number, what: string): number {
  const ref = object_of(mm, s, addr, what);
  return Math.floor(ref / 65536) * s.oo_objects + (ref % 65536);
}

/** kernel: fs/dcache.c d_alloc(): a new dentry, in use (count 1), negative. Returns NULL on failure. */
export function d_alloc(sb: SuperBlock, gfp: number, cpu: number): number {
  const oid = slab_alloc_oid(sb.mm, sb.dentry_cache, gfp, NUMA_NO_NODE, cpu);
  if (oid < 0) return NULL;
  const t = table_of(sb.dentry_cache);
  t.ref[oid] = 1;
  t.flags[oid] = 0;
  t.link[oid] = NULL;
  t.sb[oid] = sb.id;
  sb.nr_dentry++;
  return sb.dentry_cache.handle_of(oid);
}

/** kernel: fs/inode.c new_inode(): a new inode, in use (i_count 1), linked. Returns NULL on failure. */
export function new_inode(sb: SuperBlock, gfp: number, cpu: number): number {
  const oid = slab_alloc_oid(sb.mm, sb.inode_cache, gfp, NUMA_NO_NODE, cpu);
  if (oid < 0) return NULL;
  const t = table_of(sb.inode_cache);
  t.ref[oid] = 1;
  t.flags[oid] = 0;
  t.sb[oid] = sb.id;
  sb.nr_inodes++;
  return sb.inode_cache.handle_of(oid);
}

/** kernel: fs/dcache.c d_instantiate(): `dentry` takes over the caller's reference to `inode`. */
export function d_instantiate(sb: SuperBlock, dentry: number, inode: number): void {
  const oid = oid_of(sb.mm, sb.dentry_cache, dentry, 'd_instantiate');
  oid_of(sb.mm, sb.inode_cache, inode, 'd_instantiate');
  const t = table_of(sb.dentry_cache);
  if (t.link[oid] !== NULL) throw new Error('d_instantiate: dentry already has an inode');
  t.link[oid] = inode;
}

/** The inode of a dentry (d_inode), or NULL for a negative dentry. */
export function d_inode(sb: SuperBlock, dentry: number): number {
  return table_of(sb.dentry_cache).link[oid_of(sb.mm, sb.dentry_cache, dentry, 'd_inode')];
}

/** kernel: include/linux/dcache.h dget(): take a reference (a lookup found the dentry). */
export function dget(sb: SuperBlock, dentry: number): void {
  table_of(sb.dentry_cache).ref[oid_of(sb.mm, sb.dentry_cache, dentry, 'dget')]++;
}

/** kernel: fs/dcache.c d_drop(): unhash; the dentry is freed when its last reference goes. */
export function d_drop(sb: SuperBlock, dentry: number): void {
  table_of(sb.dentry_cache).flags[oid_of(sb.mm, sb.dentry_cache, dentry, 'd_drop')] |= OBJ_DOOMED;
}

/**
 * kernel: fs/dcache.c dput() -> retain_dentry() / dentry_kill()
 * Drop a reference. The last one leaves a hashed dentry cached and unused on the LRU (at the
 * tail the first time; marked referenced if it is still there from an earlier put) and frees an
 * unhashed one, putting its inode.
 */
export function dput(sb: SuperBlock, dentry: number, cpu: number): void {
  const t = table_of(sb.dentry_cache);
  const oid = oid_of(sb.mm, sb.dentry_cache, dentry, 'dput');
  if (t.ref[oid] <= 0) throw new Error(`dput: dentry ${dentry} has no references`);
  if (--t.ref[oid] > 0) return;
  if (t.flags[oid] & OBJ_DOOMED) {
    __dentry_kill(sb, dentry, oid, cpu);
    return;
  }
  if ((t.flags[oid] & OBJ_LRU) === 0) sb.s_dentry_lru.add(oid);
  else t.flags[oid] |= OBJ_REFERENCED;
}

/** kernel: fs/inode.c ihold(): take another reference to an inode. */
export function ihold(sb: SuperBlock, inode: number): void {
  table_of(sb.inode_cache).ref[oid_of(sb.mm, sb.inode_cache, inode, 'ihold')]++;
}

/** kernel: include/linux/fs.h clear_nlink(): the inode was deleted; its last iput frees it. */
export function clear_nlink(sb: SuperBlock, inode: number): void {
  table_of(sb.inode_cache).flags[oid_of(sb.mm, sb.inode_cache, inode, 'clear_nlink')] |= OBJ_DOOMED;
}

/**
 * kernel: fs/inode.c iput() -> iput_final()
 * Drop a reference. The last one evicts a deleted inode and otherwise keeps it cached on the
 * inode LRU (__inode_add_lru(inode, rotate = true)).
 */
export function iput(sb: SuperBlock, inode: number, cpu: number): void {
  const t = table_of(sb.inode_cache);
  const oid = oid_of(sb.mm, sb.inode_cache, inode, 'iput');
  if (t.ref[oid] <= 0) throw new Error(`iput: inode ${inode} has no references`);
  if (--t.ref[oid] > 0) return;
  if (t.flags[oid] & OBJ_DOOMED) {
    if (t.flags[oid] & OBJ_LRU) sb.s_inode_lru.del(oid);
    evict(sb, inode, cpu);
    return;
  }
  if ((t.flags[oid] & OBJ_LRU) === 0) sb.s_inode_lru.add(oid);
  else t.flags[oid] |= OBJ_REFERENCED;
}

// kernel: fs/inode.c evict() -> destroy_inode()
function evict(sb: SuperBlock, inode: number, cpu: number): void {
  sb.nr_inodes--;
  kmem_cache_free(sb.mm, sb.inode_cache, inode, cpu);
}

// kernel: fs/dcache.c __dentry_kill(): off the LRU, put the inode, free the dentry.
function __dentry_kill(sb: SuperBlock, dentry: number, oid: number, cpu: number): void {
  const t = table_of(sb.dentry_cache);
  if (t.flags[oid] & OBJ_LRU) sb.s_dentry_lru.del(oid);
  const inode = t.link[oid];
  t.link[oid] = NULL;
  t.flags[oid] = 0;
  sb.nr_dentry--;
  kmem_cache_free(sb.mm, sb.dentry_cache, dentry, cpu);
  if (inode !== NULL) iput(sb, inode, cpu);
}

/** The CPU shrinkers run on: the first CPU of the node being shrunk (kswapd's). */
function shrink_cpu(mm: MM, nid: number): number {
  const cpus = mm.nodes[nid].cpus;
  return cpus.length ? cpus[0] : 0;
}

/**
 * The isolate callback dentry_lru_isolate() and inode_lru_isolate() share: objects in use leave
 * the LRU, referenced ones rotate once, the rest go to `dispose`. Returns the objects removed.
 */
function isolate_unused(lru: SuperBlock['s_dentry_lru'], sc: ShrinkControl, dispose: number[]): number {
  const t = lru.t;
  return lru.walk(
    sc.nid,
    sc,
    (oid, out) => {
      if (t.ref[oid] > 0) {
        lru.del(oid);
        return LRU_REMOVED;
      }
      if (t.flags[oid] & OBJ_REFERENCED) {
        t.flags[oid] &= ~OBJ_REFERENCED;
        return LRU_ROTATE;
      }
      lru.del(oid);
      out.push(oid);
      return LRU_REMOVED;
    },
    dispose,
  );
}

/**
 * kernel: fs/dcache.c prune_dcache_sb() with dentry_lru_isolate() and shrink_dentry_list()
 * Dentries in use are taken off the LRU (and counted as freed, as the kernel counts them);
 * referenced ones rotate once; the rest are freed, putting their inodes.
 */
function prune_dcache_sb(sb: SuperBlock, sc: ShrinkControl): number {
  const dispose: number[] = [];
  const freed = isolate_unused(sb.s_dentry_lru, sc, dispose);
  const cpu = shrink_cpu(sb.mm, sc.nid);
  const s = sb.dentry_cache;
  for (const oid of dispose) {
    const slot = Math.floor(oid / s.oo_objects);
    __dentry_kill(sb, s.handle(slot, oid % s.oo_objects), oid, cpu);
  }
  return freed;
}

/**
 * kernel: fs/inode.c prune_icache_sb() with inode_lru_isolate()
 * Inodes in use leave the LRU; referenced ones rotate once; the rest are evicted.
 */
function prune_icache_sb(sb: SuperBlock, sc: ShrinkControl): number {
  const t = sb.s_inode_lru.t;
  const dispose: number[] = [];
  const freed = isolate_unused(sb.s_inode_lru, sc, dispose);
  const cpu = shrink_cpu(sb.mm, sc.nid);
  const s = sb.inode_cache;
  for (const oid of dispose) {
    t.flags[oid] = 0;
    evict(sb, s.handle(Math.floor(oid / s.oo_objects), oid % s.oo_objects), cpu);
  }
  return freed;
}

/**
 * kernel: fs/super.c super_cache_count()
 * Unused dentries and inodes of the node, scaled by vfs_cache_pressure.
 */
function super_cache_count(sb: SuperBlock, sc: ShrinkControl): number {
  const total = sb.s_dentry_lru.count[sc.nid] + sb.s_inode_lru.count[sc.nid];
  if (!total) return SHRINK_EMPTY;
  return Math.floor((total * VFS_CACHE_PRESSURE) / 100);
}

/**
 * kernel: fs/super.c super_cache_scan()
 * Split nr_to_scan between dentries and inodes in proportion, then prune the dentries first (they
 * pin the inodes). Needs __GFP_FS.
 */
function super_cache_scan(sb: SuperBlock, sc: ShrinkControl): number {
  if ((sc.gfp_mask & __GFP_FS) === 0) return SHRINK_STOP;
  let inodes = sb.s_inode_lru.count[sc.nid];
  let dentries = sb.s_dentry_lru.count[sc.nid];
  const total = dentries + inodes || 1;
  const nr_to_scan = sc.nr_to_scan;
  dentries = Math.floor((nr_to_scan * dentries) / total);
  inodes = Math.floor((nr_to_scan * inodes) / total);
  sc.nr_to_scan = dentries + 1;
  let freed = prune_dcache_sb(sb, sc);
  sc.nr_to_scan = inodes + 1;
  freed += prune_icache_sb(sb, sc);
  return freed;
}

/** Per-object state of a dentry or inode, for tests and tools. */
export function vfs_object_state(
  sb: SuperBlock,
  cache: KmemCache,
  addr: number,
): { ref: number; on_lru: boolean; referenced: boolean; doomed: boolean } {
  const t = table_of(cache);
  const oid = oid_of(sb.mm, cache, addr, 'vfs_object_state');
  const fl = t.flags[oid];
  return {
    ref: t.ref[oid],
    on_lru: (fl & OBJ_LRU) !== 0,
    referenced: (fl & OBJ_REFERENCED) !== 0,
    doomed: (fl & OBJ_DOOMED) !== 0,
  };
}

/**
 * The LRUs' consistency: every listed object allocated, flagged OBJ_LRU and unique, counts
 * matching; objects flagged OBJ_LRU all listed. Part of slab_check's story, kept here with the
 * lists it walks.
 */
export function lru_check(mm: MM): string[] {
  const errors: string[] = [];
  for (const sb of mm.slab.super_blocks) {
    for (const lru of [sb.s_dentry_lru, sb.s_inode_lru]) {
      const s = lru.s;
      const t = lru.t;
      let listed = 0;
      for (let nid = 0; nid < lru.count.length; nid++) {
        let n = 0;
        let prev = -1;
        for (let oid = lru.head[nid]; oid >= 0; oid = t.next[oid]) {
          if (++n > lru.count[nid] + 1) break;
          const slot = Math.floor(oid / s.oo_objects);
          const idx = oid % s.oo_objects;
          if ((s.inuse_map[slot * s.bitmap_words + (idx >>> 5)] & (1 << (idx & 31))) === 0)
            errors.push(`sb-${sb.name} ${s.name} LRU holds a free object (oid ${oid})`);
          if ((t.flags[oid] & OBJ_LRU) === 0)
            errors.push(`sb-${sb.name} ${s.name} LRU object ${oid} not flagged`);
          if (t.prev[oid] !== prev) errors.push(`sb-${sb.name} ${s.name} LRU links broken at ${oid}`);
          prev = oid;
        }
        if (n !== lru.count[nid])
          errors.push(`sb-${sb.name} ${s.name} node ${nid} LRU count ${lru.count[nid]} but ${n}`);
        listed += n;
      }
      let flagged = 0;
      for (let slot = 0; slot < s.nr_slots; slot++) {
        for (let idx = 0; idx < s.slab_objects[slot]; idx++) {
          const oid = slot * s.oo_objects + idx;
          if (
            t.flags[oid] & OBJ_LRU &&
            t.sb[oid] === sb.id &&
            s.inuse_map[slot * s.bitmap_words + (idx >>> 5)] & (1 << (idx & 31))
          )
            flagged++;
        }
      }
      if (flagged !== listed)
        errors.push(`sb-${sb.name} ${s.name}: ${flagged} objects flagged on the LRU but ${listed} listed`);
    }
  }
  return errors;
}
