/**
 * Property test: random kmalloc/kfree (every size class, large kmallocs, all kmalloc types),
 * kmem_cache_alloc/free on caches of several geometries, dentry/inode traffic, shrinking and
 * cache shrinks, on random CPUs of one- and two-node machines, keep slab_check(), the LRU check
 * and the machine's invariants clean; and freeing everything gives every slab page back.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect } from 'vitest';
import {
  __GFP_ACCOUNT,
  __GFP_DMA,
  __GFP_RECLAIMABLE,
  GFP_ATOMIC,
  GFP_KERNEL,
  GFP_NOFS,
} from '../../src/mm/gfp.ts';
import { lru_check } from '../../src/mm/shrinker.ts';
import { type KmemCache, NULL, slab_check } from '../../src/mm/slab.ts';
import { SLAB_HWCACHE_ALIGN, SLAB_RECLAIM_ACCOUNT } from '../../src/mm/slab_flags.ts';
import { NR_FREE_PAGES, node_stat_index } from '../../src/mm/vmstat_items.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { cleanMachine } from '../helpers.ts';

const GFPS = [
  GFP_KERNEL,
  GFP_KERNEL | __GFP_RECLAIMABLE,
  GFP_KERNEL | __GFP_DMA,
  GFP_KERNEL | __GFP_ACCOUNT,
  GFP_ATOMIC,
];
const RECLAIMABLE = node_stat_index('nr_slab_reclaimable');
const UNRECLAIMABLE = node_stat_index('nr_slab_unreclaimable');

type Op =
  | { kind: 'kmalloc'; size: number; gfp: number; cpu: number; count: number }
  | { kind: 'kfree'; pick: number; cpu: number; count: number }
  | { kind: 'alloc'; cache: number; cpu: number; count: number; node: boolean }
  | { kind: 'free'; pick: number; cpu: number; count: number }
  | { kind: 'dentry'; cpu: number; count: number; inode: boolean; put: boolean }
  | { kind: 'dget'; pick: number }
  | { kind: 'dput'; pick: number; cpu: number; drop: boolean }
  | { kind: 'shrink'; priority: number; node: number; nofs: boolean }
  | { kind: 'cache_shrink'; cache: number }
  | { kind: 'drop' }
  | { kind: 'drain' };

const size = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 1, max: 512 }) },
  { weight: 3, arbitrary: fc.integer({ min: 513, max: 8192 }) },
  { weight: 1, arbitrary: fc.integer({ min: 8193, max: 70_000 }) },
);
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant('kmalloc' as const),
      size,
      gfp: fc.nat(GFPS.length - 1),
      cpu: fc.nat(3),
      count: fc.integer({ min: 1, max: 40 }),
    }),
  },
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant('kfree' as const),
      pick: fc.nat(),
      cpu: fc.nat(3),
      count: fc.integer({ min: 1, max: 40 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('alloc' as const),
      cache: fc.nat(3),
      cpu: fc.nat(3),
      count: fc.integer({ min: 1, max: 60 }),
      node: fc.boolean(),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('free' as const),
      pick: fc.nat(),
      cpu: fc.nat(3),
      count: fc.integer({ min: 1, max: 60 }),
    }),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant('dentry' as const),
      cpu: fc.nat(3),
      count: fc.integer({ min: 1, max: 50 }),
      inode: fc.boolean(),
      put: fc.boolean(),
    }),
  },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('dget' as const), pick: fc.nat() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('dput' as const),
      pick: fc.nat(),
      cpu: fc.nat(3),
      drop: fc.boolean(),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('shrink' as const),
      priority: fc.integer({ min: 0, max: 12 }),
      node: fc.nat(1),
      nofs: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cache_shrink' as const), cache: fc.nat(3) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drop' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'drain' as const }) },
);

/** What the test holds: kmalloc handles, cache objects, and dentries with the references it owns. */
interface World {
  m: Machine;
  caches: KmemCache[];
  kmallocs: number[];
  objects: Array<[number, number]>;
  dentries: Array<[number, number]>;
}

function take<T>(list: T[], pick: number): T {
  const j = pick % list.length;
  const v = list[j];
  list[j] = list[list.length - 1];
  list.pop();
  return v;
}

