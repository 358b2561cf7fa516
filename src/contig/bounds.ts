/**
 * MAP_CONTIG's admin bounds: what Michal Hocko found missing in the 2017 RFC ("without bounds to
 * the size and no pre-allowed amount by an admin", 20171016082456.no6ux63uy2rmj4fe@dhcp22). The
 * admission of the `rfc` and `bounded` policies (map_contig.ts) charges every contiguous page to
 * the user who mapped it, and under `bounded` refuses what the admin's sysctls do not allow:
 *
 * | sysctl (vm.)          | bound                                            | refusal |
 * |-----------------------|--------------------------------------------------|---------|
 * | contig_max_kbytes     | one mapping's size                               | EINVAL  |
 * | contig_group          | who may map: that gid (primary) or CAP_IPC_LOCK  | EPERM   |
 * | contig_user_kbytes    | one uid's contiguous memory, all its processes   | EAGAIN  |
 * | contig_total_kbytes   | all MAP_CONTIG memory of the machine             | EAGAIN  |
 * | contig_reserve_kbytes | free pageblocks the kernel keeps for itself      | ENOMEM  |
 *
 * Accounting is always on, so /proc/contiginfo is right under `rfc` too; only `bounded` refuses.
 * The POC (`rfc-poc`) has no admission at all: its mappings are not charged (contiginfo shows
 * them as Unaccounted). Defaults, their rationale and the reserve guard's arithmetic are in
 * docs/contiginfo.md.
 */
import { errnos } from '../lib/errno.ts';
import type { MM } from '../mm/mm.ts';
import {
  MIGRATE_CMA,
  NR_PAGE_ORDERS,
  pageblock_nr_pages,
  pageblock_order,
  ZONE_NORMAL,
} from '../mm/mmzone.ts';
import { free_list_count } from '../mm/page_alloc/freelist.ts';
import { NR_FREE_PAGES_BLOCKS } from '../mm/vmstat_items.ts';
import { CAP_IPC_LOCK } from '../vm/uapi.ts';
import type { ContigCaller, MapContigPolicy, Vm } from '../vm/vm.ts';
import { type ContigAdmission, type MapContigPolicyName, map_contig_policy } from './map_contig.ts';

/** What vm.contig_policy accepts: the MAP_CONTIG policies, or `linux` (the flag is unknown). */
export const CONTIG_POLICY_NAMES = ['linux', 'rfc-poc', 'rfc', 'bounded'] as const;
export type ContigPolicyName = (typeof CONTIG_POLICY_NAMES)[number];

/** vm.contig_group's value for "no gate": any user may map contiguous memory. */
export const CONTIG_GROUP_ANY = -1;
/** The default per-mapping maximum: 1 GiB, the largest page (and hugetlb pool unit) of x86-64. */
export const CONTIG_MAX_KBYTES_DEFAULT = 1 << 20;
/** The default system-wide cap, percent of RAM: CONFIG_CMA_SIZE_PERCENTAGE's default (10). */
export const CONTIG_TOTAL_PERCENT = 10;
/** The default per-user quota as a fraction of the system-wide cap: no user takes more than a quarter. */
export const CONTIG_USER_SHARE = 4;

/** The sysctls, as written: kilobytes (unsigned long) and a gid (int, -1 for any). */
export interface ContigSysctls {
  contig_max_kbytes: number;
  contig_total_kbytes: number;
  contig_user_kbytes: number;
  contig_group: number;
  contig_reserve_kbytes: number;
}

const EINVAL = -errnos.EINVAL;
const EPERM = -errnos.EPERM;
const EAGAIN = -errnos.EAGAIN;
const ENOMEM = -errnos.ENOMEM;

/** Pages as kB. */
const kb = (pages: number): number => pages * 4;

/**
 * Free pages in blocks of order >= pageblock_order that the kernel's own allocations can use:
 * NR_FREE_PAGES_BLOCKS (6.18's count of free, non-isolated blocks of pageblock size or more) of
 * ZONE_NORMAL and below, less the CMA blocks among them (no unmovable allocation may take those).
 * ZONE_MOVABLE is left out for the same reason, as set_recommended_min_free_kbytes() leaves it.
 */
