/**
 * The VMA index of an address space: the model's lib/maple_tree.c, as mm/vma.c and mm/mmap.c use
 * it. It maps half-open, non-overlapping virtual address ranges [start, end) to VMA ids (int32 ≥ 0).
 *
 * Shape: a B+tree with MAPLE_NODE_SLOTS slots per node, kept in typed arrays over one
 * ArrayBuffer (node pool with a free stack; nothing is allocated per operation except when the
 * pool doubles). Addresses are doubles holding exact integers, so anything below 2^53 is exact
 * (user space is below 2^47). One array per field (struct of arrays); slot s of node n lives at
 * index n * MAPLE_NODE_SLOTS + s of each. (A record per node, C-struct style, measured ~25%
 * slower on lookups at 10^5 ranges, and fan-outs of 8 and 32 slower than 16 overall.)
 *
 *   leaf slot:      lo = vm_start, hi = vm_end, sl = VMA id, gp = 0
 *   internal slot:  lo = the child's lowest vm_start, hi = the child's highest vm_end,
 *                   sl = the child's node index, gp = the child's largest inner gap
 *
 * "Inner gap" of a subtree is the largest hole between two consecutive ranges that both lie in it;
 * the holes between sibling subtrees are read off the parent's lo/hi (child i - 1 ends at hi[i - 1],
 * child i starts at lo[i]), and the holes below the first and above the last range are handled at
 * the top. So a node's own gap is max(gp[i], lo[i] - hi[i - 1]) over its slots, and a change to a
 * range touches exactly the leaf holding it and that leaf's ancestors. Worked example, one leaf
 * with [0x1000, 0x3000) [0x5000, 0x6000) [0x9000, 0xa000): its gap is max(0x2000, 0x3000) = 0x3000;
 * its parent slot holds lo = 0x1000, hi = 0xa000, gp = 0x3000.
 *
 * The kernel's maple tree stores the holes as NULL entries and covers 0..ULONG_MAX; this index
 * stores only the ranges, which is what a VMA index needs, and derives the holes.
 *
 * Path discipline: mutations and prev()/next() descend from the root recording, per level, the
 * node and the slot taken (pathNode/pathSlot, root at level 0, leaves at level `height`). Splits
 * keep the left half in the original node and merges keep the left node, so the recorded path
 * above the level being restructured stays valid while changes propagate upwards.
 */

/** Slots per node (a maple_range_64 node has 16 too). */
export const MAPLE_NODE_SLOTS = 16;

const B = MAPLE_NODE_SLOTS;
/** Fewest slots in a non-root node: a split of B + 1 gives 9 + 8, a merge of 7 + 8 gives 15. */
const MIN = B >> 1;
/** Deeper than any tree can get: with fan-out ≥ 8, 24 levels hold 8^24 = 2^72 ranges. */
const MAX_HEIGHT = 24;
/** One past the highest representable address: doubles are exact integers below 2^53. */
const ADDR_LIMIT = 2 ** 53;
const DEFAULT_CAPACITY = 16;

/**
 * A visitor for MapleTree.iterate(): called once per range in address order. Returning `false`
 * stops the walk; any other value continues.
 */
export type MapleVisitor = (start: number, end: number, id: number) => unknown;

function hex(x: number): string {
  return `0x${x.toString(16)}`;
}

/** The highest multiple of `align` that is ≤ x (x ≥ 0). `%` on doubles is exact, so this is too. */
function alignDown(x: number, align: number): number {
  return x - (x % align);
}

/** The lowest multiple of `align` that is ≥ x (x ≥ 0). */
function alignUp(x: number, align: number): number {
  const r = x % align;
  return r === 0 ? x : x - r + align;
}

/**
 * An address-range → VMA-id index with maple-tree operations (walk, find, store, erase, the gap
 * searches) in O(log n).
 *
 * Results that are ranges are returned as the id (or -1 for none), with the range's bounds left
 * in `lastStart` / `lastEnd` until the next query: no object is allocated per lookup. Read them
 * straight after the call.
 *
 * Not safe to mutate from inside an `iterate()` callback (it throws); to change ranges while
 * walking them, loop on find():
 *
 *   for (let a = start; t.find(a) >= 0 && t.lastStart < end; ) { const e = t.lastEnd; ...; a = e; }
 */
export class MapleTree {
  /** Start of the range found by the last walk/find/prev/next/erase/adjust, or -1 if none. */
  lastStart = -1;
  /** End (exclusive) of the range found by the last walk/find/prev/next/erase/adjust, or -1. */
  lastEnd = -1;

