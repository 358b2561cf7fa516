/**
 * /sys/kernel/mm/transparent_hugepage (mm/huge_memory.c hugepage_init_sysfs(), mm/khugepaged.c
 * khugepaged_attr_group): enabled, defrag, use_zero_page, hpage_pmd_size, khugepaged/* and the
 * per-size hugepages-<size>kB/{enabled,stats/*} of the anonymous orders (thpsize_create()), with
 * the kernel's formats and write rules (EINVAL for a word or number it does not take).
 */
import { ErrnoError } from '../../lib/errno.ts';
import {
  HPAGE_PMD_NR,
  HPAGE_PMD_ORDER,
  HPAGE_PMD_SIZE,
  MTHP_STAT_ANON_FAULT_ALLOC,
  MTHP_STAT_ANON_FAULT_FALLBACK,
  MTHP_STAT_SPLIT,
  MTHP_STAT_SPLIT_DEFERRED,
  MTHP_STAT_SPLIT_FAILED,
  mthp_stat,
  THP_ANON_MIN_ORDER,
  thp,
  thp_anon_enabled_show,
  thp_anon_enabled_store,
  thp_defrag_show,
  thp_defrag_store,
  thp_enabled_show,
  thp_enabled_store,
} from '../../mm/huge_memory.ts';
import type { MM } from '../../mm/mm.ts';
import { vm_event_index } from '../../mm/vmstat_items.ts';
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
        // The sleep knobs end the current sleep (khugepaged_sleep_expire = 0 + wake_up).
        if (name === 'scan_sleep_millisecs' || name === 'alloc_sleep_millisecs') s.khugepaged_wakeup();
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
  for (let order = THP_ANON_MIN_ORDER; order <= HPAGE_PMD_ORDER; order++) register_thpsize(vfs, mm, order);
}

/**
 * The mTHP stats of anon_stats_attr_grp and any_stats_attr_grp (CONFIG_SHMEM), in the kernel's
 * order. The model counts anon_fault_alloc, anon_fault_fallback, split, split_failed and
 * split_deferred per size (count_mthp_stat(), a number below), and nr_anon and
 * nr_anon_partially_mapped per size ('nr'); the others are events the model counts for the PMD
 * order only, as the thp_* event they equal in 6.18 (null: always 0).
 */
const MTHP_STATS: ReadonlyArray<
  readonly [string, Parameters<typeof vm_event_index>[0] | number | 'nr' | null]
> = [
  ['anon_fault_alloc', MTHP_STAT_ANON_FAULT_ALLOC],
  ['anon_fault_fallback', MTHP_STAT_ANON_FAULT_FALLBACK],
  ['anon_fault_fallback_charge', 'thp_fault_fallback_charge'],
  ['split_deferred', MTHP_STAT_SPLIT_DEFERRED],
  ['nr_anon', 'nr'],
  ['nr_anon_partially_mapped', 'nr'],
  ['zswpout', null],
  ['swpin', null],
  ['swpin_fallback', null],
  ['swpin_fallback_charge', null],
  ['swpout', 'thp_swpout'],
  ['swpout_fallback', 'thp_swpout_fallback'],
  ['split', MTHP_STAT_SPLIT],
  ['split_failed', MTHP_STAT_SPLIT_FAILED],
];

/** kernel: mm/huge_memory.c thpsize_create(): hugepages-<size>kB/enabled and its stats. */
function register_thpsize(vfs: Vfs, mm: MM, order: number): void {
  const dir = `${DIR}/hugepages-${4 << order}kB`;
  vfs.register(`${dir}/enabled`, {
    mode: 0o644,
    read: () => thp_anon_enabled_show(mm, order),
    write: (t) => {
      if (thp_anon_enabled_store(mm, order, t) < 0) throw new ErrnoError('EINVAL', 'write', `${dir}/enabled`);
    },
  });
  for (const [name, event] of MTHP_STATS) {
    let read: () => number = () => 0;
    if (typeof event === 'number') read = () => mthp_stat(mm, order, event);
    else if (name === 'nr_anon') read = () => thp(mm).nr_anon[order];
    else if (name === 'nr_anon_partially_mapped') read = () => nr_anon_partially_mapped(mm, order);
    else if (event !== null && event !== 'nr' && order === HPAGE_PMD_ORDER) {
      const i = vm_event_index(event);
      read = () => mm.vm_events[i];
    }
    vfs.register(`${dir}/stats/${name}`, { mode: 0o444, read: () => `${read()}\n` });
  }
}

/** MTHP_STAT_NR_ANON_PARTIALLY_MAPPED of `order`: its folios marked partially mapped. */
function nr_anon_partially_mapped(mm: MM, order: number): number {
  let n = 0;
  for (const head of thp(mm).partially_mapped) if (mm.frames.order[head] === order) n++;
  return n;
}
