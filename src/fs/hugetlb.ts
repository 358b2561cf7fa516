/**
 * The hugetlb pools' files (mm/hugetlb.c, Linux 6.18): the vm sysctls of hugetlb_table
 * (nr_hugepages, nr_hugepages_mempolicy, hugetlb_shm_group, nr_overcommit_hugepages), the hstate
 * attributes under /sys/kernel/mm/hugepages/hugepages-<size>kB/ and, per node,
 * /sys/devices/system/node/nodeN/hugepages/hugepages-<size>kB/{nr,free,surplus}_hugepages.
 * Sysctl writes parse as proc_doulongvec_minmax() does; sysfs writes as kstrtoul(buf, 10)
 * (an optional '+', decimal digits, one optional trailing newline: anything else is EINVAL, a
 * value beyond ULONG_MAX ERANGE). The demote and demote_size attributes are not modelled.
 */
import { type ErrnoCode, ErrnoError } from '../lib/errno.ts';
import { type Hstate, hstate_is_gigantic } from '../mm/hstate.ts';
import { __nr_hugepages_store_common, NUMA_NO_NODE } from '../mm/hugetlb.ts';
import type { MM } from '../mm/mm.ts';
import {
  ctl_int,
  ctl_ulong,
  EINVAL,
  errno_code,
  proc_dointvec,
  proc_doulongvec_minmax,
} from './sysctl/proc_dointvec.ts';
import type { Vfs } from './vfs.ts';

/**
 * kernel: lib/kstrtox.c kstrtoul(s, 10): the value, or -EINVAL / -ERANGE.
 */
export function kstrtoul(s: string): bigint | ErrnoCode {
  let p = s.startsWith('+') ? 1 : 0;
  const m = /^[0-9]+/.exec(s.slice(p));
  if (!m) return 'EINVAL';
  p += m[0].length;
  if (s[p] === '\n') p++;
  if (p !== s.length) return 'EINVAL';
  const v = BigInt(m[0]);
  return v > 0xffffffffffffffffn ? 'ERANGE' : v;
}

/** The hugetlb vm sysctls, as {procname, handler} like page_alloc_sysctl_table(). */
function hugetlb_sysctl_table(mm: MM): Array<{
  procname: string;
  handler(write: boolean, buffer: string): { err: number; out: string };
}> {
  const st = mm.hugetlb;
  // kernel: mm/hugetlb.c hugetlb_sysctl_handler_common(): parse into a copy of max_huge_pages.
  const nr = (obey_mempolicy: boolean) => (write: boolean, buffer: string) => {
    const h = st.default_hstate;
    const tmp = { v: h.max_huge_pages };
    const rc = proc_doulongvec_minmax(ctl_ulong('nr_hugepages', tmp, 'v'), write, buffer);
    if (rc.err || !write) return rc;
    const err = __nr_hugepages_store_common(mm, obey_mempolicy, h, NUMA_NO_NODE, tmp.v);
    return err ? { err, out: '' } : rc;
  };
  const entries = [{ procname: 'nr_hugepages', handler: nr(false) }];
  if (mm.config.NUMA) entries.push({ procname: 'nr_hugepages_mempolicy', handler: nr(true) });
  entries.push({
    procname: 'hugetlb_shm_group',
    handler: (write, buffer) =>
      proc_dointvec(ctl_int('hugetlb_shm_group', mm.hugetlb, 'hugetlb_shm_group'), write, buffer),
  });
  // kernel: mm/hugetlb.c hugetlb_overcommit_handler()
  entries.push({
    procname: 'nr_overcommit_hugepages',
    handler: (write, buffer) => {
      const h = st.default_hstate;
      if (write && hstate_is_gigantic(h)) return { err: EINVAL, out: '' };
      const tmp = { v: h.nr_overcommit_huge_pages };
      const rc = proc_doulongvec_minmax(ctl_ulong('nr_overcommit_hugepages', tmp, 'v'), write, buffer);
      if (!rc.err && write) h.nr_overcommit_huge_pages = tmp.v;
      return rc;
    },
  });
  return entries;
}

/** A sysfs attribute: `show` gives the number, `store` (0644 ones) takes the kstrtoul value. */
function attr(vfs: Vfs, path: string, show: () => number, store?: (count: number) => number): void {
  vfs.register(path, {
    mode: store ? 0o644 : 0o444,
    read: () => `${show()}\n`,
    write: store
      ? (text) => {
          const v = kstrtoul(text);
          if (typeof v === 'string') throw new ErrnoError(v, 'write', path);
          const err = store(Number(v));
          if (err) throw new ErrnoError(errno_code(err), 'write', path);
        }
      : undefined,
  });
}

function register_hstate(vfs: Vfs, mm: MM, h: Hstate, dir: string, nid: number): void {
  const node = nid !== NUMA_NO_NODE;
  attr(
    vfs,
    `${dir}/nr_hugepages`,
    () => (node ? h.nr_huge_pages_node[nid] : h.nr_huge_pages),
    (count) => __nr_hugepages_store_common(mm, false, h, nid, count),
  );
  attr(vfs, `${dir}/free_hugepages`, () => (node ? h.free_huge_pages_node[nid] : h.free_huge_pages));
  attr(vfs, `${dir}/surplus_hugepages`, () => (node ? h.surplus_huge_pages_node[nid] : h.surplus_huge_pages));
  if (node) return;
  attr(vfs, `${dir}/resv_hugepages`, () => h.resv_huge_pages);
  // kernel: nr_overcommit_hugepages_store(): EINVAL for gigantic hstates, before parsing.
  vfs.register(`${dir}/nr_overcommit_hugepages`, {
    mode: 0o644,
    read: () => `${h.nr_overcommit_huge_pages}\n`,
    write: (text) => {
      const path = `${dir}/nr_overcommit_hugepages`;
      if (hstate_is_gigantic(h)) throw new ErrnoError('EINVAL', 'write', path);
      const v = kstrtoul(text);
      if (typeof v === 'string') throw new ErrnoError(v, 'write', path);
      h.nr_overcommit_huge_pages = Number(v);
    },
  });
  if (mm.config.NUMA)
    attr(
      vfs,
      `${dir}/nr_hugepages_mempolicy`,
      () => h.nr_huge_pages,
      (count) => __nr_hugepages_store_common(mm, true, h, nid, count),
    );
}

/**
 * Register the hugetlb sysctls (hugetlb_sysctl_init()), the hstate directories
 * (hugetlb_sysfs_init()) and, with NUMA, the per-node ones (hugetlb_register_node()).
 */
export function register_hugetlb_files(vfs: Vfs, mm: MM): void {
  for (const e of hugetlb_sysctl_table(mm)) {
    const path = `/proc/sys/vm/${e.procname}`;
    vfs.register(path, {
      mode: 0o644,
      read: () => e.handler(false, '').out,
      write: (text) => {
        const rc = e.handler(true, text);
        if (rc.err) throw new ErrnoError(errno_code(rc.err), 'write', path);
      },
    });
  }
  for (const h of mm.hugetlb.hstates) {
    register_hstate(vfs, mm, h, `/sys/kernel/mm/hugepages/${h.name}`, NUMA_NO_NODE);
    if (mm.config.NUMA)
      for (const n of mm.nodes)
        register_hstate(
          vfs,
          mm,
          h,
          `/sys/devices/system/node/node${n.node_id}/hugepages/${h.name}`,
          n.node_id,
        );
  }
}