  private buf!: ArrayBuffer;
  private lo!: Float64Array;
  private hi!: Float64Array;
  private gp!: Float64Array;
  private sl!: Int32Array;
  private cnt!: Int32Array;
  private freeList!: Int32Array;
  /** Nodes the arrays have room for. */
  private cap = 0;
  /** Nodes ever handed out (high-water mark); freed ones sit on freeList. */
  private nextNode = 0;
  private freeTop = 0;
  private root = 0;
  /** Internal levels above the leaves: 0 when the root is a leaf. */
  private height = 0;
  private count = 0;
  /** Bumped by every mutation, so iterate() notices a callback that changes the tree. */
  private version = 0;

  private readonly pathNode = new Int32Array(MAX_HEIGHT);
  private readonly pathSlot = new Int32Array(MAX_HEIGHT);

  /**
   * An empty tree. `expected` sizes the node pool up front (it doubles on demand anyway), so
   * a process that will hold 10^5 VMAs can avoid the copies while it grows.
   */
  constructor(expected = 0) {
    this.allocate(Math.max(DEFAULT_CAPACITY, Math.ceil(expected / (MIN - 1)) + 4));
    this.root = this.allocNode();
  }

  /** Number of ranges stored. */
  get size(): number {
    return this.count;
  }

  /** Bytes held by the node pool (one ArrayBuffer). */
  get byteLength(): number {
    return this.buf.byteLength;
  }

  // kernel: lib/maple_tree.c mtree_destroy()
  /** Remove every range. Keeps the node pool's memory for reuse. */
  clear(): void {
    this.nextNode = 0;
    this.freeTop = 0;
    this.height = 0;
    this.count = 0;
    this.version++;
    this.root = this.allocNode();
    this.lastStart = -1;
    this.lastEnd = -1;
  }

  // kernel: lib/maple_tree.c __mt_dup()
  /** An independent copy, as dup_mmap() makes for fork(): one buffer copy, no per-node work. */
  clone(): MapleTree {
    const t = new MapleTree();
    t.adopt(this.buf.slice(0), this.cap);
    t.nextNode = this.nextNode;
    t.freeTop = this.freeTop;
    t.root = this.root;
    t.height = this.height;
    t.count = this.count;
    return t;
  }

  // ---------------------------------------------------------------- queries

  // kernel: lib/maple_tree.c mas_walk()
  /**
   * The id of the range containing `addr`, or -1 if `addr` is in a hole. On a hit, lastStart /
   * lastEnd hold the range.
   */
  walk(addr: number): number {
    const id = this.find(addr);
    if (id >= 0 && this.lastStart > addr) return this.miss();
    return id;
  }

  // kernel: mm/mmap.c find_vma()
  /**
   * The first range with end > addr (the one containing addr, or else the next one above it), as
   * find_vma() returns: its id, with lastStart / lastEnd set; -1 if every range ends at or below
   * addr.
   */
  find(addr: number): number {
    const lo = this.lo;
    const hi = this.hi;
    const sl = this.sl;
    const cnt = this.cnt;
    let n = this.root;
    // The first child whose highest end is above addr holds the answer; if none, the last child
    // is as good as any (the leaf scan then finds nothing).
    for (let lev = this.height; lev > 0; lev--) {
      const base = n * B;
      const last = base + cnt[n] - 1;
      let i = base;
      while (i < last && hi[i] <= addr) i++;
      n = sl[i];
    }
    const base = n * B;
    const end = base + cnt[n];
    let i = base;
    while (i < end && hi[i] <= addr) i++;
    if (i === end) {
      this.lastStart = -1;
      this.lastEnd = -1;
      return -1;
    }
    this.lastStart = lo[i];
    this.lastEnd = hi[i];
    return sl[i];
  }

  // kernel: lib/maple_tree.c mas_prev()
  /**
   * The last range lying wholly below addr (end ≤ addr): the left neighbour of a hole at addr, or,
   * with addr = vma->vm_start, the VMA before it (vma_prev()). Its id with lastStart / lastEnd
   * set, or -1.
   */
  prev(addr: number): number {
    if (this.count === 0) return this.miss();
    this.descend(addr);
    if (!this.stepPrev()) return this.miss();
    return this.hitAtPath();
  }

  // kernel: lib/maple_tree.c mas_next()
  /**
   * The first range lying wholly at or above addr (start ≥ addr): the right neighbour of a hole
   * at addr, or, with addr = vma->vm_end, the VMA after it (vma_next()). Its id with lastStart /
   * lastEnd set, or -1. Together with prev() this gives the merge candidates of a new
   * [start, end): prev(start) and next(end), adjacent when lastEnd === start / lastStart === end.
   */
  next(addr: number): number {
    if (this.count === 0) return this.miss();
    const p = this.descend(addr);
    const leaf = this.pathNode[this.height];
    if (p === this.cnt[leaf]) return this.miss();
    if (this.lo[leaf * B + p] < addr && !this.stepNext()) return this.miss();
    return this.hitAtPath();
  }

