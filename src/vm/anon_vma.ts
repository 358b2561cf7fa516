/**
 * anon_vma (mm/rmap.c): the object anonymous pages point at through page->mapping, listing the
 * VMAs that may map them, so the reverse map can find every PTE of a page. A VMA gets one at its
 * first anonymous fault (anon_vma_prepare); an adjacent VMA it merges with shares it.
 */
export class AnonVmas {
  /** Per anon_vma: the VMAs linked to it (the anon_vma_chain, as a list per object). */
  private vmas: Array<number[] | undefined> = [];
  private free: number[] = [];

  /** anon_vma_alloc() */
  alloc(): number {
    const id = this.free.pop() ?? this.vmas.length;
    this.vmas[id] = [];
    return id;
  }

  /** anon_vma_chain_link(): `vma` may map pages of `av`. */
  link(av: number, vma: number): void {
    this.vmas[av]!.push(vma);
  }

  /** unlink_anon_vmas() for one VMA; the anon_vma is freed with its last VMA. */
  unlink(av: number, vma: number): void {
    const list = this.vmas[av]!;
    const i = list.indexOf(vma);
    if (i >= 0) {
      list[i] = list[list.length - 1];
      list.pop();
    }
    if (list.length === 0) {
      this.vmas[av] = undefined;
      this.free.push(av);
    }
  }

  /** The VMAs linked to `av` (do not modify). */
  linked(av: number): readonly number[] {
    return this.vmas[av] ?? [];
  }

  /** Live anon_vmas. */
  get count(): number {
    return this.vmas.length - this.free.length;
  }
}

/** frames.mapping of an anonymous page: (anon_vma << 2) | PAGE_MAPPING_ANON. */
export const PAGE_MAPPING_ANON = 1;
export function anon_mapping(av: number): number {
  return (av << 2) | PAGE_MAPPING_ANON;
}
