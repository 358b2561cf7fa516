/**
 * The VMA index (src/vm/maple_tree.ts): each operation and its edge cases, then long random
 * operation sequences checked against a sorted-array reference model.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import { MAPLE_NODE_SLOTS, MapleTree } from '../../src/vm/maple_tree.ts';

const PAGE = 4096;
const HPAGE = 2 * 1024 * 1024;
const TASK_SIZE = 2 ** 47;

/** find()/walk()/prev()/next() as a comparable record. */
function hit(t: MapleTree, id: number): [number, number, number] {
  return id < 0 ? [-1, -1, -1] : [id, t.lastStart, t.lastEnd];
}

function ranges(t: MapleTree, start = 0, end = Infinity): [number, number, number][] {
  const out: [number, number, number][] = [];
  t.iterate(start, end, (s, e, id) => {
    out.push([s, e, id]);
  });
  return out;
}

/** A tree holding [k*0x10000, k*0x10000 + 0x4000) → k for k in [0, n). */
function striped(n: number): MapleTree {
  const t = new MapleTree();
  for (let k = 0; k < n; k++) t.store(k * 0x10000, k * 0x10000 + 0x4000, k);
  return t;
}

describe('empty tree', () => {
  it('finds nothing and offers the whole window', () => {
    const t = new MapleTree();
    expect(t.size).toBe(0);
    expect(t.walk(0)).toBe(-1);
    expect(t.find(0)).toBe(-1);
    expect(t.prev(PAGE)).toBe(-1);
    expect(t.next(0)).toBe(-1);
    expect(t.erase(0)).toBe(-1);
    expect(t.adjust(0, 0, PAGE)).toBe(-1);
    expect(t.iterate(0, Infinity, () => true)).toBe(0);
    expect(t.emptyAreaRev(0, TASK_SIZE, PAGE, PAGE)).toBe(TASK_SIZE - PAGE);
    expect(t.emptyArea(PAGE, TASK_SIZE, PAGE, PAGE)).toBe(PAGE);
    expect(t.check()).toEqual([]);
  });
});