  // kernel: include/linux/mm.h for_each_vma_range()
  /**
   * Call `cb(start, end, id)` for every range intersecting [start, end), in address order, until
   * it returns false. `end` may be Infinity. Returns the number of ranges visited. The callback
   * must not modify the tree (it throws if it does); queries are fine. O(log n + k).
   */
  iterate(start: number, end: number, cb: MapleVisitor): number {
    if (this.count === 0 || !(start < end)) return 0;
    const v = this.visit(this.root, this.height, start, end, cb, this.version, 0);
    return v < 0 ? -1 - v : v;
  }

  // ---------------------------------------------------------------- mutations

  // kernel: lib/maple_tree.c mtree_insert_range()
  /**
   * Insert [start, end) → id. Throws a RangeError for bad arguments (non-integers, start ≥ end,
   * end > 2^53, id not a non-negative int32) and an Error if the range overlaps a stored one:
   * callers erase first, as mtree_insert_range() returns -EEXIST rather than overwrite.
   */
  store(start: number, end: number, id: number): void {
    checkRange('store', start, end);
    if ((id | 0) !== id || id < 0)
      throw new RangeError(`MapleTree.store: id ${id} is not a non-negative int32`);
    const p = this.descend(start);
    const leaf = this.pathNode[this.height];
    // Everything before p ends at or below start, so only the entry at p can overlap.
    if (p < this.cnt[leaf] && this.lo[leaf * B + p] < end) {
      const i = leaf * B + p;
      throw new Error(
        `MapleTree.store: [${hex(start)}, ${hex(end)}) overlaps [${hex(this.lo[i])}, ${hex(this.hi[i])}) → ${this.sl[i]}`,
      );
    }
    this.insertAt(this.height, p, start, end, 0, id);
    this.count++;
    this.version++;
  }

  // kernel: lib/maple_tree.c mtree_erase()
  /**
   * Remove the range that starts exactly at `start`. Returns its id (with lastStart / lastEnd set
   * to the removed range), or -1 if no range starts there.
   */
  erase(start: number): number {
    if (this.count === 0) return this.miss();
    const p = this.descend(start);
    const leaf = this.pathNode[this.height];
    const i = leaf * B + p;
    if (p === this.cnt[leaf] || this.lo[i] !== start) return this.miss();
    const id = this.sl[i];
    this.lastStart = start;
    this.lastEnd = this.hi[i];
    this.removeSlot(leaf, p);
    this.count--;
    this.version++;
    this.rebalance(this.height);
    return id;
  }

  // kernel: mm/vma.h vma_iter_store_overwrite()
  /**
   * Change the bounds of the range starting at `start` to [newStart, newEnd), keeping its id:
   * __split_vma(), vma_expand(), vma_shrink() and move_vma() in one. Returns the id (lastStart /
   * lastEnd set to the new bounds), or -1 if no range starts at `start`. Throws (tree unchanged)
   * if the new bounds overlap another range, or are bad as in store(). In place when the range
   * keeps its neighbours; otherwise an erase and a store.
   */
  adjust(start: number, newStart: number, newEnd: number): number {
    checkRange('adjust', newStart, newEnd);
    if (this.count === 0) return this.miss();
    const h = this.height;
    const p = this.descend(start);
    const leaf = this.pathNode[h];
    const i = leaf * B + p;
    if (p === this.cnt[leaf] || this.lo[i] !== start) return this.miss();
    const id = this.sl[i];
    const oldEnd = this.hi[i];
    const predEnd = this.predecessorEnd();
    const succStart = this.successorStart();
    if (newStart >= predEnd && newEnd <= succStart) {
      this.lo[i] = newStart;
      this.hi[i] = newEnd;
      this.version++;
      this.refreshUp(h);
    } else {
      // Moved past a neighbour: legal only if it lands in a hole of the rest of the tree.
      const other = this.find(newStart);
      const blocker = other < 0 ? -1 : this.lastStart === start ? succStart : this.lastStart;
      if (other >= 0 && blocker < newEnd) {
        throw new Error(
          `MapleTree.adjust: [${hex(newStart)}, ${hex(newEnd)}) for [${hex(start)}, ${hex(oldEnd)}) overlaps the range at ${hex(blocker)}`,
        );
      }
      this.erase(start);
      this.store(newStart, newEnd, id);
    }
    this.lastStart = newStart;
    this.lastEnd = newEnd;
    return id;
  }

  // ---------------------------------------------------------------- gap searches

