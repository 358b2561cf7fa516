/**
 * /sys/kernel/mm/transparent_hugepage (mm/huge_memory.c hugepage_init_sysfs(), mm/khugepaged.c
 * khugepaged_attr_group): enabled, defrag, use_zero_page, hpage_pmd_size and khugepaged/*, with
 * the kernel's formats and write rules (EINVAL for a word or number it does not take).
 */
import { ErrnoError } from '../../lib/errno.ts';
import {
  HPAGE_PMD_NR,
  HPAGE_PMD_SIZE,
  thp,
  thp_defrag_show,
  thp_defrag_store,
  thp_enabled_show,
  thp_enabled_store,
} from '../../mm/huge_memory.ts';
import type { MM } from '../../mm/mm.ts';
import type { Vfs } from '../vfs.ts';

const DIR = '/sys/kernel/mm/transparent_hugepage';

/** kstrtoul(buf, 10): digits with an optional '+' and one trailing newline; else -EINVAL. */
function kstrtoul(path: string, buf: string): number {
  const m = /^\+?(\d+)\n?$/.exec(buf);
  if (!m) throw new ErrnoError('EINVAL', 'write', path);
  const v = Number(m[1]);
  if (v > 0xffffffff) throw new ErrnoError('ERANGE', 'write', path);
  return v;
}

/** Register the THP sysfs directory. */
export function register_thp_sysfs(vfs: Vfs, mm: MM): void {
  const s = thp(mm);
  const store = (path: string, r: number): void => {
    if (r < 0) throw new ErrnoError('EINVAL', 'write', path);
  };
  vfs.register(`${DIR}/enabled`, {
    mode: 0o644,
    read: () => thp_enabled_show(mm),
    write: (t) => store(`${DIR}/enabled`, thp_enabled_store(mm, t)),
  });
  vfs.register(`${DIR}/defrag`, {
    mode: 0o644,
    read: () => thp_defrag_show(mm),
    write: (t) => store(`${DIR}/defrag`, thp_defrag_store(mm, t)),
  });
  // single_hugepage_flag_show()/store(): 0 or 1.
  const flag = (path: string, get: () => number, set: (v: number) => void): void => {
    vfs.register(path, {
      mode: 0o644,
      read: () => `${get()}\n`,
      write: (t) => {
        const v = kstrtoul(path, t);
        if (v > 1) throw new ErrnoError('EINVAL', 'write', path);
        set(v);
      },
    });
  };
  flag(
    `${DIR}/use_zero_page`,
    () => s.use_zero_page,
    (v) => {
      s.use_zero_page = v;
    },
  );
  vfs.register(`${DIR}/hpage_pmd_size`, { mode: 0o444, read: () => `${HPAGE_PMD_SIZE}\n` });
  const k = s.khugepaged;
  flag(
    `${DIR}/khugepaged/defrag`,
    () => s.khugepaged_defrag,
    (v) => {
      s.khugepaged_defrag = v;
    },
  );
  // kstrtouint() then the attribute's own range (mm/khugepaged.c *_store()).
  const knob = (name: keyof typeof k, ok: (v: number) => boolean): void => {
    const path = `${DIR}/khugepaged/${name}`;
    vfs.register(path, {
      mode: 0o644,
      read: () => `${k[name]}\n`,
      write: (t) => {
        const v = kstrtoul(path, t);
        if (!ok(v)) throw new ErrnoError('EINVAL', 'write', path);
        k[name] = v;
      },
    });
  };
  knob('pages_to_scan', (v) => v !== 0);
  knob('scan_sleep_millisecs', () => true);
  knob('alloc_sleep_millisecs', () => true);
  knob('max_ptes_none', (v) => v <= HPAGE_PMD_NR - 1);
  knob('max_ptes_swap', (v) => v <= HPAGE_PMD_NR - 1);
  knob('max_ptes_shared', (v) => v <= HPAGE_PMD_NR - 1);
  vfs.register(`${DIR}/khugepaged/pages_collapsed`, { mode: 0o444, read: () => `${k.pages_collapsed}\n` });
  vfs.register(`${DIR}/khugepaged/full_scans`, { mode: 0o444, read: () => `${k.full_scans}\n` });
}
