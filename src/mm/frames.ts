/**
 * The frame table: the model's `struct page` array (mem_map), one entry per pfn, as a
 * struct-of-arrays over a single ArrayBuffer so a whole machine's frames can be cloned or handed
 * to a worker in one copy.
 *
 * Per frame: `flags` (Uint32, page-flags.ts), `order` (Uint8: buddy order of a free block head,
 * or the order of an allocated or pcp block head), the two list links `next`/`prev` (Int32),
 * the `page->lru` union: a free block's head is on a buddy free list, a pcp block's head on a
 * per-cpu list, an LRU page on its node's LRU list; and the owner of an allocated page:
 * `mapping` (Int32: an anon_vma, address_space or other owner id, 0 for none), `index`
 * (Float64: the page's offset in its owner, page->index) and `mapcount` (Int32: PTEs mapping it,
 * page->_mapcount + 1). 29 bytes per frame.
 *
 * Lists are circular and doubly linked like the kernel's list_head. Their sentinels are extra
 * slots after the last frame: list id L has its sentinel at index nr_frames + L, so an empty list
 * has next[s] == prev[s] == s, and list operations need no branches for head or tail.
 */
export const FRAMES_MAGIC = 0x4d434654; // 'MCFT'
export const FRAMES_VERSION = 2;
const HEADER_BYTES = 16;

export class FrameTable {
  readonly buffer: ArrayBuffer;
  readonly nr_frames: number;
  readonly nr_lists: number;
  readonly flags: Uint32Array;
  readonly next: Int32Array;
  readonly prev: Int32Array;
  /** Entries on each list (blocks, not pages). */
  readonly list_count: Int32Array;
  readonly mapping: Int32Array;
  readonly index: Float64Array;
  readonly mapcount: Int32Array;
  readonly order: Uint8Array;

  constructor(nr_frames: number, nr_lists: number, buffer?: ArrayBuffer) {
    const slots = nr_frames + nr_lists;
    // Float64 fields first so they stay 8-byte aligned; then the 4-byte fields; bytes last.
    const indexOff = HEADER_BYTES;
    const flagsOff = indexOff + nr_frames * 8;
    const mappingOff = flagsOff + nr_frames * 4;
    const mapcountOff = mappingOff + nr_frames * 4;
    const nextOff = mapcountOff + nr_frames * 4;
    const prevOff = nextOff + slots * 4;
    const countOff = prevOff + slots * 4;
    const orderOff = countOff + nr_lists * 4;
    const bytes = orderOff + nr_frames;
    const fresh = buffer === undefined;
    this.buffer = buffer ?? new ArrayBuffer(bytes);
    if (this.buffer.byteLength !== bytes) throw new Error('frame table buffer has the wrong size');
    const header = new Uint32Array(this.buffer, 0, 4);
    if (fresh) {
      header[0] = FRAMES_MAGIC;
      header[1] = FRAMES_VERSION;
      header[2] = nr_frames;
      header[3] = nr_lists;
    } else if (header[0] !== FRAMES_MAGIC || header[1] !== FRAMES_VERSION || header[2] !== nr_frames) {
      throw new Error('frame table buffer has a foreign header');
    }
    this.nr_frames = nr_frames;
    this.nr_lists = nr_lists;
    this.index = new Float64Array(this.buffer, indexOff, nr_frames);
    this.flags = new Uint32Array(this.buffer, flagsOff, nr_frames);
    this.mapping = new Int32Array(this.buffer, mappingOff, nr_frames);
    this.mapcount = new Int32Array(this.buffer, mapcountOff, nr_frames);
    this.next = new Int32Array(this.buffer, nextOff, slots);
    this.prev = new Int32Array(this.buffer, prevOff, slots);
    this.list_count = new Int32Array(this.buffer, countOff, nr_lists);
    this.order = new Uint8Array(this.buffer, orderOff, nr_frames);
    if (fresh) {
      for (let s = nr_frames; s < slots; s++) {
        this.next[s] = s;
        this.prev[s] = s;
      }
    }
  }

  /** Bytes of state per frame, counting the header and list sentinels. */
  bytesPerFrame(): number {
    return this.buffer.byteLength / this.nr_frames;
  }

  clone(): FrameTable {
    return new FrameTable(this.nr_frames, this.nr_lists, this.buffer.slice(0));
  }

  /** list_add(): insert `pfn` right after the sentinel of `list` (at the head). */
  list_add(pfn: number, list: number): void {
    const head = this.nr_frames + list;
    const next = this.next;
    const first = next[head];
    next[pfn] = first;
    this.prev[pfn] = head;
    this.prev[first] = pfn;
    next[head] = pfn;
    this.list_count[list]++;
  }

  /** list_add_tail(): insert `pfn` right before the sentinel of `list` (at the tail). */
  list_add_tail(pfn: number, list: number): void {
    const head = this.nr_frames + list;
    const prev = this.prev;
    const last = prev[head];
    prev[pfn] = last;
    this.next[pfn] = head;
    this.next[last] = pfn;
    prev[head] = pfn;
    this.list_count[list]++;
  }

  /** list_del(): unlink `pfn` from `list`, the list it is on. */
  list_del(pfn: number, list: number): void {
    const next = this.next;
    const prev = this.prev;
    const n = next[pfn];
    const p = prev[pfn];
    next[p] = n;
    prev[n] = p;
    next[pfn] = -1;
    prev[pfn] = -1;
    this.list_count[list]--;
  }

  /** First entry of `list`, or -1 if it is empty. */
  list_first(list: number): number {
    const head = this.nr_frames + list;
    const first = this.next[head];
    return first === head ? -1 : first;
  }

  /** Last entry of `list`, or -1 if it is empty. */
  list_last(list: number): number {
    const head = this.nr_frames + list;
    const last = this.prev[head];
    return last === head ? -1 : last;
  }

  /** The entry after `pfn` on its list, or -1 at the end. */
  list_next(pfn: number): number {
    const n = this.next[pfn];
    return n >= this.nr_frames ? -1 : n;
  }
}