  // kernel: lib/maple_tree.c mas_empty_area_rev()
  /**
   * Top-down search for a hole, as unmapped_area_topdown() uses it: the highest address s that
   * is a multiple of `align`, with [s, s + size) inside [low, high) and overlapping no range;
   * -1 if there is none. `high` is exclusive (the kernel passes high_limit - 1 as an inclusive
   * max). size ≥ 1, align ≥ 1 integers; any align works, not only powers of two.
   *
   * Subtrees whose largest gap is below `size` are skipped, so this is O(log n) whenever the
   * first gap of ≥ size that the walk meets can hold an aligned [s, s + size) — always so when
   * align is 1, or when the caller pads size by align - 1 as vm_unmapped_area() does. A gap that
   * is long enough but cannot hold an aligned block costs one extra descent (the kernel would
   * have skipped it by padding; we return the exact answer instead).
   */
  emptyAreaRev(low: number, high: number, size: number, align: number): number {
    checkSearch('emptyAreaRev', low, high, size, align);
    if (high - low < size) return -1;
    if (this.count === 0) return this.gapRev(0, Infinity, low, high, size, align);
    const root = this.root;
    const first = this.lo[root * B];
    const last = this.hi[root * B + this.cnt[root] - 1];
    let s = this.gapRev(last, Infinity, low, high, size, align);
    if (s >= 0) return s;
    s = this.searchRev(root, this.height, low, high, size, align);
    if (s >= 0) return s;
    return this.gapRev(0, first, low, high, size, align);
  }

  // kernel: lib/maple_tree.c mas_empty_area()
  /**
   * Bottom-up search for a hole (unmapped_area()): the lowest multiple s of `align` with
   * [s, s + size) inside [low, high) and overlapping no range; -1 if there is none. Same
   * arguments and cost as emptyAreaRev().
   */
  emptyArea(low: number, high: number, size: number, align: number): number {
    checkSearch('emptyArea', low, high, size, align);
    if (high - low < size) return -1;
    if (this.count === 0) return this.gapFwd(0, Infinity, low, high, size, align);
    const root = this.root;
    const first = this.lo[root * B];
    const last = this.hi[root * B + this.cnt[root] - 1];
    let s = this.gapFwd(0, first, low, high, size, align);
    if (s >= 0) return s;
    s = this.searchFwd(root, this.height, low, high, size, align);
    if (s >= 0) return s;
    return this.gapFwd(last, Infinity, low, high, size, align);
  }

  // ---------------------------------------------------------------- checking

  // kernel: lib/maple_tree.c mt_validate()
  /**
   * Every broken invariant, as one line each (empty when the tree is sound): slot counts within
   * bounds, all leaves at one depth, ranges non-empty, ordered and non-overlapping, ids valid,
   * each parent slot's lo / hi / gp equal to its child's, `size` equal to the ranges reachable, and
   * every node either reachable once or free.
   */
  check(): string[] {
    const out: string[] = [];
    const seen = new Uint8Array(this.nextNode);
    if (this.root < 0 || this.root >= this.nextNode) {
      out.push(`root ${this.root} outside the pool of ${this.nextNode} nodes`);
      return out;
    }
    if (this.height > 0 && this.cnt[this.root] < 2)
      out.push(`internal root has ${this.cnt[this.root]} slots`);
    const state = { ranges: 0, prevEnd: -1 };
    this.checkNode(this.root, this.height, true, seen, state, out);
    if (state.ranges !== this.count)
      out.push(`size is ${this.count} but ${state.ranges} ranges are reachable`);
    for (let k = 0; k < this.freeTop; k++) {
      const n = this.freeList[k];
      if (n < 0 || n >= this.nextNode) out.push(`free node ${n} outside the pool`);
      else if (seen[n]) out.push(`node ${n} is both free and in the tree`);
      else seen[n] = 2;
    }
    for (let n = 0; n < this.nextNode; n++) if (seen[n] === 0) out.push(`node ${n} is leaked`);
    return out;
  }

  // ---------------------------------------------------------------- internals: queries

  private miss(): number {
    this.lastStart = -1;
    this.lastEnd = -1;
    return -1;
  }

  /** Report the leaf entry the path points at. */
  private hitAtPath(): number {
    const h = this.height;
    const i = this.pathNode[h] * B + this.pathSlot[h];
    this.lastStart = this.lo[i];
    this.lastEnd = this.hi[i];
    return this.sl[i];
  }