describe('store() and walk()', () => {
  it('walks half-open ranges: start is inside, end is not', () => {
    const t = new MapleTree();
    t.store(0x1000, 0x3000, 7);
    expect(hit(t, t.walk(0x1000))).toEqual([7, 0x1000, 0x3000]);
    expect(hit(t, t.walk(0x2fff))).toEqual([7, 0x1000, 0x3000]);
    expect(t.walk(0x3000)).toBe(-1);
    expect(t.lastStart).toBe(-1);
    expect(t.walk(0xfff)).toBe(-1);
    expect(t.size).toBe(1);
  });

  it('keeps adjacent ranges apart', () => {
    const t = new MapleTree();
    t.store(0x2000, 0x3000, 2);
    t.store(0x1000, 0x2000, 1);
    t.store(0x3000, 0x4000, 3);
    expect(t.walk(0x1fff)).toBe(1);
    expect(t.walk(0x2000)).toBe(2);
    expect(t.walk(0x3000)).toBe(3);
    expect(ranges(t)).toEqual([
      [0x1000, 0x2000, 1],
      [0x2000, 0x3000, 2],
      [0x3000, 0x4000, 3],
    ]);
  });

  it('holds ranges at both ends of the address space exactly', () => {
    const t = new MapleTree();
    t.store(0, PAGE, 1);
    t.store(TASK_SIZE - PAGE, TASK_SIZE, 2);
    t.store(2 ** 53 - PAGE, 2 ** 53, 3);
    expect(t.walk(0)).toBe(1);
    expect(t.walk(TASK_SIZE - 1)).toBe(2);
    expect(t.walk(TASK_SIZE)).toBe(-1);
    expect(hit(t, t.walk(2 ** 53 - 1))).toEqual([3, 2 ** 53 - PAGE, 2 ** 53]);
    expect(t.find(TASK_SIZE)).toBe(3);
    expect(t.check()).toEqual([]);
  });

  it('rejects every kind of overlap and leaves the tree unchanged', () => {
    const t = new MapleTree();
    t.store(0x4000, 0x8000, 1);
    t.store(0x8000, 0x9000, 2);
    for (const [s, e] of [
      [0x4000, 0x8000], // the same range
      [0x3000, 0x5000], // over its start
      [0x7000, 0x9000], // over its end and the next one's start
      [0x5000, 0x6000], // inside
      [0x1000, 0xa000], // around both
      [0x8fff, 0x9000], // the last byte
    ]) {
      expect(() => t.store(s, e, 9)).toThrow(/overlaps/);
    }
    expect(t.size).toBe(2);
    expect(ranges(t)).toEqual([
      [0x4000, 0x8000, 1],
      [0x8000, 0x9000, 2],
    ]);
    expect(t.check()).toEqual([]);
  });

  it('rejects bad arguments', () => {
    const t = new MapleTree();
    expect(() => t.store(0x2000, 0x2000, 1)).toThrow(RangeError);
    expect(() => t.store(0x2000, 0x1000, 1)).toThrow(RangeError);
    expect(() => t.store(-PAGE, 0, 1)).toThrow(RangeError);
    expect(() => t.store(0.5, 2, 1)).toThrow(RangeError);
    expect(() => t.store(0, 2 ** 53 + 2, 1)).toThrow(RangeError);
    expect(() => t.store(0, PAGE, -1)).toThrow(RangeError);
    expect(() => t.store(0, PAGE, 2 ** 31)).toThrow(RangeError);
    expect(() => t.store(0, PAGE, 1.5)).toThrow(RangeError);
    expect(() => t.adjust(0, PAGE, 0)).toThrow(RangeError);
    expect(() => t.emptyArea(0, PAGE, 0, 1)).toThrow(RangeError);
    expect(() => t.emptyAreaRev(0, PAGE, PAGE, 0)).toThrow(RangeError);
    expect(() => t.emptyAreaRev(PAGE, 0, 1, 1)).toThrow(RangeError);
    expect(t.size).toBe(0);
  });

  it('splits nodes and grows the pool as ranges pile up, in any insertion order', () => {
    for (const order of ['up', 'down', 'shuffled'] as const) {
      const n = 5000;
      const keys = Array.from({ length: n }, (_, k) => (order === 'down' ? n - 1 - k : k));
      if (order === 'shuffled')
        for (let k = n - 1; k > 0; k--) {
          const j = (k * 7919) % (k + 1);
          [keys[k], keys[j]] = [keys[j], keys[k]];
        }
      const t = new MapleTree();
      for (const k of keys) t.store(k * 2 * PAGE, k * 2 * PAGE + PAGE, k);
      expect(t.size).toBe(n);
      expect(t.check()).toEqual([]);
      for (let k = 0; k < n; k += 97)
        expect(hit(t, t.walk(k * 2 * PAGE + 5))).toEqual([k, k * 2 * PAGE, k * 2 * PAGE + PAGE]);
    }
  });
});

describe('erase()', () => {
  it('removes only the range starting exactly at the address', () => {
    const t = new MapleTree();
    t.store(0x1000, 0x3000, 4);
    expect(t.erase(0x2000)).toBe(-1);
    expect(t.erase(0x3000)).toBe(-1);
    expect(hit(t, t.erase(0x1000))).toEqual([4, 0x1000, 0x3000]);
    expect(t.erase(0x1000)).toBe(-1);
    expect(t.size).toBe(0);
  });

  it('drains a deep tree in random order, merging nodes back to an empty leaf', () => {
    const n = 4000;
    const t = striped(n);
    const order = Array.from({ length: n }, (_, k) => k);
    for (let k = n - 1; k > 0; k--) {
      const j = (k * 104729 + 13) % (k + 1);
      [order[k], order[j]] = [order[j], order[k]];
    }
    for (let i = 0; i < n; i++) {
      expect(t.erase(order[i] * 0x10000)).toBe(order[i]);
      if (i % 250 === 0) expect(t.check()).toEqual([]);
    }
    expect(t.size).toBe(0);
    expect(t.check()).toEqual([]);
    t.store(0, PAGE, 1);
    expect(t.walk(0)).toBe(1);
  });
});

