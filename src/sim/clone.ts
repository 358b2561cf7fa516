/**
 * A structural deep copy of an object graph, for Machine.clone(): the copy has the same shape
 * (prototypes, identity and aliasing, cycles) and shares no mutable state with the original.
 *
 * What it copies:
 * - typed arrays and DataViews: their ArrayBuffer once (views over one buffer stay views over
 *   one buffer), a memcpy;
 * - arrays (holes kept), Maps and Sets (keys copied too: an object key maps to its copy);
 * - plain objects and class instances: an object with the same prototype and a copy of every
 *   own enumerable property, string- and symbol-keyed. Methods live on the prototype, so a copied
 *   instance's methods run with the copy as `this`;
 * - frozen objects are shared, not copied: nothing can change them (freeze constants deeply).
 *
 * The rule it enforces: **no closures in machine state.** A function met as a value (an arrow
 * function in a field, a bound method, a callback in a Map) cannot be copied, as what it
 * captured cannot be seen, so the copy throws a CloneError naming the path to it
 * (`machine.mm.hooks.out_of_memory`). Deferred work and callbacks are class instances whose
 * behaviour is a prototype method (src/mm/workqueue.ts); see docs/decisions.md.
 *
 * Objects in `keep` are not copied: each maps to the given replacement (itself, to share it).
 */

export class CloneError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CloneError';
  }
}

type Ctor<T> = new (...args: never[]) => T;

/** A function met while copying; found again with its path if the copy fails. */
class ClosureFound {
  constructor(readonly fn: unknown) {}
}

/**
 * Copy the graph reachable from `root`. `keep` pre-seeds the copy: an object in it is not
 * walked, and its value (the object itself to share it, or a replacement) stands in for it.
 */
export function cloneGraph<T>(root: T, keep: ReadonlyMap<object, unknown> = new Map()): T {
  try {
    return new Copier(keep).run(root);
  } catch (e) {
    if (!(e instanceof ClosureFound)) throw e;
    const path = closurePaths(root, keep, 1, e.fn)[0] ?? '(unknown path)';
    const fn = e.fn as { name?: string };
    throw new CloneError(
      `cannot clone: a function${fn.name ? ` (${fn.name})` : ''} is part of the state at ${path}; ` +
        'machine state may hold no closures (docs/decisions.md: "No closures in machine state")',
    );
  }
}

class Copier {
  private readonly memo = new Map<unknown, unknown>();
  private readonly buffers = new Map<ArrayBufferLike, ArrayBufferLike>();
  /** Objects copied as shells, their contents still to fill: [source, copy] pairs. */
  private readonly unfilled: unknown[] = [];

  constructor(keep: ReadonlyMap<object, unknown>) {
    for (const [k, v] of keep) this.memo.set(k, v);
  }

  run<T>(root: T): T {
    const out = this.value(root) as T;
    const unfilled = this.unfilled;
    while (unfilled.length) {
      const dst = unfilled.pop();
      const src = unfilled.pop();
      this.fill(src as object, dst as object);
    }
    return out;
  }

  /** The copy of a value: primitives as they are, objects memoised (shells filled later). */
  private value(v: unknown): unknown {
    if (typeof v !== 'object' || v === null) {
      if (typeof v === 'function') throw new ClosureFound(v);
      return v;
    }
    const seen = this.memo.get(v);
    if (seen !== undefined || this.memo.has(v)) return seen;
    return this.shell(v);
  }

  /** An empty copy of `src` with its prototype, registered in the memo and queued for filling. */
  private shell(src: object): unknown {
    if (Object.isFrozen(src) && !ArrayBuffer.isView(src)) {
      this.memo.set(src, src);
      return src;
    }
    let dst: object;
    if (ArrayBuffer.isView(src)) {
      dst = this.view(src);
      this.memo.set(src, dst);
      return dst; // own properties of a typed array are its elements: nothing more to copy
    }
    if (Array.isArray(src)) dst = new Array(src.length);
    else if (src instanceof Map) dst = new Map();
    else if (src instanceof Set) dst = new Set();
    else if (src instanceof ArrayBuffer) {
      dst = this.buffer(src);
      this.memo.set(src, dst);
      return dst;
    } else if (src instanceof Date) dst = new Date(src.getTime());
    else if (src instanceof RegExp) dst = new RegExp(src.source, src.flags);
    else if (
      src instanceof Promise ||
      src instanceof WeakMap ||
      src instanceof WeakSet ||
      src instanceof WeakRef
    )
      throw new ClosureFound(src);
    else dst = Object.create(Object.getPrototypeOf(src));
    const proto = Object.getPrototypeOf(src);
    if (Object.getPrototypeOf(dst) !== proto) Object.setPrototypeOf(dst, proto);
    this.memo.set(src, dst);
    this.unfilled.push(src, dst);
    return dst;
  }