  /**
   * Descend towards the first range with end > addr, recording the path. Returns the leaf position
   * (pathSlot[height]): that range's slot, or the leaf's count if no range ends above addr.
   */
  private descend(addr: number): number {
    const hi = this.hi;
    const sl = this.sl;
    const cnt = this.cnt;
    const pathNode = this.pathNode;
    const pathSlot = this.pathSlot;
    const h = this.height;
    let n = this.root;
    for (let lev = 0; lev < h; lev++) {
      const base = n * B;
      const last = cnt[n] - 1;
      let s = 0;
      while (s < last && hi[base + s] <= addr) s++;
      pathNode[lev] = n;
      pathSlot[lev] = s;
      n = sl[base + s];
    }
    const base = n * B;
    const c = cnt[n];
    let s = 0;
    while (s < c && hi[base + s] <= addr) s++;
    pathNode[h] = n;
    pathSlot[h] = s;
    return s;
  }

  /** Move the path to the previous range. False (path unusable) if there is none. */
  private stepPrev(): boolean {
    const h = this.height;
    const pathNode = this.pathNode;
    const pathSlot = this.pathSlot;
    if (pathSlot[h] > 0) {
      pathSlot[h]--;
      return true;
    }
    let k = h - 1;
    while (k >= 0 && pathSlot[k] === 0) k--;
    if (k < 0) return false;
    pathSlot[k]--;
    for (; k < h; k++) {
      const child = this.sl[pathNode[k] * B + pathSlot[k]];
      pathNode[k + 1] = child;
      pathSlot[k + 1] = this.cnt[child] - 1;
    }
    return true;
  }

  /** Move the path to the next range. False (path unusable) if there is none. */
  private stepNext(): boolean {
    const h = this.height;
    const pathNode = this.pathNode;
    const pathSlot = this.pathSlot;
    const cnt = this.cnt;
    if (pathSlot[h] + 1 < cnt[pathNode[h]]) {
      pathSlot[h]++;
      return true;
    }
    let k = h - 1;
    while (k >= 0 && pathSlot[k] + 1 >= cnt[pathNode[k]]) k--;
    if (k < 0) return false;
    pathSlot[k]++;
    for (; k < h; k++) {
      pathNode[k + 1] = this.sl[pathNode[k] * B + pathSlot[k]];
      pathSlot[k + 1] = 0;
    }
    return true;
  }

  /** End of the range before the one the path points at (-1 if none), read off the path. */
  private predecessorEnd(): number {
    const pathNode = this.pathNode;
    const pathSlot = this.pathSlot;
    // The nearest level where the path did not take slot 0: the sibling to its left ends
    // exactly where the predecessor ends.
    for (let k = this.height; k >= 0; k--) {
      if (pathSlot[k] > 0) return this.hi[pathNode[k] * B + pathSlot[k] - 1];
    }
    return -1;
  }

  /** Start of the range after the one the path points at (Infinity if none). */
  private successorStart(): number {
    const pathNode = this.pathNode;
    const pathSlot = this.pathSlot;
    for (let k = this.height; k >= 0; k--) {
      const n = pathNode[k];
      if (pathSlot[k] + 1 < this.cnt[n]) return this.lo[n * B + pathSlot[k] + 1];
    }
    return Infinity;
  }

  /** Visit the ranges of n's subtree meeting [start, end); returns the running count, or -1 - count once cb stopped. */
  private visit(
    n: number,
    lev: number,
    start: number,
    end: number,
    cb: MapleVisitor,
    version: number,
    visited: number,
  ): number {
    const base = n * B;
    const c = base + this.cnt[n];
    let i = base;
    while (i < c && this.hi[i] <= start) i++;
    for (; i < c && this.lo[i] < end; i++) {
      if (lev > 0) {
        const v = this.visit(this.sl[i], lev - 1, start, end, cb, version, visited);
        if (v < 0) return v;
        visited = v;
      } else {
        visited++;
        const go = cb(this.lo[i], this.hi[i], this.sl[i]);
        if (this.version !== version)
          throw new Error('MapleTree.iterate: the tree was modified by the callback');
        if (go === false) return -1 - visited;
      }
    }
    return visited;
  }

  // ---------------------------------------------------------------- internals: gap searches

  /** The highest aligned fit for the hole [gs, ge) clipped to [low, high), or -1. */
  private gapRev(gs: number, ge: number, low: number, high: number, size: number, align: number): number {
    const a = Math.max(gs, low);
    const b = Math.min(ge, high);
    if (b - a < size) return -1;
    const s = alignDown(b - size, align);
    return s >= a ? s : -1;
  }

  /** The lowest aligned fit for the hole [gs, ge) clipped to [low, high), or -1. */
  private gapFwd(gs: number, ge: number, low: number, high: number, size: number, align: number): number {
    const a = Math.max(gs, low);
    const b = Math.min(ge, high);
    if (b - a < size) return -1;
    const s = alignUp(a, align);
    return s + size <= b ? s : -1;
  }