export function contig_free_block_pages(mm: MM): number {
  let pages = 0;
  for (const zone of mm.zones) {
    if (zone.zone_idx > ZONE_NORMAL) continue;
    pages += zone.vm_stat[NR_FREE_PAGES_BLOCKS];
    for (let order = pageblock_order; order < NR_PAGE_ORDERS; order++)
      pages -= free_list_count(mm, zone, order, MIGRATE_CMA) << order;
  }
  return pages;
}

/**
 * The most free block memory a request of `pages` can cost the kernel, in pages: every pageblock
 * the run may touch stops being a free pageblock-sized block. A power of two of a pageblock or
 * more is naturally aligned (alloc_contig_pages() tries ranges aligned to the size; best effort
 * takes buddy blocks), so it touches exactly its own pageblocks; any other size may straddle one
 * more.
 */
export function contig_reserve_estimate(pages: number): number {
  const blocks = Math.ceil(pages / pageblock_nr_pages) * pageblock_nr_pages;
  const aligned = pages >= pageblock_nr_pages && (pages & (pages - 1)) === 0;
  return aligned ? blocks : blocks + pageblock_nr_pages;
}

/**
 * The admission of a machine's MAP_CONTIG policies: per-uid and total charges in pages, the
 * admin's sysctls, and the policies it admits for (policy(), one per name).
 */
export class ContigBounds implements ContigAdmission {
  readonly sysctl: ContigSysctls;
  /** Pages charged per uid (no entry at 0). */
  readonly charged = new Map<number, number>();
  /** Pages charged to all users. */
  total = 0;
  /** Why the last admit() failed: one sentence naming the bound and the numbers. */
  refusal = '';
  /** The policies made by policy(), one per name. */
  readonly policies: MapContigPolicy[] = [];

  constructor(readonly vm: Vm) {
    const mm = vm.mm;
    const total = Math.floor((kb(mm.totalram_pages) * CONTIG_TOTAL_PERCENT) / 100);
    this.sysctl = {
      contig_max_kbytes: CONTIG_MAX_KBYTES_DEFAULT,
      contig_total_kbytes: total,
      contig_user_kbytes: Math.floor(total / CONTIG_USER_SHARE),
      // hugetlb_shm_group's default: the root group (and CAP_IPC_LOCK) only.
      contig_group: 0,
      // The kernel's own figure for the free pageblocks anti-fragmentation and THP need
      // (set_recommended_min_free_kbytes(), or calculate_min_free_kbytes() without THP).
      contig_reserve_kbytes: mm.sysctl.min_free_kbytes,
    };
  }

  /** The policy named `name` admitted by these bounds (null for `linux`), made once per name. */
  policy(name: ContigPolicyName): MapContigPolicy | null {
    if (name === 'linux') return null;
    const have = this.policies.find((p) => p.name === name);
    if (have) return have;
    const p = map_contig_policy(this.vm.mm, name as MapContigPolicyName, this);
    this.policies.push(p);
    return p;
  }

  /**
   * Whether `policy`'s mappings are charged here: made by policy(), and not the POC's
   * (map_contig_policy() gives `rfc-poc` no admission, as the POC had none).
   */
  charges(policy: MapContigPolicy): boolean {
    return policy.name !== 'rfc-poc' && this.policies.includes(policy);
  }

  /** The machine's policy refuses what the bounds do not allow (`bounded`); others only count. */
  get enforced(): boolean {
    return this.vm.map_contig?.name === 'bounded';
  }

  /** Charge `pages` to the caller, or -errno (and `refusal`) when a bound refuses them. */
  admit(caller: ContigCaller, pages: number): number {
    if (this.enforced) {
      const err = this.check(caller, pages);
      if (err) return err;
    }
    this.charged.set(caller.uid, (this.charged.get(caller.uid) ?? 0) + pages);
    this.total += pages;
    return 0;
  }

  /** `pages` of `uid`'s left their mappings (or never made it into one). */
  release(uid: number, pages: number): void {
    const left = (this.charged.get(uid) ?? 0) - pages;
    if (left === 0) this.charged.delete(uid);
    else this.charged.set(uid, left); // negative only if a caller double-releases: contig_check() says so
    this.total -= pages;
  }