describe('find(), prev(), next()', () => {
  const t = new MapleTree();
  t.store(0x1000, 0x2000, 1);
  t.store(0x2000, 0x3000, 2); // adjacent to 1
  t.store(0x8000, 0x9000, 3);

  it('find() returns the range containing the address, else the next one above', () => {
    expect(hit(t, t.find(0))).toEqual([1, 0x1000, 0x2000]);
    expect(hit(t, t.find(0x1fff))).toEqual([1, 0x1000, 0x2000]);
    expect(hit(t, t.find(0x2000))).toEqual([2, 0x2000, 0x3000]);
    expect(hit(t, t.find(0x3000))).toEqual([3, 0x8000, 0x9000]);
    expect(t.find(0x9000)).toBe(-1);
  });

  it('prev() is the last range ending at or below the address', () => {
    expect(t.prev(0x1000)).toBe(-1);
    expect(t.prev(0x1fff)).toBe(-1);
    expect(hit(t, t.prev(0x2000))).toEqual([1, 0x1000, 0x2000]);
    expect(t.prev(0x8000)).toBe(2);
    expect(t.prev(0x8fff)).toBe(2);
    expect(t.prev(0x9000)).toBe(3);
    expect(t.prev(Infinity)).toBe(3);
  });

  it('next() is the first range starting at or above the address', () => {
    expect(t.next(0)).toBe(1);
    expect(t.next(0x1000)).toBe(1);
    expect(t.next(0x1001)).toBe(2);
    expect(hit(t, t.next(0x2000))).toEqual([2, 0x2000, 0x3000]);
    expect(t.next(0x3000)).toBe(3);
    expect(t.next(0x8001)).toBe(-1);
  });

  it('crosses node boundaries in a deep tree', () => {
    const d = striped(3000);
    for (let k = 1; k < 3000; k++) {
      expect(d.prev(k * 0x10000)).toBe(k - 1);
      expect(d.next((k - 1) * 0x10000 + 1)).toBe(k);
    }
  });
});

describe('adjust()', () => {
  function three(): MapleTree {
    const t = new MapleTree();
    t.store(0x1000, 0x2000, 1);
    t.store(0x4000, 0x6000, 2);
    t.store(0x8000, 0x9000, 3);
    return t;
  }

  it('shrinks and grows in place up to the neighbours', () => {
    const t = three();
    expect(t.adjust(0x4000, 0x5000, 0x6000)).toBe(2);
    expect([t.lastStart, t.lastEnd]).toEqual([0x5000, 0x6000]);
    expect(t.walk(0x4000)).toBe(-1);
    expect(t.adjust(0x5000, 0x2000, 0x8000)).toBe(2); // now touches both neighbours
    expect(ranges(t).map((r) => r[0])).toEqual([0x1000, 0x2000, 0x8000]);
    expect(t.check()).toEqual([]);
  });

  it('throws on overlap and leaves the tree unchanged', () => {
    const t = three();
    expect(() => t.adjust(0x4000, 0x1fff, 0x6000)).toThrow(/overlaps/);
    expect(() => t.adjust(0x4000, 0x4000, 0x8001)).toThrow(/overlaps/);
    expect(() => t.adjust(0x4000, 0x0, 0xa000)).toThrow(/overlaps/);
    expect(() => t.adjust(0x4000, 0x8800, 0xa000)).toThrow(/overlaps/);
    expect(ranges(t)).toEqual([
      [0x1000, 0x2000, 1],
      [0x4000, 0x6000, 2],
      [0x8000, 0x9000, 3],
    ]);
  });

  it('moves a range past its neighbours into another hole (mremap)', () => {
    const t = three();
    expect(t.adjust(0x1000, 0x20000, 0x21000)).toBe(1);
    expect(ranges(t)).toEqual([
      [0x4000, 0x6000, 2],
      [0x8000, 0x9000, 3],
      [0x20000, 0x21000, 1],
    ]);
    expect(t.adjust(0x20000, 0x6000, 0x8000)).toBe(1); // fills the hole between 2 and 3 exactly
    expect(t.walk(0x7fff)).toBe(1);
    expect(t.check()).toEqual([]);
  });

  it('returns -1 when no range starts at the address', () => {
    const t = three();
    expect(t.adjust(0x4001, 0x4000, 0x5000)).toBe(-1);
    expect(t.adjust(0x3000, 0x3000, 0x3800)).toBe(-1);
  });

  it('models __split_vma() and a merge with the next VMA', () => {
    const t = three();
    // split [0x4000, 0x6000) at 0x5000: shrink, then store the tail under a new id
    t.adjust(0x4000, 0x4000, 0x5000);
    t.store(0x5000, 0x6000, 4);
    expect(t.walk(0x5000)).toBe(4);
    // merge 4 into its adjacent predecessor 2 again
    expect(t.prev(0x5000)).toBe(2);
    expect(t.lastEnd).toBe(0x5000);
    expect(t.erase(0x5000)).toBe(4);
    const tailEnd = t.lastEnd;
    t.adjust(0x4000, 0x4000, tailEnd);
    expect(hit(t, t.walk(0x5fff))).toEqual([2, 0x4000, 0x6000]);
    expect(t.check()).toEqual([]);
  });
});

