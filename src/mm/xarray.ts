/**
 * A page cache index (the kernel's xarray for mapping->i_pages, reduced to what the model
 * needs): page index → pfn, in chunks of 512 slots (one xa_node level's worth of 64 × 8) kept in
 * typed arrays. Lookups, stores and erases touch one chunk, never rehash the whole index as a
 * Map does when a file of a million pages shrinks, and allocate only when a chunk is created.
 */
const CHUNK_SHIFT = 9;
const CHUNK = 1 << CHUNK_SHIFT;

export class XArray {
  private readonly chunks = new Map<number, Int32Array>();
  /** Entries in use per chunk. */
  private readonly used = new Map<number, number>();
  private count = 0;

  /** Entries stored. */
  get size(): number {
    return this.count;
  }

  /** xa_load(): the pfn at `index`, or -1. */
  get(index: number): number {
    const chunk = this.chunks.get(Math.floor(index / CHUNK));
    return chunk === undefined ? -1 : chunk[index % CHUNK];
  }

  has(index: number): boolean {
    return this.get(index) >= 0;
  }

  /** xa_store(): `pfn` (≥ 0) at `index`. */
  set(index: number, pfn: number): void {
    const c = Math.floor(index / CHUNK);
    let chunk = this.chunks.get(c);
    if (chunk === undefined) {
      chunk = new Int32Array(CHUNK).fill(-1);
      this.chunks.set(c, chunk);
      this.used.set(c, 0);
    }
    const i = index % CHUNK;
    if (chunk[i] < 0) {
      this.used.set(c, this.used.get(c)! + 1);
      this.count++;
    }
    chunk[i] = pfn;
  }

  /** xa_erase() */
  delete(index: number): boolean {
    const c = Math.floor(index / CHUNK);
    const chunk = this.chunks.get(c);
    if (chunk === undefined) return false;
    const i = index % CHUNK;
    if (chunk[i] < 0) return false;
    chunk[i] = -1;
    this.count--;
    const n = this.used.get(c)! - 1;
    if (n === 0) {
      this.chunks.delete(c);
      this.used.delete(c);
    } else this.used.set(c, n);
    return true;
  }

  /** [index, pfn] of every entry, in ascending index order within each chunk. */
  *entries(): IterableIterator<[number, number]> {
    for (const [c, chunk] of this.chunks) {
      for (let i = 0; i < CHUNK; i++) if (chunk[i] >= 0) yield [c * CHUNK + i, chunk[i]];
    }
  }

  /**
   * [index, pfn] of the entries at indices [start, end): chunk by chunk through the range when
   * it is narrower than the index is full, else by filtering every entry.
   */
  *range(start: number, end: number): IterableIterator<[number, number]> {
    if (end - start > this.chunks.size * CHUNK) {
      for (const entry of this.entries()) if (entry[0] >= start && entry[0] < end) yield entry;
      return;
    }
    for (let c = Math.floor(start / CHUNK); c * CHUNK < end; c++) {
      const chunk = this.chunks.get(c);
      if (chunk === undefined) continue;
      const lo = Math.max(start - c * CHUNK, 0);
      const hi = Math.min(end - c * CHUNK, CHUNK);
      for (let i = lo; i < hi; i++) if (chunk[i] >= 0) yield [c * CHUNK + i, chunk[i]];
    }
  }

  /** Every pfn stored. */
  *values(): IterableIterator<number> {
    for (const [, pfn] of this.entries()) yield pfn;
  }

  [Symbol.iterator](): IterableIterator<[number, number]> {
    return this.entries();
  }
}