  /**
   * Highest fit among the holes inside node n's subtree, right to left: child i's own holes,
   * then the hole between child i - 1 and child i. Skips children whose gp is too small or that
   * cannot reach [low, high), and stops once everything left lies below low + size.
   */
  private searchRev(n: number, lev: number, low: number, high: number, size: number, align: number): number {
    const lo = this.lo;
    const hi = this.hi;
    const gp = this.gp;
    const base = n * B;
    for (let i = base + this.cnt[n] - 1; i >= base; i--) {
      const cl = lo[i];
      if (lev > 0 && gp[i] >= size && cl + size <= high && hi[i] - size >= low) {
        const s = this.searchRev(this.sl[i], lev - 1, low, high, size, align);
        if (s >= 0) return s;
      }
      // Every hole from here down tops out at or below cl.
      if (cl - size < low) return -1;
      if (i > base) {
        const s = this.gapRev(hi[i - 1], cl, low, high, size, align);
        if (s >= 0) return s;
      }
    }
    return -1;
  }

  /** Lowest fit among the holes inside node n's subtree, left to right; mirror of searchRev(). */
  private searchFwd(n: number, lev: number, low: number, high: number, size: number, align: number): number {
    const lo = this.lo;
    const hi = this.hi;
    const gp = this.gp;
    const base = n * B;
    const end = base + this.cnt[n];
    for (let i = base; i < end; i++) {
      const ch = hi[i];
      if (i > base) {
        const s = this.gapFwd(hi[i - 1], lo[i], low, high, size, align);
        if (s >= 0) return s;
      }
      if (lev > 0 && gp[i] >= size && lo[i] + size <= high && ch - size >= low) {
        const s = this.searchFwd(this.sl[i], lev - 1, low, high, size, align);
        if (s >= 0) return s;
      }
      // Every hole from here up starts at or above ch.
      if (ch + size > high) return -1;
    }
    return -1;
  }

  // ---------------------------------------------------------------- internals: structure

  /** Largest hole between consecutive ranges inside node n's subtree (0 if fewer than two). */
  private nodeGap(n: number): number {
    const lo = this.lo;
    const hi = this.hi;
    const gp = this.gp;
    const base = n * B;
    const end = base + this.cnt[n];
    let g = gp[base];
    for (let i = base + 1; i < end; i++) {
      const d = lo[i] - hi[i - 1];
      if (d > g) g = d;
      if (gp[i] > g) g = gp[i];
    }
    return g;
  }

  /** Write child c's summary into slot s of node p. */
  private setSlotFromChild(p: number, s: number, c: number): void {
    const i = p * B + s;
    const cb = c * B;
    this.lo[i] = this.lo[cb];
    this.hi[i] = this.hi[cb + this.cnt[c] - 1];
    this.gp[i] = this.nodeGap(c);
    this.sl[i] = c;
  }

  /**
   * Re-summarise the path from `level` up to the root after node pathNode[level] changed;
   * stops early at the first ancestor slot whose summary did not change.
   */
  private refreshUp(level: number): void {
    const lo = this.lo;
    const hi = this.hi;
    const gp = this.gp;
    const pathNode = this.pathNode;
    const pathSlot = this.pathSlot;
    for (let k = level; k > 0; k--) {
      const c = pathNode[k];
      const cb = c * B;
      const i = pathNode[k - 1] * B + pathSlot[k - 1];
      const l = lo[cb];
      const h = hi[cb + this.cnt[c] - 1];
      const g = this.nodeGap(c);
      if (lo[i] === l && hi[i] === h && gp[i] === g) return;
      lo[i] = l;
      hi[i] = h;
      gp[i] = g;
    }
  }

  /** Put a slot at position p of node n, which has room. */
  private insertSlot(n: number, p: number, l: number, h: number, g: number, v: number): void {
    const lo = this.lo;
    const hi = this.hi;
    const gp = this.gp;
    const sl = this.sl;
    const base = n * B;
    const at = base + p;
    for (let j = base + this.cnt[n]; j > at; j--) {
      lo[j] = lo[j - 1];
      hi[j] = hi[j - 1];
      gp[j] = gp[j - 1];
      sl[j] = sl[j - 1];
    }
    lo[at] = l;
    hi[at] = h;
    gp[at] = g;
    sl[at] = v;
    this.cnt[n]++;
  }

  private removeSlot(n: number, p: number): void {
    const lo = this.lo;
    const hi = this.hi;
    const gp = this.gp;
    const sl = this.sl;
    const base = n * B;
    const end = base + --this.cnt[n];
    for (let j = base + p; j < end; j++) {
      lo[j] = lo[j + 1];
      hi[j] = hi[j + 1];
      gp[j] = gp[j + 1];
      sl[j] = sl[j + 1];
    }
  }