function apply(w: World, o: Op): void {
  const { m } = w;
  const k = m.kernel;
  const cpus = m.mm.nr_cpus;
  switch (o.kind) {
    case 'kmalloc':
      for (let i = 0; i < o.count; i++) {
        const h = k.kmalloc(o.size, GFPS[o.gfp], { cpu: o.cpu % cpus });
        if (h !== NULL) w.kmallocs.push(h);
      }
      break;
    case 'kfree':
      for (let i = 0; i < o.count && w.kmallocs.length; i++)
        k.kfree(take(w.kmallocs, o.pick + i), { cpu: o.cpu % cpus });
      break;
    case 'alloc': {
      const cpu = o.cpu % cpus;
      const nid = o.node ? m.mm.nodes.length - 1 : undefined;
      for (let i = 0; i < o.count; i++) {
        const h = k.kmem_cache_alloc(w.caches[o.cache], GFP_KERNEL, { cpu, nid });
        if (h !== NULL) w.objects.push([o.cache, h]);
      }
      break;
    }
    case 'free':
      for (let i = 0; i < o.count && w.objects.length; i++) {
        const [c, h] = take(w.objects, o.pick + i);
        k.kmem_cache_free(w.caches[c], h, { cpu: o.cpu % cpus });
      }
      break;
    case 'dentry':
      for (let i = 0; i < o.count; i++) {
        const cpu = o.cpu % cpus;
        const d = k.d_alloc(GFP_KERNEL, { cpu });
        if (d === NULL) break;
        if (o.inode) {
          const inode = k.new_inode(GFP_KERNEL, { cpu });
          if (inode !== NULL) k.d_instantiate(d, inode);
        }
        if (o.put) k.dput(d, { cpu });
        else w.dentries.push([d, 1]);
      }
      break;
    case 'dget':
      if (w.dentries.length) {
        const e = w.dentries[o.pick % w.dentries.length];
        k.dget(e[0]);
        e[1]++;
      }
      break;
    case 'dput':
      if (w.dentries.length) {
        const j = o.pick % w.dentries.length;
        const e = w.dentries[j];
        if (o.drop) k.d_drop(e[0]);
        k.dput(e[0], { cpu: o.cpu % cpus });
        if (--e[1] === 0) take(w.dentries, j);
      }
      break;
    case 'shrink':
      k.shrink_slab(o.nofs ? GFP_NOFS : GFP_KERNEL, o.node % m.mm.nodes.length, o.priority);
      break;
    case 'cache_shrink':
      k.kmem_cache_shrink(w.caches[o.cache]);
      break;
    case 'drop':
      m.writeFile('/proc/sys/vm/drop_caches', '2');
      break;
    case 'drain':
      k.drain_all_pages();
      break;
  }
}

function check(w: World): void {
  expect(slab_check(w.m.mm)).toEqual([]);
  expect(lru_check(w.m.mm)).toEqual([]);
  expect(w.m.invariantViolations()).toEqual([]);
}

function freePages(m: Machine): number {
  let n = 0;
  for (const z of m.mm.zones) n += z.vm_stat[NR_FREE_PAGES];
  return n;
}

describe('random slab traffic', () => {
  test.prop(
    [
      fc.constantFrom({ memory: '256M', nodes: 1, cpus: 2 }, { memory: '512M', nodes: 2, cpus: 4 }),
      fc.array(op, { minLength: 1, maxLength: 120 }),
    ],
    { numRuns: 25 },
  )(
    'keeps slab_check and the invariants clean, and freeing everything returns every slab page',
    (cfg, ops) => {
      const m = cleanMachine(cfg);
      m.kernel.drain_all_pages();
      const free0 = freePages(m);
      const w: World = {
        m,
        caches: [
          m.kernel.kmem_cache_create('p-40', 40),
          m.kernel.kmem_cache_create('p-700', 700, { flags: SLAB_RECLAIM_ACCOUNT, ctor: true }),
          m.kernel.kmem_cache_create('p-3000', 3000, { flags: SLAB_HWCACHE_ALIGN }),
          m.kernel.kmem_cache_create('p-40k', 40_000),
        ],
        kmallocs: [],
        objects: [],
        dentries: [],
      };
      ops.forEach((o, i) => {
        apply(w, o);
        if (i % 20 === 19) check(w);
      });
      check(w);

      // Free everything: the test's objects, its dentry references, then the unused dentries and
      // inodes through the shrinker, then every cache's cpu slabs and empty slabs.
      const k = m.kernel;
      for (const h of w.kmallocs) k.kfree(h, { cpu: 1 });
      for (const [c, h] of w.objects) k.kmem_cache_free(w.caches[c], h);
      for (const [d, refs] of w.dentries) for (let r = 0; r < refs; r++) k.dput(d);
      const sb = k.sb;
      for (let round = 0; round < 10 && (sb.nr_dentry > 0 || sb.nr_inodes > 0); round++)
        for (let nid = 0; nid < m.mm.nodes.length; nid++) k.shrink_slab(GFP_KERNEL, nid, 0);
      expect([sb.nr_dentry, sb.nr_inodes]).toEqual([0, 0]);
      for (const s of [...m.mm.slab.slab_caches]) k.kmem_cache_shrink(s);
      for (const node of m.mm.nodes)
        expect([node.vm_stat[UNRECLAIMABLE], node.vm_stat[RECLAIMABLE]]).toEqual([0, 0]);
      expect(m.mm.slab.slab_map.size).toBe(0);
      expect(m.mm.slab.large_kmalloc.size).toBe(0);
      k.drain_all_pages();
      expect(freePages(m)).toBe(free0);
      check(w);
    },
  );
});