describe('iterate()', () => {
  it('visits ranges meeting the window, in order, including ones straddling its edges', () => {
    const t = striped(1000); // [k*0x10000, k*0x10000 + 0x4000)
    const got = ranges(t, 0x23000, 0x50001);
    expect(got.map((r) => r[2])).toEqual([2, 3, 4, 5]);
    expect(ranges(t, 0x24000, 0x30000)).toEqual([]);
    expect(t.iterate(0, Infinity, () => true)).toBe(1000);
    expect(t.iterate(0x30000, 0x30000, () => true)).toBe(0);
  });

  it('stops when the callback returns false', () => {
    const t = striped(1000);
    const seen: number[] = [];
    const n = t.iterate(0, Infinity, (_s, _e, id) => {
      seen.push(id);
      return id < 300;
    });
    expect(n).toBe(301);
    expect(seen.at(-1)).toBe(300);
  });

  it('throws if the callback modifies the tree, but allows queries', () => {
    const t = striped(100);
    expect(() =>
      t.iterate(0, Infinity, (s) => {
        t.erase(s);
      }),
    ).toThrow(/modified/);
    const u = striped(100);
    expect(u.iterate(0, Infinity, (s) => u.walk(s) >= 0)).toBe(100);
  });

  it('the find() loop handles munmap of a span', () => {
    const t = striped(100);
    // munmap [0x32000, 0x52000): trims 3's tail, drops 4, trims 5's head
    const start = 0x32000;
    const end = 0x52000;
    for (let a = start; t.find(a) >= 0 && t.lastStart < end; ) {
      const s = t.lastStart;
      const e = t.lastEnd;
      if (s < start) t.adjust(s, s, start);
      else if (e > end) t.adjust(s, end, e);
      else t.erase(s);
      a = e;
    }
    expect(ranges(t, 0x30000, 0x60000)).toEqual([
      [0x30000, 0x32000, 3],
      [0x52000, 0x54000, 5],
    ]);
    expect(t.check()).toEqual([]);
  });
});