  /** Move `k` slots from node `from` at `fp` to node `to` at `tp` (no overlap, room checked). */
  private moveSlots(from: number, fp: number, to: number, tp: number, k: number): void {
    const lo = this.lo;
    const hi = this.hi;
    const gp = this.gp;
    const sl = this.sl;
    const f = from * B + fp;
    const t = to * B + tp;
    for (let j = 0; j < k; j++) {
      lo[t + j] = lo[f + j];
      hi[t + j] = hi[f + j];
      gp[t + j] = gp[f + j];
      sl[t + j] = sl[f + j];
    }
  }

  /**
   * Insert a slot at position p of the path's node at `level`, splitting it if full and pushing
   * the new right half into the parent (recursively; a root split adds a level).
   */
  private insertAt(level: number, p: number, l: number, h: number, g: number, v: number): void {
    const n = this.pathNode[level];
    if (this.cnt[n] < B) {
      this.insertSlot(n, p, l, h, g, v);
      this.refreshUp(level);
      return;
    }
    // Split B + 1 slots: the left half stays in n (so the path above stays valid).
    const m = this.allocNode();
    const half = B >> 1;
    this.moveSlots(n, half, m, 0, B - half);
    this.cnt[n] = half;
    this.cnt[m] = B - half;
    if (p <= half) this.insertSlot(n, p, l, h, g, v);
    else this.insertSlot(m, p - half, l, h, g, v);
    if (level === 0) {
      const r = this.allocNode();
      this.cnt[r] = 2;
      this.setSlotFromChild(r, 0, n);
      this.setSlotFromChild(r, 1, m);
      this.root = r;
      this.height++;
      return;
    }
    const parent = this.pathNode[level - 1];
    const s = this.pathSlot[level - 1];
    this.setSlotFromChild(parent, s, n);
    const mb = m * B;
    this.insertAt(level - 1, s + 1, this.lo[mb], this.hi[mb + this.cnt[m] - 1], this.nodeGap(m), m);
  }

  /**
   * Restore the fill of the path's node at `level` after a slot was removed from it: borrow from a
   * sibling that can spare one, else merge into the left of the pair and fix the parent the same
   * way. An internal root left with one child is replaced by it.
   */
  private rebalance(level: number): void {
    const n = this.pathNode[level];
    const cnt = this.cnt;
    if (level === 0) {
      if (this.height > 0 && cnt[n] === 1) {
        this.root = this.sl[n * B];
        this.height--;
        this.freeNode(n);
      }
      return;
    }
    if (cnt[n] >= MIN) {
      this.refreshUp(level);
      return;
    }
    const parent = this.pathNode[level - 1];
    const s = this.pathSlot[level - 1];
    if (s > 0) {
      const left = this.sl[parent * B + s - 1];
      if (cnt[left] > MIN) {
        // Rotate the left sibling's last slot to the front of n.
        const lb = left * B + cnt[left] - 1;
        this.insertSlot(n, 0, this.lo[lb], this.hi[lb], this.gp[lb], this.sl[lb]);
        cnt[left]--;
        this.setSlotFromChild(parent, s - 1, left);
        this.setSlotFromChild(parent, s, n);
        this.refreshUp(level - 1);
        return;
      }
      this.moveSlots(n, 0, left, cnt[left], cnt[n]);
      cnt[left] += cnt[n];
      this.freeNode(n);
      this.setSlotFromChild(parent, s - 1, left);
      this.removeSlot(parent, s);
    } else {
      const right = this.sl[parent * B + 1];
      if (cnt[right] > MIN) {
        const rb = right * B;
        this.insertSlot(n, cnt[n], this.lo[rb], this.hi[rb], this.gp[rb], this.sl[rb]);
        this.removeSlot(right, 0);
        this.setSlotFromChild(parent, 0, n);
        this.setSlotFromChild(parent, 1, right);
        this.refreshUp(level - 1);
        return;
      }
      this.moveSlots(right, 0, n, cnt[n], cnt[right]);
      cnt[n] += cnt[right];
      this.freeNode(right);
      this.setSlotFromChild(parent, 0, n);
      this.removeSlot(parent, 1);
    }
    this.rebalance(level - 1);
  }

  private allocNode(): number {
    let n: number;
    if (this.freeTop > 0) n = this.freeList[--this.freeTop];
    else {
      if (this.nextNode === this.cap) this.grow();
      n = this.nextNode++;
    }
    this.cnt[n] = 0;
    return n;
  }

  private freeNode(n: number): void {
    this.freeList[this.freeTop++] = n;
  }