  private buffer(src: ArrayBufferLike): ArrayBufferLike {
    let b = this.buffers.get(src);
    if (!b) {
      b = src.slice(0);
      this.buffers.set(src, b);
    }
    return b;
  }

  private view(src: ArrayBufferView): ArrayBufferView {
    const buf = this.buffer(src.buffer);
    if (src instanceof DataView) return new DataView(buf, src.byteOffset, src.byteLength);
    const C = src.constructor as Ctor<ArrayBufferView> & {
      new (b: ArrayBufferLike, off: number, len: number): ArrayBufferView;
    };
    return new C(buf, src.byteOffset, (src as unknown as { length: number }).length);
  }

  private fill(src: object, dst: object): void {
    if (Array.isArray(src)) {
      const d = dst as unknown[];
      for (let i = 0; i < src.length; i++) if (i in src) d[i] = this.value(src[i]);
      this.props(src, dst, true);
    } else if (src instanceof Map) {
      const d = dst as Map<unknown, unknown>;
      for (const [k, v] of src) d.set(this.value(k), this.value(v));
      this.props(src, dst, false);
    } else if (src instanceof Set) {
      const d = dst as Set<unknown>;
      for (const k of src) d.add(this.value(k));
      this.props(src, dst, false);
    } else this.props(src, dst, false);
    if (!Object.isExtensible(src)) {
      if (Object.isFrozen(src)) Object.freeze(dst);
      else if (Object.isSealed(src)) Object.seal(dst);
      else Object.preventExtensions(dst);
    }
  }

  /** Copy own enumerable properties (for arrays, the non-index ones). */
  private props(src: object, dst: object, array: boolean): void {
    const s = src as Record<string | symbol, unknown>;
    const d = dst as Record<string | symbol, unknown>;
    if (array) {
      for (const k of Object.keys(src)) if (!isIndex(k)) d[k] = this.value(s[k]);
    } else {
      // for-in over an object whose prototype chain has no enumerable properties (class
      // instances, plain objects) visits exactly its own enumerable string keys, and is faster.
      for (const k in s) if (Object.hasOwn(s, k)) d[k] = this.value(s[k]);
    }
    const syms = Object.getOwnPropertySymbols(src);
    for (let i = 0; i < syms.length; i++) {
      const k = syms[i];
      if (Object.prototype.propertyIsEnumerable.call(src, k)) d[k] = this.value(s[k]);
    }
  }
}

function isIndex(k: string): boolean {
  const n = Number(k);
  return Number.isInteger(n) && n >= 0 && String(n) === k;
}

/**
 * Where functions sit in the graph reachable from `root` (breadth first, at most `limit`): the
 * closures that make it uncloneable. Slow; for error messages and tests.
 */
export function closurePaths(
  root: unknown,
  keep: ReadonlyMap<object, unknown> = new Map(),
  limit = 20,
  target?: unknown,
): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>(keep.keys());
  const queue: Array<[unknown, string]> = [[root, 'machine']];
  for (let q = 0; q < queue.length && out.length < limit; q++) {
    const [v, path] = queue[q];
    if (typeof v === 'function' && (target === undefined || v === target)) out.push(path);
    if (typeof v !== 'object' || v === null || seen.has(v) || ArrayBuffer.isView(v)) continue;
    if (Object.isFrozen(v)) continue;
    seen.add(v);
    if (v instanceof Map) {
      for (const [k, x] of v) {
        queue.push([k, `${path}.keys()[${describe(k)}]`]);
        queue.push([x, `${path}.get(${describe(k)})`]);
      }
    } else if (v instanceof Set) {
      let i = 0;
      for (const x of v) queue.push([x, `${path}.values()[${i++}]`]);
    }
    const o = v as Record<string | symbol, unknown>;
    for (const k of Object.keys(o))
      queue.push([o[k], Array.isArray(v) && isIndex(k) ? `${path}[${k}]` : `${path}.${k}`]);
    for (const k of Object.getOwnPropertySymbols(o)) queue.push([o[k], `${path}[${String(k)}]`]);
  }
  return out;
}

function describe(k: unknown): string {
  return typeof k === 'string' ? JSON.stringify(k) : typeof k === 'object' && k !== null ? '{…}' : String(k);
}
