/**
 * /sys/class/contig/<name>/ for each /dev/contig<N> device (src/contig/contig_dev.ts): one value
 * and a newline per file, as sysfs_emit() writes them (docs/devices.md).
 *
 * - in_use_bytes, buffers (0444): memory the device's live mappings hold, and how many buffers.
 * - allocs, fallback_allocs, failures (0444): successful mmaps, those served by the fallback,
 *   refused ones (limits and allocation failures alike).
 * - max_mapping_bytes, max_total_bytes (0644): the limits, in bytes; root may change them (an
 *   unsigned decimal, else EINVAL); lowering one below what is in use frees nothing.
 * - fallback (0644): strict, best-effort or hugetlb.
 * - dev (0444): the node's major:minor (misc devices: 10:<minor>).
 */
import { CONTIG_FALLBACKS, type ContigDevice, type ContigFallback } from '../../contig/contig_dev.ts';
import { ErrnoError } from '../../lib/errno.ts';
import type { Vfs } from '../vfs.ts';

/** MISC_DYNAMIC_MINOR hands out minors downwards from 255 (drivers/char/misc.c). */
const FIRST_DYNAMIC_MINOR = 255;

/** Register each device's directory. */
export function register_contig_sysfs(vfs: Vfs, devices: readonly ContigDevice[]): void {
  devices.forEach((dev, i) => {
    const dir = `/sys/class/contig/${dev.name}`;
    const ro = (name: string, show: () => string): void => {
      vfs.register(`${dir}/${name}`, { mode: 0o444, read: () => `${show()}\n` });
    };
    ro('in_use_bytes', () => String(dev.in_use_bytes));
    ro('buffers', () => String(dev.buffers));
    ro('allocs', () => String(dev.allocs));
    ro('fallback_allocs', () => String(dev.fallback_allocs));
    ro('failures', () => String(dev.failures));
    ro('dev', () => `10:${FIRST_DYNAMIC_MINOR - i}`);
    for (const attr of ['max_mapping_bytes', 'max_total_bytes'] as const) {
      const path = `${dir}/${attr}`;
      vfs.register(path, {
        mode: 0o644,
        read: () => `${dev[attr]}\n`,
        // kstrtoull(): a decimal number, surrounding whitespace allowed.
        write: (text) => {
          const t = text.trim();
          if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t)))
            throw new ErrnoError('EINVAL', 'write', path, 'an unsigned decimal number of bytes');
          dev[attr] = Number(t);
        },
      });
    }
    const path = `${dir}/fallback`;
    vfs.register(path, {
      mode: 0o644,
      read: () => `${dev.fallback}\n`,
      write: (text) => {
        const t = text.trim();
        if (!(CONTIG_FALLBACKS as readonly string[]).includes(t))
          throw new ErrnoError('EINVAL', 'write', path, `one of ${CONTIG_FALLBACKS.join(', ')}`);
        dev.fallback = t as ContigFallback;
      },
    });
  });
}
