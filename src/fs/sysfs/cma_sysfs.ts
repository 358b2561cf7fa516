/**
 * kernel: mm/cma_sysfs.c (CONFIG_CMA_SYSFS): /sys/kernel/mm/cma/<area>/ with five read-only
 * (0444, __ATTR_RO) files, each one number and a newline (sysfs_emit "%llu\n" / "%lu\n"):
 * alloc_pages_success, alloc_pages_fail and release_pages_success (pages, summed over calls),
 * total_pages (cma->count) and available_pages (cma->available_count).
 */
import type { Cma } from '../../mm/cma.ts';
import type { MM } from '../../mm/mm.ts';
import type { Vfs } from '../vfs.ts';

const ATTRS: ReadonlyArray<readonly [string, (cma: Cma) => number]> = [
  ['alloc_pages_success', (c) => c.nr_pages_succeeded],
  ['alloc_pages_fail', (c) => c.nr_pages_failed],
  ['release_pages_success', (c) => c.nr_pages_released],
  ['total_pages', (c) => c.count],
  ['available_pages', (c) => c.available_count],
];

/** cma_sysfs_init(): a directory per area, named after it, in declaration order. */
export function register_cma_sysfs(vfs: Vfs, mm: MM): void {
  for (const cma of mm.cma_areas) {
    for (const [attr, show] of ATTRS) {
      vfs.register(`/sys/kernel/mm/cma/${cma.name}/${attr}`, { mode: 0o444, read: () => `${show(cma)}\n` });
    }
  }
}