  /** The bounds in order: the request itself, who asks, how much they and everyone hold, the kernel's share. */
  private check(caller: ContigCaller, pages: number): number {
    const s = this.sysctl;
    const want = kb(pages);
    if (want > s.contig_max_kbytes)
      return this.refuse(
        EINVAL,
        `the mapping's ${want} kB is above vm.contig_max_kbytes (${s.contig_max_kbytes} kB)`,
      );
    // kernel: fs/hugetlbfs/inode.c can_do_hugetlb_shm(), with the primary gid for in_group_p().
    if (s.contig_group !== CONTIG_GROUP_ANY && caller.gid !== s.contig_group && !caller.capable(CAP_IPC_LOCK))
      return this.refuse(
        EPERM,
        `uid ${caller.uid} (gid ${caller.gid}) is not in vm.contig_group (gid ${s.contig_group}) and lacks CAP_IPC_LOCK`,
      );
    // Per user, across all its processes (as user_shm_lock() charges ucounts, not one mm).
    const mine = kb(this.charged.get(caller.uid) ?? 0);
    if (mine + want > s.contig_user_kbytes)
      return this.refuse(
        EAGAIN,
        `uid ${caller.uid} holds ${mine} kB; ${want} kB more exceeds vm.contig_user_kbytes (${s.contig_user_kbytes} kB)`,
      );
    const all = kb(this.total);
    if (all + want > s.contig_total_kbytes)
      return this.refuse(
        EAGAIN,
        `MAP_CONTIG memory in use is ${all} kB; ${want} kB more exceeds vm.contig_total_kbytes (${s.contig_total_kbytes} kB)`,
      );
    const free = kb(contig_free_block_pages(this.vm.mm));
    const cost = kb(contig_reserve_estimate(pages));
    if (free - cost < s.contig_reserve_kbytes)
      return this.refuse(
        ENOMEM,
        `free memory in blocks of order >= ${pageblock_order} is ${free} kB; this mapping may take ${cost} kB of it, leaving less than vm.contig_reserve_kbytes (${s.contig_reserve_kbytes} kB)`,
      );
    return 0;
  }

  private refuse(err: number, why: string): number {
    this.refusal = why;
    return err;
  }

  /** Live charged mappings (backings of this admission's policies), per uid and in all. */
  mappings(): { total: number; per_uid: Map<number, number> } {
    const per_uid = new Map<number, number>();
    let total = 0;
    for (const b of this.vm.contig_backings) {
      if (!b || !this.charges(b.policy)) continue;
      per_uid.set(b.uid, (per_uid.get(b.uid) ?? 0) + 1);
      total++;
    }
    return { total, per_uid };
  }

  /** Pages still mapped by live backings no admission charged (the POC's). */
  unaccounted_pages(): number {
    let pages = 0;
    for (const b of this.vm.contig_backings) if (b && !this.charges(b.policy)) pages += b.mapped;
    return pages;
  }
}

/**
 * The accounting agrees with the mappings: per uid and in all, the pages charged are the mapped
 * pages of the live backings of the admission's policies charged to that uid.
 */
export function contig_check(bounds: ContigBounds): string[] {
  const out: string[] = [];
  const mapped = new Map<number, number>();
  let total = 0;
  for (const b of bounds.vm.contig_backings) {
    if (!b || !bounds.charges(b.policy)) continue;
    mapped.set(b.uid, (mapped.get(b.uid) ?? 0) + b.mapped);
    total += b.mapped;
  }
  const uids = new Set([...mapped.keys(), ...bounds.charged.keys()]);
  for (const uid of [...uids].sort((a, b) => a - b)) {
    const c = bounds.charged.get(uid) ?? 0;
    const m = mapped.get(uid) ?? 0;
    if (c !== m) out.push(`contig: uid ${uid} charged ${c} pages but its MAP_CONTIG mappings hold ${m}`);
    if (c < 0) out.push(`contig: uid ${uid} charged ${c} pages (released more than admitted)`);
  }
  if (bounds.total !== total)
    out.push(`contig: ${bounds.total} pages charged in all but MAP_CONTIG mappings hold ${total}`);
  return out;
}