  /** Double the pool: one new buffer, each array copied into its new view. */
  private grow(): void {
    const old = { lo: this.lo, hi: this.hi, gp: this.gp, sl: this.sl, cnt: this.cnt, free: this.freeList };
    this.allocate(this.cap * 2);
    this.lo.set(old.lo);
    this.hi.set(old.hi);
    this.gp.set(old.gp);
    this.sl.set(old.sl);
    this.cnt.set(old.cnt);
    this.freeList.set(old.free);
  }

  private allocate(cap: number): void {
    // Layout: lo, hi, gp (f64, cap * B each), sl (i32, cap * B), cnt and freeList (i32, cap each).
    this.adopt(new ArrayBuffer(cap * B * 8 * 3 + cap * B * 4 + cap * 4 * 2), cap);
  }

  private adopt(buf: ArrayBuffer, cap: number): void {
    const slots = cap * B;
    this.buf = buf;
    this.cap = cap;
    this.lo = new Float64Array(buf, 0, slots);
    this.hi = new Float64Array(buf, slots * 8, slots);
    this.gp = new Float64Array(buf, slots * 16, slots);
    this.sl = new Int32Array(buf, slots * 24, slots);
    this.cnt = new Int32Array(buf, slots * 28, cap);
    this.freeList = new Int32Array(buf, slots * 28 + cap * 4, cap);
  }

  private checkNode(
    n: number,
    lev: number,
    isRoot: boolean,
    seen: Uint8Array,
    state: { ranges: number; prevEnd: number },
    out: string[],
  ): void {
    if (n < 0 || n >= this.nextNode) {
      out.push(`node ${n} outside the pool`);
      return;
    }
    if (seen[n]) {
      out.push(`node ${n} reached twice`);
      return;
    }
    seen[n] = 1;
    const c = this.cnt[n];
    if (c > B || c < 0 || (!isRoot && c < MIN)) out.push(`node ${n} at level ${lev} has ${c} slots`);
    const base = n * B;
    for (let s = 0; s < c && s < B; s++) {
      const i = base + s;
      if (!(this.lo[i] < this.hi[i]))
        out.push(`node ${n} slot ${s}: empty [${hex(this.lo[i])}, ${hex(this.hi[i])})`);
      if (lev === 0) {
        const l = this.lo[i];
        const h = this.hi[i];
        if (!Number.isInteger(l) || !Number.isInteger(h) || l < 0 || h > ADDR_LIMIT)
          out.push(`range [${l}, ${h}) is not a valid address range`);
        if (l < state.prevEnd)
          out.push(`range [${hex(l)}, ${hex(h)}) overlaps or precedes one ending at ${hex(state.prevEnd)}`);
        if (this.sl[i] < 0) out.push(`range [${hex(l)}, ${hex(h)}) has id ${this.sl[i]}`);
        if (this.gp[i] !== 0) out.push(`leaf ${n} slot ${s} has gp ${this.gp[i]}`);
        state.prevEnd = h;
        state.ranges++;
      } else {
        const child = this.sl[i];
        const before = state.prevEnd;
        this.checkNode(child, lev - 1, false, seen, state, out);
        if (child < 0 || child >= this.nextNode) continue;
        const cb = child * B;
        const cc = this.cnt[child];
        if (cc === 0) continue;
        if (this.lo[i] !== this.lo[cb])
          out.push(`node ${n} slot ${s}: lo ${hex(this.lo[i])} ≠ child's ${hex(this.lo[cb])}`);
        if (this.hi[i] !== this.hi[cb + cc - 1])
          out.push(`node ${n} slot ${s}: hi ${hex(this.hi[i])} ≠ child's ${hex(this.hi[cb + cc - 1])}`);
        const g = this.nodeGap(child);
        if (this.gp[i] !== g) out.push(`node ${n} slot ${s}: gp ${hex(this.gp[i])} ≠ child's ${hex(g)}`);
        if (s > 0 && before !== this.hi[i - 1]) out.push(`node ${n} slot ${s}: sibling order broken`);
      }
    }
  }
}

function checkRange(op: string, start: number, end: number): void {
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end <= start || end > ADDR_LIMIT) {
    throw new RangeError(`MapleTree.${op}: bad range [${start}, ${end})`);
  }
}

function checkSearch(op: string, low: number, high: number, size: number, align: number): void {
  if (!Number.isInteger(low) || !Number.isInteger(high) || low < 0 || high > ADDR_LIMIT || high < low) {
    throw new RangeError(`MapleTree.${op}: bad window [${low}, ${high})`);
  }
  if (!Number.isInteger(size) || size < 1) throw new RangeError(`MapleTree.${op}: bad size ${size}`);
  if (!Number.isInteger(align) || align < 1) throw new RangeError(`MapleTree.${op}: bad align ${align}`);
}