describe('emptyAreaRev() and emptyArea()', () => {
  // holes: [0, 0x10000) [0x20000, 0x23000) [0x30000, 0x40000) [0x50000, ∞)
  function holes(): MapleTree {
    const t = new MapleTree();
    t.store(0x10000, 0x20000, 1);
    t.store(0x23000, 0x30000, 2);
    t.store(0x40000, 0x50000, 3);
    return t;
  }

  it('top-down takes the highest fit below high', () => {
    const t = holes();
    expect(t.emptyAreaRev(0, 0x60000, PAGE, PAGE)).toBe(0x5f000);
    expect(t.emptyAreaRev(0, 0x50000, PAGE, PAGE)).toBe(0x3f000);
    expect(t.emptyAreaRev(0, 0x50000, 0x10000, PAGE)).toBe(0x30000); // exact fit
    expect(t.emptyAreaRev(0, 0x3ffff, 0x10000, 1)).toBe(0); // only the hole at 0 fits
    expect(t.emptyAreaRev(0, 0x30000, 0x3000, PAGE)).toBe(0x20000);
    expect(t.emptyAreaRev(0, 0x30000, 0x4000, PAGE)).toBe(0xc000);
    expect(t.emptyAreaRev(0x1000, 0x10000, 0xf000, PAGE)).toBe(0x1000);
    expect(t.emptyAreaRev(0x1000, 0x10000, 0xf001, 1)).toBe(-1);
    expect(t.emptyAreaRev(0x11000, 0x1f000, PAGE, PAGE)).toBe(-1); // window inside a range
  });

  it('bottom-up takes the lowest fit above low', () => {
    const t = holes();
    expect(t.emptyArea(0, 0x60000, PAGE, PAGE)).toBe(0);
    expect(t.emptyArea(0x10000, 0x60000, 0x3000, PAGE)).toBe(0x20000);
    expect(t.emptyArea(0x10000, 0x60000, 0x3001, PAGE)).toBe(0x30000);
    expect(t.emptyArea(0x31000, 0x60000, 0x10000, PAGE)).toBe(0x50000);
    expect(t.emptyArea(0x31000, 0x5ffff, 0x10000, PAGE)).toBe(-1);
    expect(t.emptyArea(0x11000, 0x1f000, PAGE, PAGE)).toBe(-1);
  });

  it('takes an exact fit that touches the window edge, between two ranges of one node', () => {
    const t = new MapleTree();
    t.store(0, 0x1000, 1);
    t.store(0x3000, 0x4000, 2);
    expect(t.emptyAreaRev(0x1000, 0x4000, 0x2000, 1)).toBe(0x1000); // [low, low + size)
    expect(t.emptyArea(0, 0x3000, 0x2000, 1)).toBe(0x1000); // [high - size, high)
    expect(t.emptyAreaRev(0x1001, 0x4000, 0x2000, 1)).toBe(-1);
    expect(t.emptyArea(0, 0x2fff, 0x2000, 1)).toBe(-1);
  });

  it('honours alignment, including an alignment that only the hole at the top satisfies', () => {
    const t = new MapleTree();
    t.store(0, HPAGE + PAGE, 1);
    t.store(2 * HPAGE + PAGE, 4 * HPAGE, 2); // hole [HPAGE + PAGE, 2 HPAGE + PAGE): 2 MiB, unaligned
    t.store(4 * HPAGE + 3 * PAGE, 6 * HPAGE, 3); // hole [4 HPAGE, 4 HPAGE + 3 pages)
    expect(t.emptyAreaRev(0, 6 * HPAGE, HPAGE, PAGE)).toBe(HPAGE + PAGE);
    expect(t.emptyAreaRev(0, 6 * HPAGE, HPAGE, HPAGE)).toBe(-1);
    expect(t.emptyAreaRev(0, 7 * HPAGE, HPAGE, HPAGE)).toBe(6 * HPAGE);
    expect(t.emptyArea(0, 7 * HPAGE, HPAGE, HPAGE)).toBe(6 * HPAGE);
    expect(t.emptyArea(0, 7 * HPAGE, 2 * PAGE, HPAGE)).toBe(4 * HPAGE);
    expect(t.emptyAreaRev(0, 6 * HPAGE, 2 * PAGE, HPAGE)).toBe(4 * HPAGE);
    // alignments need not be powers of two
    expect(t.emptyArea(0, 7 * HPAGE, PAGE, 3 * PAGE)).toBe(HPAGE + PAGE); // 0x201000 = 171 * 0x3000
    expect(t.emptyArea(0, 7 * HPAGE, PAGE, 5 * PAGE)).toBe(HPAGE + 3 * PAGE); // 103 * 0x5000
    expect(t.emptyAreaRev(0, 3 * HPAGE, PAGE, 5 * PAGE)).toBe(2 * HPAGE - 4 * PAGE); // 0x3fc000 = 204 * 0x5000
  });

  it('searches up to 2^47 and near 2^53 exactly', () => {
    const t = new MapleTree();
    t.store(TASK_SIZE - 3 * PAGE, TASK_SIZE - PAGE, 1);
    expect(t.emptyAreaRev(0, TASK_SIZE, PAGE, PAGE)).toBe(TASK_SIZE - PAGE);
    expect(t.emptyAreaRev(0, TASK_SIZE, 2 * PAGE, PAGE)).toBe(TASK_SIZE - 5 * PAGE);
    expect(t.emptyArea(TASK_SIZE - 4 * PAGE, TASK_SIZE, PAGE, PAGE)).toBe(TASK_SIZE - 4 * PAGE);
    expect(t.emptyArea(TASK_SIZE - 3 * PAGE, TASK_SIZE, PAGE, PAGE)).toBe(TASK_SIZE - PAGE);
    expect(t.emptyAreaRev(0, 2 ** 53, 1, 1)).toBe(2 ** 53 - 1);
  });

  it('finds the one large hole among many small ones in a deep tree', () => {
    const t = new MapleTree();
    const n = 20000;
    // ranges of 3 pages with 1-page holes, except one 64-page hole after range 12345
    let a = 0x10000;
    let big = 0;
    for (let k = 0; k < n; k++) {
      t.store(a, a + 3 * PAGE, k);
      a += 4 * PAGE;
      if (k === 12345) {
        big = a - PAGE;
        a += 63 * PAGE;
      }
    }
    expect(t.emptyAreaRev(0x10000, a, 64 * PAGE, PAGE)).toBe(big);
    expect(t.emptyArea(0x10000, a, 64 * PAGE, PAGE)).toBe(big);
    expect(t.emptyAreaRev(0x10000, a, 2 * PAGE, PAGE)).toBe(big + 62 * PAGE);
    expect(t.emptyAreaRev(0x10000, big, 2 * PAGE, PAGE)).toBe(-1);
    expect(t.emptyAreaRev(0x10000, a, 65 * PAGE, PAGE)).toBe(-1);
    expect(t.emptyAreaRev(0, a, PAGE, PAGE)).toBe(a - PAGE);
    expect(t.emptyArea(0x10000, a, PAGE, PAGE)).toBe(0x10000 + 3 * PAGE);
  });
});

