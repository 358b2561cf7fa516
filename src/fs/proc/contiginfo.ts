/**
 * /proc/contiginfo (mode 0444): mapcontig's summary of MAP_CONTIG memory and its admin bounds
 * (src/contig/bounds.ts), laid out as /proc/meminfo is: a 16-column label, a value right-aligned
 * in 8 columns, ` kB` after sizes. Not a Linux 6.18 file; the format is documented exactly in
 * docs/contiginfo.md.
 */
import { type ContigBounds, contig_free_block_pages } from '../../contig/bounds.ts';
import { PAGE_SIZE } from '../../mm/mmzone.ts';
import type { MmStruct } from '../../vm/mm_struct.ts';
import type { Vm } from '../../vm/vm.ts';
import { VM_CONTIG } from '../../vm/vma.ts';
import { lu, lu_w } from '../seq_file.ts';
import { ctl_ulong } from '../sysctl/proc_dointvec.ts';

/** `label` padded to 16 columns, then `value` right-aligned in 8 (wider values overflow). */
function line(label: string, value: string, unit = ''): string {
  return `${label.padEnd(16)}${value.padStart(8)}${unit}\n`;
}

/** A size in kB from pages. */
function pages_kb(label: string, pages: number): string {
  return `${label.padEnd(16)}${lu_w(pages * 4, 8)} kB\n`;
}

/** A kbytes sysctl as read back (exact, even beyond 2^53). */
function sysctl_kb(bounds: ContigBounds, label: string, key: keyof ContigBounds['sysctl']): string {
  return line(label, ctl_ulong(key, bounds.sysctl, key).get(0).toString(), ' kB');
}

/** The text of /proc/contiginfo. */
export function contiginfo(bounds: ContigBounds): string {
  const s = bounds.sysctl;
  const maps = bounds.mappings();
  let out = line('Policy:', bounds.vm.map_contig?.name ?? 'linux');
  out += line('Enforced:', bounds.enforced ? '1' : '0');
  out += sysctl_kb(bounds, 'MaxMapping:', 'contig_max_kbytes');
  out += sysctl_kb(bounds, 'TotalLimit:', 'contig_total_kbytes');
  out += sysctl_kb(bounds, 'UserLimit:', 'contig_user_kbytes');
  out += line('Group:', lu(s.contig_group));
  out += sysctl_kb(bounds, 'Reserve:', 'contig_reserve_kbytes');
  out += pages_kb('FreeBlocks:', contig_free_block_pages(bounds.vm.mm));
  out += pages_kb('InUse:', bounds.total);
  out += line('Mappings:', lu(maps.total));
  out += pages_kb('Unaccounted:', bounds.unaccounted_pages());
  const uids = [...bounds.charged.keys()].sort((a, b) => a - b);
  for (const uid of uids) {
    const pages = bounds.charged.get(uid) ?? 0;
    out += `${`Uid${uid}:`.padEnd(16)}${lu_w(pages * 4, 8)} kB ${lu_w(maps.per_uid.get(uid) ?? 0, 5)}\n`;
  }
  return out;
}

/**
 * /proc/<pid>/contig (mode 0400, the ptrace read check of pagemap): the query call for MAP_CONTIG
 * mappings, best effort above all — not a Linux file. One block per VM_CONTIG VMA: its range as
 * maps shows it, the policy that made it, the pages it still holds and their physical segments,
 * then one line per segment: first pfn in hex and pages, in page-offset order. PFNs read as 0
 * without CAP_SYS_ADMIN, as pagemap's do. Format in docs/contiginfo.md.
 */
export function proc_pid_contig(vm: Vm, mm: MmStruct, show_pfn: boolean): string {
  let out = '';
  mm.mt.iterate(0, Number.POSITIVE_INFINITY, (start, end, vma) => {
    if (!(vm.vmas.vm_flags[vma] & VM_CONTIG)) return;
    const backing = vm.contig_backings[vm.vmas.vm_private_data[vma]];
    const segs: Array<[number, number]> = [];
    let pages = 0;
    for (let addr = start; backing && addr < end; addr += PAGE_SIZE) {
      const pfn = backing.pfns[vm.vmas.linear_page_index(vma, addr)];
      if (pfn < 0) continue;
      pages++;
      const last = segs[segs.length - 1];
      if (last && last[0] + last[1] === pfn) last[1]++;
      else segs.push([pfn, 1]);
    }
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    out += `${hex(start)}-${hex(end)} policy=${backing?.policy.name ?? 'none'} pages=${pages} segments=${segs.length}\n`;
    for (const [pfn, n] of segs) out += `  ${(show_pfn ? pfn : 0).toString(16).padStart(10, '0')} ${n}\n`;
  });
  return out;
}
