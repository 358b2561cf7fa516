/** Machines for the comparison tests: small (1 GiB), no early kernel memory, built instantly. */
import { GFP_KERNEL } from '../../src/mm/gfp.ts';
import type { Machine } from '../../src/sim/machine.ts';
import { MADV_DONTNEED, MAP_ANONYMOUS, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { MiB, NO_EARLY } from '../vm/helpers.ts';

export const CONFIG = { memory: '1G', cpus: 2, seed: 3, early: NO_EARLY } as const;

/** 256 MiB of anonymous memory faulted in, half of it given back in 64 KiB pieces at random. */
export function lightlyUsed(m: Machine): void {
  m.instantly(() => {
    const p = m.spawn({ name: 'filler' });
    const len = 256 * MiB;
    const a = p.mmap(0, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
    p.touch(a, len, { write: true });
    for (let off = 0; off < len; off += 64 * 1024)
      if (m.rand.below(2)) p.madvise(a + off, 64 * 1024, MADV_DONTNEED);
    m.kernel.drain_all_pages();
  });
}

/**
 * Every 4 MiB block taken by the kernel (unmovable), then every other one given back: half the
 * memory is free, in 4 MiB pieces that nothing can join.
 */
export function alternating(m: Machine): void {
  m.instantly(() => {
    const blocks: number[] = [];
    for (;;) {
      const pfn = m.kernel.alloc_pages(GFP_KERNEL, 10);
      if (pfn < 0) break;
      blocks.push(pfn);
    }
    blocks.sort((a, b) => a - b);
    blocks.forEach((pfn, i) => {
      if (i % 2 === 0) m.kernel.free_pages(pfn, 10);
    });
    m.kernel.drain_all_pages();
  });
}