describe('clear(), clone(), check()', () => {
  it('clear() empties and the tree is reusable', () => {
    const t = striped(2000);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.check()).toEqual([]);
    t.store(0x1000, 0x2000, 5);
    expect(t.walk(0x1000)).toBe(5);
  });

  it('clone() is independent of the original', () => {
    const t = striped(2000);
    const c = t.clone();
    c.erase(0);
    c.store(0x5000, 0x6000, 99);
    expect(t.walk(0)).toBe(0);
    expect(t.walk(0x5000)).toBe(-1);
    expect(c.walk(0)).toBe(-1);
    expect(c.walk(0x5000)).toBe(99);
    expect(c.check()).toEqual([]);
    expect(t.check()).toEqual([]);
  });

  it('check() reports corrupted order, summaries and size', () => {
    const t = striped(MAPLE_NODE_SLOTS * 4);
    // White-box: node 0 is the first leaf, [0, 0x4000) [0x10000, 0x14000) ...; slot s of node 0
    // is index s of the lo / hi arrays.
    const raw = t as unknown as { lo: Float64Array; hi: Float64Array; count: number };
    raw.hi[0] = 0x1000; // the first range's end: widens the first hole past the parent's recorded gap
    expect(t.check()).toEqual([expect.stringMatching(/gp 0xc000 ≠ child's 0xf000/)]);
    raw.hi[0] = 0x4000;
    raw.lo[1] = 0x3000; // the second range's start: runs into the first range
    expect(t.check()).toEqual([expect.stringMatching(/overlaps or precedes/)]);
    raw.lo[1] = 0x10000;
    expect(t.check()).toEqual([]);
    raw.count++;
    expect(t.check()).toEqual([expect.stringMatching(/size is/)]);
  });
});

// ---------------------------------------------------------------- reference model

/**
 * The obvious implementation: a sorted array of [start, end, id], binary-searched by predicates
 * that are monotone over it; the gap searches scan every hole.
 */
class Reference {
  r: [number, number, number][] = [];

  /** The first index whose range satisfies f (r.length if none); f must be false…false true…true. */
  first(f: (x: [number, number, number]) => boolean): number {
    let lo = 0;
    let hi = this.r.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (f(this.r[mid])) hi = mid;
      else lo = mid + 1;
    }
    return lo;
  }
  at(i: number): [number, number, number] {
    const x = this.r[i];
    return x ? [x[2], x[0], x[1]] : [-1, -1, -1];
  }
  overlaps(s: number, e: number, except = -1): boolean {
    for (let i = this.first((y) => y[1] > s); i < this.r.length && this.r[i][0] < e; i++) {
      if (this.r[i][0] !== except) return true;
    }
    return false;
  }
  store(s: number, e: number, id: number): boolean {
    if (this.overlaps(s, e)) return false;
    this.r.splice(
      this.first((y) => y[0] > s),
      0,
      [s, e, id],
    );
    return true;
  }
  erase(s: number): number {
    const i = this.first((y) => y[0] >= s);
    if (i === this.r.length || this.r[i][0] !== s) return -1;
    return this.r.splice(i, 1)[0][2];
  }
  find(a: number): [number, number, number] {
    return this.at(this.first((y) => y[1] > a));
  }
  walk(a: number): [number, number, number] {
    const x = this.find(a);
    return x[1] <= a ? x : [-1, -1, -1];
  }
  prev(a: number): [number, number, number] {
    return this.at(this.first((y) => y[1] > a) - 1);
  }
  next(a: number): [number, number, number] {
    return this.at(this.first((y) => y[0] >= a));
  }
  /** Hole i: [end of range i - 1 (0 for i = 0), start of range i (Infinity for i = n)). */
  hole(i: number): [number, number] {
    return [i === 0 ? 0 : this.r[i - 1][1], i === this.r.length ? Infinity : this.r[i][0]];
  }
  emptyAreaRev(low: number, high: number, size: number, align: number): number {
    let best = -1;
    for (let i = 0; i <= this.r.length; i++) {
      const [gs, ge] = this.hole(i);
      const s = Math.floor((Math.min(ge, high) - size) / align) * align;
      if (s >= Math.max(gs, low) && s > best) best = s;
    }
    return best;
  }
  emptyArea(low: number, high: number, size: number, align: number): number {
    for (let i = 0; i <= this.r.length; i++) {
      const [gs, ge] = this.hole(i);
      const s = Math.ceil(Math.max(gs, low) / align) * align;
      if (s + size <= Math.min(ge, high)) return s;
    }
    return -1;
  }
}

/** Where random ranges live: `pages` pages of address space, ranges of 1..maxLen pages. */
interface Universe {
  pages: number;
  maxLen: number;
}
/** Small, so random operations collide often. */
const SMALL: Universe = { pages: 1 << 14, maxLen: 24 };
/** Room for tens of thousands of short ranges: trees four levels deep. */
const WIDE: Universe = { pages: 1 << 17, maxLen: 4 };
const ALIGNS = [1, 1, 2, 3, 4, 16, 512];

type Op = [kind: number, a: number, b: number, c: number];

/** Apply one op to both; returns a description of the first disagreement, or ''. */
function step(t: MapleTree, ref: Reference, [kind, a, b, c]: Op, u: Universe): string {
  const addr = (a % u.pages) * PAGE;
  const len = (1 + (b % u.maxLen)) * PAGE;
  const same = (what: string, got: unknown, want: unknown): string =>
    JSON.stringify(got) === JSON.stringify(want)
      ? ''
      : `${what}: got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`;
  const existing = (): number => (ref.r.length ? ref.r[c % ref.r.length][0] : addr);
  switch (kind % 10) {
    case 0:
    case 1:
    case 2: {
      // store, usually into a hole
      const want = ref.store(addr, addr + len, c % 100000);
      let got = true;
      try {
        t.store(addr, addr + len, c % 100000);
      } catch {
        got = false;
      }
      return same(`store(${addr}, ${addr + len})`, got, want);
    }
    case 3: {
      const s = b % 3 === 0 ? addr : existing();
      return same(`erase(${s})`, t.erase(s), ref.erase(s));
    }
    case 4: {
      const s = existing();
      const x = ref.r.find((y) => y[0] === s);
      // new bounds: nudge either edge by up to ±8 pages, or move to addr
      let ns = addr;
      let ne = addr + len;
      if (x && b % 3 !== 0) {
        ns = Math.max(0, x[0] + ((c >> 3) % 17) * PAGE - 8 * PAGE);
        ne = Math.max(ns + PAGE, x[1] + ((c >> 8) % 17) * PAGE - 8 * PAGE);
      }
      let want: number | string = -1;
      if (x) {
        want = ref.overlaps(ns, ne, s) ? 'throw' : x[2];
        if (want !== 'throw') {
          ref.erase(s);
          ref.store(ns, ne, x[2]);
        }
      }
      let got: number | string;
      try {
        got = t.adjust(s, ns, ne);
      } catch {
        got = 'throw';
      }
      return same(`adjust(${s}, ${ns}, ${ne})`, got, want);
    }
    case 5:
      return (
        same(`walk(${addr + (c % PAGE)})`, hit(t, t.walk(addr + (c % PAGE))), ref.walk(addr + (c % PAGE))) ||
        same(`find(${addr})`, hit(t, t.find(addr)), ref.find(addr))
      );
    case 6:
      return (
        same(`prev(${addr})`, hit(t, t.prev(addr)), ref.prev(addr)) ||
        same(`next(${addr})`, hit(t, t.next(addr)), ref.next(addr))
      );
    case 7: {
      const end = addr + (b % 64) * PAGE;
      const want = end > addr ? ref.r.filter(([s, e]) => s < end && e > addr) : [];
      return same(`iterate(${addr}, ${end})`, ranges(t, addr, end), want);
    }
    default: {
      const high = Math.min(u.pages * PAGE + 64 * PAGE, addr + ((b % 4096) + 1) * PAGE);
      const low = Math.max(0, high - ((c % 8192) + 1) * PAGE);
      const align = ALIGNS[c % ALIGNS.length] * PAGE;
      const size = (1 + ((b >> 4) % 32)) * PAGE - (c % 5 === 0 ? 1 : 0);
      return (
        same(
          `emptyAreaRev(${low}, ${high}, ${size}, ${align})`,
          t.emptyAreaRev(low, high, size, align),
          ref.emptyAreaRev(low, high, size, align),
        ) ||
        same(
          `emptyArea(${low}, ${high}, ${size}, ${align})`,
          t.emptyArea(low, high, size, align),
          ref.emptyArea(low, high, size, align),
        )
      );
    }
  }
}

const opArb = fc.tuple(fc.nat(), fc.nat(), fc.nat(), fc.nat());

describe('random operation sequences match a sorted-array reference', () => {
  test.prop([fc.array(opArb, { minLength: 1000, maxLength: 4000 })], { numRuns: 12 })(
    'mixed store/erase/adjust/queries/gap searches',
    (ops) => {
      const t = new MapleTree();
      const ref = new Reference();
      for (let i = 0; i < ops.length; i++) {
        const err = step(t, ref, ops[i], SMALL);
        if (err) throw new Error(`step ${i}: ${err}`);
        if (i % 200 === 199) expect(t.check()).toEqual([]);
      }
      expect(t.check()).toEqual([]);
      expect(t.size).toBe(ref.r.length);
      expect(ranges(t)).toEqual(ref.r);
    },
  );

  test.prop([fc.integer({ min: 1, max: 2 ** 31 - 1 })], { numRuns: 4 })(
    'grow to thousands of ranges, then churn and drain (deep trees, merges at every level)',
    (seed) => {
      const t = new MapleTree();
      const ref = new Reference();
      let x = seed;
      const rnd = (): number => {
        x = (Math.imul(x, 1103515245) + 12345) & 0x7fffffff;
        return x;
      };
      const phases: [number, number[]][] = [
        [6000, [0, 1, 2, 0, 1, 2, 5, 9]], // mostly stores
        [6000, [0, 3, 3, 4, 4, 5, 6, 7, 8, 9]], // churn
        [9000, [3, 3, 3, 4, 6, 9]], // mostly erases
      ];
      let i = 0;
      for (const [steps, kinds] of phases) {
        for (let k = 0; k < steps; k++, i++) {
          const op: Op = [kinds[rnd() % kinds.length], rnd(), rnd(), rnd()];
          const err = step(t, ref, op, WIDE);
          if (err) throw new Error(`step ${i}: ${err}`);
          if (i % 500 === 499) expect(t.check()).toEqual([]);
        }
        expect(ranges(t)).toEqual(ref.r);
      }
      // drain what is left
      for (const [s] of [...ref.r]) expect(t.erase(s)).toBe(ref.erase(s));
      expect(t.size).toBe(0);
      expect(t.check()).toEqual([]);
    },
  );
});
