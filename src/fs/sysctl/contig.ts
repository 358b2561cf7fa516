/**
 * MAP_CONTIG's admin files (mapcontig's, not Linux 6.18's; docs/contiginfo.md): the
 * /proc/sys/vm sysctls of src/contig/bounds.ts and vm.contig_policy, all mode 0644 (root
 * writes), and /proc/contiginfo (0444).
 *
 * | entry                 | handler                                    | value          |
 * |-----------------------|--------------------------------------------|----------------|
 * | contig_policy         | proc_dostring, then the name looked up     | linux, rfc-poc, rfc, bounded |
 * | contig_max_kbytes     | proc_doulongvec_minmax                     | 0 .. ULONG_MAX |
 * | contig_total_kbytes   | proc_doulongvec_minmax                     | 0 .. ULONG_MAX |
 * | contig_user_kbytes    | proc_doulongvec_minmax                     | 0 .. ULONG_MAX |
 * | contig_group          | proc_dointvec_minmax, min -1 (-1: any user) | -1 .. INT_MAX  |
 * | contig_reserve_kbytes | proc_doulongvec_minmax                     | 0 .. ULONG_MAX |
 *
 * Numbers parse as Linux parses them (proc_dointvec.ts): garbage, a '-' on an unsigned long, or
 * a value out of range is EINVAL and changes nothing. Nothing is clamped: a limit above the RAM
 * never binds, a reserve above it closes MAP_CONTIG under `bounded`.
 */
import {
  CONTIG_GROUP_ANY,
  CONTIG_POLICY_NAMES,
  type ContigBounds,
  type ContigPolicyName,
} from '../../contig/bounds.ts';
import { ErrnoError } from '../../lib/errno.ts';
import { contiginfo } from '../proc/contiginfo.ts';
import type { Vfs } from '../vfs.ts';
import {
  ctl_int,
  ctl_ulong,
  EINVAL,
  errno_code,
  type ProcIo,
  proc_dointvec_minmax,
  proc_doulongvec_minmax,
} from './proc_dointvec.ts';

/** The longest policy name a write keeps, NUL included (as TCP_CA_NAME_MAX bounds its sysctl). */
const CONTIG_POLICY_NAME_MAX = 16;

/**
 * kernel: kernel/sysctl.c _proc_do_string() (SYSCTL_WRITES_STRICT, position 0)
 * A write copies up to maxlen - 1 bytes, stopping at a NUL or newline; an empty write keeps the
 * old string. A read gives the string and a newline.
 */
export function proc_dostring(data: { s: string }, maxlen: number, write: boolean, buffer = ''): ProcIo {
  if (!write) {
    const out = `${data.s.slice(0, maxlen)}\n`;
    return { err: 0, len: out.length, out };
  }
  if (buffer.length === 0) return { err: 0, len: 0, out: '' };
  let s = '';
  for (let i = 0; i < buffer.length && s.length < maxlen - 1; i++) {
    const c = buffer[i];
    if (c === '\0' || c === '\n') break;
    s += c;
  }
  data.s = s;
  return { err: 0, len: buffer.length, out: '' };
}

/**
 * vm.contig_policy, after proc_tcp_congestion_control(): the current name into a buffer,
 * proc_dostring(), then the new name looked up (EINVAL if unknown). Switching changes what the
 * next mmap(MAP_CONTIG) gets; a mapping keeps the policy it was made under (its backing's).
 */
function contig_policy_handler(bounds: ContigBounds, write: boolean, buffer: string): ProcIo {
  const vm = bounds.vm;
  const val = { s: vm.map_contig?.name ?? 'linux' };
  const rc = proc_dostring(val, CONTIG_POLICY_NAME_MAX, write, buffer);
  if (!write || rc.err) return rc;
  if (!(CONTIG_POLICY_NAMES as readonly string[]).includes(val.s)) return { err: EINVAL, len: 0, out: '' };
  vm.map_contig = bounds.policy(val.s as ContigPolicyName);
  return rc;
}

/** One entry: its name and handler (`write` false reads; `out` is the text). */
interface ContigSysctl {
  procname: string;
  proc_handler(write: boolean, buffer: string): ProcIo;
}

/** The entries, bound to one machine's bounds, in the order of the table above. */
export function contig_sysctl_table(bounds: ContigBounds): ContigSysctl[] {
  const s = bounds.sysctl;
  const kbytes = (
    name: 'contig_max_kbytes' | 'contig_total_kbytes' | 'contig_user_kbytes' | 'contig_reserve_kbytes',
  ) => {
    const table = ctl_ulong(name, s, name);
    return { procname: name, proc_handler: (w: boolean, b: string) => proc_doulongvec_minmax(table, w, b) };
  };
  const group = ctl_int('contig_group', s, 'contig_group', CONTIG_GROUP_ANY);
  return [
    { procname: 'contig_policy', proc_handler: (w, b) => contig_policy_handler(bounds, w, b) },
    kbytes('contig_max_kbytes'),
    kbytes('contig_total_kbytes'),
    kbytes('contig_user_kbytes'),
    { procname: 'contig_group', proc_handler: (w, b) => proc_dointvec_minmax(group, w, b) },
    kbytes('contig_reserve_kbytes'),
  ];
}

/** Register the contig sysctls under /proc/sys/vm and /proc/contiginfo. */
export function register_contig_files(vfs: Vfs, bounds: ContigBounds): void {
  for (const e of contig_sysctl_table(bounds)) {
    const path = `/proc/sys/vm/${e.procname}`;
    vfs.register(path, {
      mode: 0o644,
      read: () => e.proc_handler(false, '').out,
      write: (text) => {
        const rc = e.proc_handler(true, text);
        if (rc.err) throw new ErrnoError(errno_code(rc.err), 'write', path);
      },
    });
  }
  vfs.register('/proc/contiginfo', { mode: 0o444, read: () => contiginfo(bounds) });
}
