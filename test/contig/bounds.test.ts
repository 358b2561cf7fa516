/**
 * MAP_CONTIG's admin bounds (src/contig/bounds.ts, docs/contiginfo.md), Hocko's "no bounds to the
 * size and no pre-allowed amount by an admin": every refusal and its errno under `bounded`, the
 * accounting under `rfc` (counted, never refused), quota coming back at munmap, partial munmap,
 * mremap and exit, the sysctls' write semantics, vm.contig_policy, the golden /proc/contiginfo,
 * random mixes of users and mappings, and the abuse case: one unprivileged user draining the
 * high-order blocks, which the POC lets happen and the bounds stop.
 */
import { fc, test } from '@fast-check/vitest';
import { describe, expect, it } from 'vitest';
import {
  CONTIG_MAX_KBYTES_DEFAULT,
  contig_check,
  contig_free_block_pages,
  contig_reserve_estimate,
} from '../../src/contig/bounds.ts';
import { ErrnoError } from '../../src/lib/errno.ts';
import { __GFP_NORETRY, __GFP_NOWARN, GFP_KERNEL } from '../../src/mm/gfp.ts';
import { Machine } from '../../src/sim/machine.ts';
import type { Process } from '../../src/vm/process.ts';
import {
  CAP_IPC_LOCK,
  MAP_ANONYMOUS,
  MAP_CONTIG,
  MAP_CONTIG_BEST_EFFORT,
  MAP_PRIVATE,
  PROT_READ,
  PROT_WRITE,
} from '../../src/vm/uapi.ts';
import { VM_CONTIG } from '../../src/vm/vma.ts';
import { expectGolden } from '../fs/golden.ts';
import { errno, MiB, NO_EARLY, PG } from '../vm/helpers.ts';

const RW = PROT_READ | PROT_WRITE;
const CONTIG = MAP_PRIVATE | MAP_ANONYMOUS | MAP_CONTIG;
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;
const USER_CRED = { uid: 1000, gid: 1000 };

type Policy = 'linux' | 'rfc-poc' | 'rfc' | 'bounded';

function boot(map_contig: Policy = 'bounded', sysctl: Record<string, string | number> = {}, memory = '1G') {
  return Machine.boot({ memory, cpus: 2, early: NO_EARLY, map_contig, sysctl });
}

/** An unprivileged process of `uid` (its own group unless `gid`), RLIMIT_MEMLOCK 1 GiB. */
function user(m: Machine, uid = 1000, opts: { gid?: number; caps?: number[] } = {}): Process {
  return m.spawn({ uid, gid: opts.gid ?? uid, caps: opts.caps ?? [], rlimits: { memlock: 2 ** 30 } });
}

/** The errno and message `fn` fails with. */
function refusal(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (e) {
    if (e instanceof ErrnoError) return { code: e.code, message: e.message };
    throw e;
  }
  return { code: 'ok', message: '' };
}

/** A /proc/contiginfo value (the number after the label). */
function info(m: Machine, label: string): number {
  const hit = m.readFile('/proc/contiginfo').match(new RegExp(`^${label}:\\s+(-?\\d+)`, 'm'));
  if (!hit) throw new Error(`no ${label} in /proc/contiginfo`);
  return Number(hit[1]);
}

/** kB charged to `uid`, from /proc/contiginfo (0 without a line). */
function uidKb(m: Machine, uid: number): number {
  const hit = m.readFile('/proc/contiginfo').match(new RegExp(`^Uid${uid}:\\s+(\\d+) kB`, 'm'));
  return hit ? Number(hit[1]) : 0;
}

const sysctl = (m: Machine, name: string): string => m.readFile(`/proc/sys/vm/${name}`);
const setSysctl = (m: Machine, name: string, v: string | number): void =>
  m.writeFile(`/proc/sys/vm/${name}`, String(v));
const freeOrder = (m: Machine, order: number): number => m.mm.zones.reduce((s, z) => s + z.nr_free[order], 0);

describe('defaults', () => {
  it('under bounded: 1 GiB per mapping, 10% of RAM in all, a quarter of that per user, root group, min_free_kbytes', () => {
    const m = boot();
    const total = Math.floor((m.mm.totalram_pages * 4 * 10) / 100);
    expect(sysctl(m, 'contig_policy')).toBe('bounded\n');
    expect(sysctl(m, 'contig_max_kbytes')).toBe(`${CONTIG_MAX_KBYTES_DEFAULT}\n`);
    expect(sysctl(m, 'contig_total_kbytes')).toBe(`${total}\n`);
    expect(sysctl(m, 'contig_user_kbytes')).toBe(`${Math.floor(total / 4)}\n`);
    expect(sysctl(m, 'contig_group')).toBe('0\n');
    expect(sysctl(m, 'contig_reserve_kbytes')).toBe(sysctl(m, 'min_free_kbytes'));
    expect(info(m, 'Enforced')).toBe(1);
    expect(m.listFiles('/proc/sys/vm')).toEqual(
      expect.arrayContaining(
        ['policy', 'max_kbytes', 'total_kbytes', 'user_kbytes', 'group', 'reserve_kbytes'].map(
          (n) => `/proc/sys/vm/contig_${n}`,
        ),
      ),
    );
  });

  it('vm.contig_policy reads the configured policy, linux included', () => {
    for (const p of ['linux', 'rfc-poc', 'rfc', 'bounded'] as const) {
      const m = boot(p);
      expect(sysctl(m, 'contig_policy')).toBe(`${p}\n`);
      expect(m.readFile('/proc/contiginfo')).toMatch(new RegExp(`^Policy: +${p}\\n`));
    }
  });

  it('the reserve estimate counts whole pageblocks, one more unless naturally aligned', () => {
    expect(contig_reserve_estimate(1)).toBe(1024);
    expect(contig_reserve_estimate(512)).toBe(512);
    expect(contig_reserve_estimate(1024)).toBe(1024);
    expect(contig_reserve_estimate(700)).toBe(1536);
    expect(contig_reserve_estimate(1536)).toBe(2048);
    expect(contig_reserve_estimate(256)).toBe(1024);
  });
});

describe('refusals under bounded', () => {
  it('EINVAL above vm.contig_max_kbytes, naming it and the numbers', () => {
    const m = boot('bounded', { contig_max_kbytes: 1024 });
    const p = m.spawn();
    const r = refusal(() => p.mmap(0, 2 * MiB, RW, CONTIG));
    expect(r.code).toBe('EINVAL');
    expect(r.message).toContain("the mapping's 2048 kB is above vm.contig_max_kbytes (1024 kB)");
    expect(errno(() => p.mmap(0, MiB, RW, CONTIG))).toBe('ok');
    // Checked first: it is about the request, whoever asks.
    expect(errno(() => user(m).mmap(0, 2 * MiB, RW, CONTIG))).toBe('EINVAL');
    expect(contig_check(m.contig)).toEqual([]);
  });

  it('EPERM outside vm.contig_group without CAP_IPC_LOCK; the group, the capability or -1 let in', () => {
    const m = boot();
    const outsider = user(m, 1000);
    const r = refusal(() => outsider.mmap(0, MiB, RW, CONTIG));
    expect(r.code).toBe('EPERM');
    expect(r.message).toContain(
      'uid 1000 (gid 1000) is not in vm.contig_group (gid 0) and lacks CAP_IPC_LOCK',
    );
    // Root's group, by primary gid; CAP_IPC_LOCK with any group.
    expect(errno(() => user(m, 1001, { gid: 0 }).mmap(0, MiB, RW, CONTIG))).toBe('ok');
    expect(errno(() => user(m, 1002, { caps: [CAP_IPC_LOCK] }).mmap(0, MiB, RW, CONTIG))).toBe('ok');
    setSysctl(m, 'contig_group', 1000);
    expect(errno(() => outsider.mmap(0, MiB, RW, CONTIG))).toBe('ok');
    expect(errno(() => user(m, 1003).mmap(0, MiB, RW, CONTIG))).toBe('EPERM');
    setSysctl(m, 'contig_group', -1);
    expect(errno(() => user(m, 1003).mmap(0, MiB, RW, CONTIG))).toBe('ok');
    expect(contig_check(m.contig)).toEqual([]);
  });

  it('EAGAIN past vm.contig_user_kbytes, across all the user’s processes', () => {
    const m = boot('bounded', { contig_group: -1, contig_user_kbytes: 3072 });
    const [a, b] = [user(m), user(m)];
    expect(errno(() => a.mmap(0, 2 * MiB, RW, CONTIG))).toBe('ok');
    const r = refusal(() => b.mmap(0, 2 * MiB, RW, CONTIG));
    expect(r.code).toBe('EAGAIN');
    expect(r.message).toContain(
      'uid 1000 holds 2048 kB; 2048 kB more exceeds vm.contig_user_kbytes (3072 kB)',
    );
    // Up to the limit exactly; another user has a quota of its own.
    expect(errno(() => b.mmap(0, MiB, RW, CONTIG))).toBe('ok');
    expect(errno(() => b.mmap(0, PG, RW, CONTIG))).toBe('EAGAIN');
    expect(errno(() => user(m, 1001).mmap(0, 2 * MiB, RW, CONTIG))).toBe('ok');
    // Root too: CAP_IPC_LOCK opens the gate, not the quota.
    expect(errno(() => m.spawn().mmap(0, 4 * MiB, RW, CONTIG))).toBe('EAGAIN');
    expect(uidKb(m, 1000)).toBe(3072);
    expect(contig_check(m.contig)).toEqual([]);
  });

  it('EAGAIN past vm.contig_total_kbytes, whoever holds the rest', () => {
    const m = boot('bounded', { contig_group: -1, contig_total_kbytes: 5120 });
    expect(errno(() => user(m, 1000).mmap(0, 2 * MiB, RW, CONTIG))).toBe('ok');
    expect(errno(() => user(m, 1001).mmap(0, 2 * MiB, RW, CONTIG))).toBe('ok');
    const r = refusal(() => user(m, 1002).mmap(0, 2 * MiB, RW, CONTIG));
    expect(r.code).toBe('EAGAIN');
    expect(r.message).toContain(
      'MAP_CONTIG memory in use is 4096 kB; 2048 kB more exceeds vm.contig_total_kbytes (5120 kB)',
    );
    expect(errno(() => user(m, 1002).mmap(0, MiB, RW, CONTIG))).toBe('ok');
    expect(info(m, 'InUse')).toBe(5120);
  });

  it('ENOMEM when the mapping could leave less than vm.contig_reserve_kbytes in free pageblocks', () => {
    const m = boot('bounded', { contig_group: -1 });
    const p = user(m);
    const free = contig_free_block_pages(m.mm) * 4;
    expect(info(m, 'FreeBlocks')).toBe(free);
    // A reserve that leaves room for exactly one 4 MiB request.
    setSysctl(m, 'contig_reserve_kbytes', free - 4096);
    // One page more straddles a third pageblock, and may start anywhere in the first: 4 in all.
    const r = refusal(() => p.mmap(0, 4 * MiB + PG, RW, CONTIG));
    expect(r.code).toBe('ENOMEM');
    expect(r.message).toContain(
      `free memory in blocks of order >= 9 is ${free} kB; this mapping may take 8192 kB of it, leaving less than vm.contig_reserve_kbytes (${free - 4096} kB)`,
    );
    expect(errno(() => p.mmap(0, 4 * MiB, RW, CONTIG))).toBe('ok');
    expect(errno(() => p.mmap(0, 4 * MiB, RW, CONTIG))).toBe('ENOMEM');
    expect(info(m, 'FreeBlocks')).toBeGreaterThanOrEqual(free - 4096);
    // 0 turns the guard off.
    setSysctl(m, 'contig_reserve_kbytes', 0);
    expect(errno(() => p.mmap(0, 4 * MiB, RW, CONTIG))).toBe('ok');
    m.checkInvariants();
  });

  it('a refused request maps nothing and charges nothing', () => {
    const m = boot('bounded', { contig_group: -1, contig_user_kbytes: 1024 });
    const p = user(m);
    const maps = m.readFile(`/proc/${p.pid}/maps`);
    const before = m.readFile('/proc/contiginfo');
    const committed = m.vm.vm_committed_as;
    expect(errno(() => p.mmap(0, 2 * MiB, RW, CONTIG))).toBe('EAGAIN');
    expect(m.readFile(`/proc/${p.pid}/maps`)).toBe(maps);
    expect(m.readFile('/proc/contiginfo')).toBe(before);
    expect(m.vm.vm_committed_as).toBe(committed);
    expect(p.mm.locked_vm).toBe(0);
    m.checkInvariants();
  });

  it('under rfc nothing is refused but everything is counted', () => {
    const m = boot('rfc', { contig_max_kbytes: 1024, contig_user_kbytes: 1024, contig_total_kbytes: 1024 });
    const p = user(m);
    expect(errno(() => p.mmap(0, 2 * MiB, RW, CONTIG))).toBe('ok');
    expect(errno(() => p.mmap(0, 2 * MiB, RW, CONTIG))).toBe('ok');
    expect(info(m, 'Enforced')).toBe(0);
    expect(uidKb(m, 1000)).toBe(4096);
    expect(info(m, 'Mappings')).toBe(2);
    m.checkInvariants();
  });

  it('mlock’s own checks still come first (EPERM with RLIMIT_MEMLOCK 0)', () => {
    const m = boot('bounded', { contig_group: -1 });
    const p = m.spawn({ uid: 1000, gid: 1000, rlimits: { memlock: 0 } });
    const r = refusal(() => p.mmap(0, MiB, RW, CONTIG));
    expect(r.code).toBe('EPERM');
    expect(r.message).not.toContain('contig_group');
  });
});

describe('quota comes back', () => {
  it('at munmap, partial munmap, a shrinking mremap and exit; a fork child holds nothing', () => {
    const m = boot('bounded', { contig_group: -1 });
    const p = user(m);
    const a = p.mmap(0, 2 * MiB, RW, CONTIG);
    const b = p.mmap(0, MiB, RW, CONTIG);
    expect(uidKb(m, 1000)).toBe(3072);
    p.munmap(a + 64 * PG, 64 * PG); // a hole: the mapping splits, still one backing
    expect(uidKb(m, 1000)).toBe(3072 - 256);
    expect(info(m, 'Mappings')).toBe(2);
    expect(contig_check(m.contig)).toEqual([]);
    p.mremap(b, MiB, MiB / 2, 0);
    expect(uidKb(m, 1000)).toBe(3072 - 256 - 512);
    const c = p.fork();
    expect(m.vm.vmas.vm_flags[c.mm.mt.walk(b)] ?? 0).toBe(0);
    expect(uidKb(m, 1000)).toBe(3072 - 256 - 512);
    p.munmap(a, 2 * MiB);
    expect(uidKb(m, 1000)).toBe(512);
    expect(info(m, 'Mappings')).toBe(1);
    p.exit();
    expect(uidKb(m, 1000)).toBe(0);
    expect(info(m, 'InUse')).toBe(0);
    expect(info(m, 'Mappings')).toBe(0);
    expect(m.readFile('/proc/contiginfo')).not.toContain('Uid1000');
    m.checkInvariants();
  });

  it('when the allocation fails after admission (rfc: no such run in any zone)', () => {
    const m = boot('rfc');
    const p = m.spawn();
    const r = refusal(() => p.mmap(0, 964 * MiB, RW, CONTIG));
    expect(r.code).toBe('ENOMEM');
    expect(r.message).toContain('alloc_contig_pages');
    expect(info(m, 'InUse')).toBe(0);
    expect(m.contig.charged.size).toBe(0);
    m.checkInvariants();
  });

  it('a freed quota can be used again', () => {
    const m = boot('bounded', { contig_group: -1, contig_user_kbytes: 2048 });
    const p = user(m);
    const a = p.mmap(0, 2 * MiB, RW, CONTIG);
    expect(errno(() => p.mmap(0, MiB, RW, CONTIG))).toBe('EAGAIN');
    p.munmap(a, MiB);
    expect(errno(() => p.mmap(0, MiB, RW, CONTIG))).toBe('ok');
    expect(errno(() => p.mmap(0, PG, RW, CONTIG))).toBe('EAGAIN');
    m.checkInvariants();
  });
});

describe('sysctl writes', () => {
  const KBYTES = ['contig_max_kbytes', 'contig_total_kbytes', 'contig_user_kbytes', 'contig_reserve_kbytes'];

  it.each(KBYTES)('%s parses as proc_doulongvec_minmax', (name) => {
    const m = boot();
    const before = sysctl(m, name);
    for (const bad of ['abc', '-1', '-0', '12abc', '+5', ' ', '18446744073709551616']) {
      expect(
        errno(() => setSysctl(m, name, bad)),
        JSON.stringify(bad),
      ).toBe('EINVAL');
      expect(sysctl(m, name)).toBe(before);
    }
    setSysctl(m, name, '0x100');
    expect(sysctl(m, name)).toBe('256\n');
    setSysctl(m, name, '  4096\n');
    expect(sysctl(m, name)).toBe('4096\n');
    setSysctl(m, name, '010 20');
    expect(sysctl(m, name)).toBe('8\n');
    setSysctl(m, name, '');
    expect(sysctl(m, name)).toBe('8\n');
    setSysctl(m, name, '18446744073709551615');
    expect(sysctl(m, name)).toBe('18446744073709551615\n');
    expect(errno(() => m.writeFile(`/proc/sys/vm/${name}`, '1', USER_CRED))).toBe('EACCES');
    expect(m.readFile(`/proc/sys/vm/${name}`, USER_CRED)).toBe('18446744073709551615\n');
  });

  it('contig_group is an int of at least -1', () => {
    const m = boot();
    for (const bad of ['-2', '2147483648', 'staff', '1.5']) {
      expect(
        errno(() => setSysctl(m, 'contig_group', bad)),
        bad,
      ).toBe('EINVAL');
      expect(sysctl(m, 'contig_group')).toBe('0\n');
    }
    setSysctl(m, 'contig_group', '2147483647');
    expect(sysctl(m, 'contig_group')).toBe('2147483647\n');
    setSysctl(m, 'contig_group', '-1\n');
    expect(sysctl(m, 'contig_group')).toBe('-1\n');
    expect(info(m, 'Group')).toBe(-1);
  });

  it('a limit of 0 refuses every request; one above the RAM never binds', () => {
    const m = boot('bounded', { contig_group: -1, contig_total_kbytes: 0 });
    expect(errno(() => m.spawn().mmap(0, PG, RW, CONTIG))).toBe('EAGAIN');
    setSysctl(m, 'contig_total_kbytes', '18446744073709551615');
    setSysctl(m, 'contig_user_kbytes', '18446744073709551615');
    expect(errno(() => m.spawn().mmap(0, 64 * MiB, RW, CONTIG))).toBe('ok');
  });

  it('contig_policy takes a name as proc_dostring writes it; anything else is EINVAL', () => {
    const m = boot('rfc');
    for (const bad of ['bogus', ' rfc', 'RFC', 'bounded ', 'boundedboundedbounded', '\nrfc']) {
      expect(
        errno(() => setSysctl(m, 'contig_policy', bad)),
        JSON.stringify(bad),
      ).toBe('EINVAL');
      expect(sysctl(m, 'contig_policy')).toBe('rfc\n');
    }
    setSysctl(m, 'contig_policy', 'bounded\n');
    expect(sysctl(m, 'contig_policy')).toBe('bounded\n');
    setSysctl(m, 'contig_policy', 'rfc-poc\nlinux');
    expect(sysctl(m, 'contig_policy')).toBe('rfc-poc\n');
    setSysctl(m, 'contig_policy', '');
    expect(sysctl(m, 'contig_policy')).toBe('rfc-poc\n');
    expect(errno(() => m.writeFile('/proc/sys/vm/contig_policy', 'rfc', USER_CRED))).toBe('EACCES');
  });

  it('the configuration can set them at boot; a bad value names the sysctl', () => {
    const m = boot('rfc', { contig_policy: 'bounded', contig_user_kbytes: 8192 });
    expect(sysctl(m, 'contig_policy')).toBe('bounded\n');
    expect(sysctl(m, 'contig_user_kbytes')).toBe('8192\n');
    expect(() => boot('rfc', { contig_policy: 'hugetlb' })).toThrow(/sysctl\.contig_policy: .*EINVAL/);
  });
});

describe('vm.contig_policy switching', () => {
  it('changes what the next mmap gets; existing mappings keep their own policy and charge', () => {
    const m = boot('rfc');
    const p = user(m);
    const a = p.mmap(0, 2 * MiB, RW, CONTIG); // under rfc: counted, uid 1000 is not in group 0
    expect(uidKb(m, 1000)).toBe(2048);
    setSysctl(m, 'contig_policy', 'bounded');
    expect(m.vm.map_contig?.name).toBe('bounded');
    expect(m.vm.contig_backings.find((b) => b)?.policy.name).toBe('rfc');
    expect(errno(() => p.mmap(0, MiB, RW, CONTIG))).toBe('EPERM');
    // What rfc charged counts against the quota now.
    setSysctl(m, 'contig_group', -1);
    setSysctl(m, 'contig_user_kbytes', 3072);
    expect(errno(() => p.mmap(0, 2 * MiB, RW, CONTIG))).toBe('EAGAIN');
    const b = p.mmap(0, MiB, RW, CONTIG);
    expect(info(m, 'Mappings')).toBe(2);
    // The POC's mappings are charged to no one: shown as Unaccounted.
    setSysctl(m, 'contig_policy', 'rfc-poc');
    const c = p.mmap(0, MiB, RW, CONTIG);
    expect(info(m, 'Unaccounted')).toBe(1024);
    expect(uidKb(m, 1000)).toBe(3072);
    // linux: the flag is unknown again, and ignored.
    setSysctl(m, 'contig_policy', 'linux');
    const d = p.mmap(0, MiB, RW, CONTIG);
    expect(m.vm.vmas.vm_flags[p.mm.mt.walk(d)] & VM_CONTIG).toBe(0);
    expect(info(m, 'Enforced')).toBe(0);
    // Back to bounded: the same policy object as before.
    setSysctl(m, 'contig_policy', 'bounded');
    expect(m.contig.policies.map((x) => x.name)).toEqual(['rfc', 'bounded', 'rfc-poc']);
    for (const [addr, len] of [
      [a, 2 * MiB],
      [b, MiB],
      [c, MiB],
    ])
      p.munmap(addr, len);
    expect(info(m, 'InUse')).toBe(0);
    expect(info(m, 'Unaccounted')).toBe(0);
    m.checkInvariants();
  });
});

describe('/proc/contiginfo', () => {
  it('is 0444 and its format is stable (golden)', () => {
    const m = boot('bounded', { contig_group: 100 });
    m.spawn().mmap(0, 4 * MiB, RW, CONTIG);
    const u = user(m, 1000, { gid: 100 });
    u.mmap(0, 2 * MiB, RW, CONTIG);
    const half = u.mmap(0, 700 * 1024, RW, CONTIG | MAP_CONTIG_BEST_EFFORT);
    u.munmap(half, 100 * 1024);
    user(m, 1001, { gid: 100 }).mmap(0, MiB, RW, CONTIG);
    expect(errno(() => user(m, 1002).mmap(0, MiB, RW, CONTIG))).toBe('EPERM');
    const text = m.readFile('/proc/contiginfo', USER_CRED);
    expectGolden('contiginfo', text);
    expect(errno(() => m.writeFile('/proc/contiginfo', '1'))).toBe('EACCES');
    // Every line is a 16-column label and an 8-column value.
    for (const line of text.trimEnd().split('\n'))
      expect(line).toMatch(/^[A-Za-z0-9]+: *.{8}( kB( {1,5}\d+)?)?$/);
    // 2 MiB, and 700 KiB less the 100 KiB unmapped; the best-effort mapping counts once.
    expect(text).toContain('\nUid0:               4096 kB     1\n');
    expect(text).toContain('\nUid1000:            2648 kB     2\n');
    expect(text).toContain('\nUid1001:            1024 kB     1\n');
  });
});

describe('random mixes of users and mappings', () => {
  // uid 1000 and 1001 are in vm.contig_group 100, 1002 is not, root has CAP_IPC_LOCK.
  const USERS = [
    { uid: 0, gid: 0 },
    { uid: 1000, gid: 100 },
    { uid: 1001, gid: 100 },
    { uid: 1002, gid: 1002 },
  ];
  const MAX_KB = 2048;
  const USER_KB = 4096;
  const TOTAL_KB = 8192;
  type Op =
    | { kind: 'spawn'; user: number }
    | { kind: 'contig'; proc: number; pages: number; best: boolean }
    | { kind: 'plain'; proc: number; pages: number }
    | { kind: 'munmap'; proc: number; map: number; from: number; pages: number }
    | { kind: 'shrink'; proc: number; map: number }
    | { kind: 'fork'; proc: number }
    | { kind: 'exit'; proc: number };
  const op: fc.Arbitrary<Op> = fc.oneof(
    fc.record({ kind: fc.constant('spawn' as const), user: fc.nat(3) }),
    {
      arbitrary: fc.record({
        kind: fc.constant('contig' as const),
        proc: fc.nat(7),
        pages: fc.integer({ min: 1, max: 640 }),
        best: fc.boolean(),
      }),
      weight: 4,
    },
    fc.record({
      kind: fc.constant('plain' as const),
      proc: fc.nat(7),
      pages: fc.integer({ min: 1, max: 64 }),
    }),
    {
      arbitrary: fc.record({
        kind: fc.constant('munmap' as const),
        proc: fc.nat(7),
        map: fc.nat(15),
        from: fc.nat(639),
        pages: fc.integer({ min: 1, max: 640 }),
      }),
      weight: 2,
    },
    fc.record({ kind: fc.constant('shrink' as const), proc: fc.nat(7), map: fc.nat(15) }),
    fc.record({ kind: fc.constant('fork' as const), proc: fc.nat(7) }),
    fc.record({ kind: fc.constant('exit' as const), proc: fc.nat(7) }),
  );

  test.prop([fc.array(op, { minLength: 10, maxLength: 40 })], { numRuns: 25 })(
    'quotas are never exceeded and the accounting matches the mappings',
    (ops) => {
      const m = boot(
        'bounded',
        {
          contig_group: 100,
          contig_max_kbytes: MAX_KB,
          contig_user_kbytes: USER_KB,
          contig_total_kbytes: TOTAL_KB,
        },
        '256M',
      );
      const procs: Array<{ p: Process; maps: Array<[number, number]> }> = [];
      const spawn = (u: (typeof USERS)[number]) =>
        procs.push({
          p: m.spawn({ ...u, caps: u.uid === 0 ? undefined : [], rlimits: { memlock: 2 ** 30 } }),
          maps: [],
        });
      for (const u of USERS) spawn(u);
      for (const o of ops) {
        if (o.kind === 'spawn') {
          spawn(USERS[o.user]);
          continue;
        }
        const pr = procs[o.proc % procs.length];
        if (pr.p.exited) continue;
        const { p, maps } = pr;
        const map = maps.length ? maps[('map' in o ? o.map : 0) % maps.length] : undefined;
        switch (o.kind) {
          case 'contig': {
            const len = o.pages * PG;
            const r = refusal(() => {
              const a = p.mmap(0, len, RW, CONTIG | (o.best ? MAP_CONTIG_BEST_EFFORT : 0));
              maps.push([a, len]);
            });
            // The bounds' errnos in their order; ENOMEM only from the reserve or the allocator.
            if (o.pages * 4 > MAX_KB) expect(r.code).toBe('EINVAL');
            else if (p.uid === 1002) expect(r.code).toBe('EPERM');
            else expect(['ok', 'EAGAIN', 'ENOMEM']).toContain(r.code);
            if (r.code === 'EAGAIN') expect(r.message).toMatch(/vm\.contig_(user|total)_kbytes/);
            break;
          }
          case 'plain': {
            const a = p.mmap(0, o.pages * PG, RW, ANON);
            p.touch(a, o.pages * PG, { write: true });
            maps.push([a, o.pages * PG]);
            break;
          }
          case 'munmap':
            if (map) {
              const from = o.from % (map[1] / PG);
              p.munmap(map[0] + from * PG, Math.min(o.pages, map[1] / PG - from) * PG);
            }
            break;
          case 'shrink':
            // A failure (the range was unmapped meanwhile) leaves everything as it was.
            if (map && map[1] > PG) errno(() => p.mremap(map[0], map[1], PG, 0));
            break;
          case 'fork':
            procs.push({ p: p.fork(), maps: [...maps] });
            break;
          case 'exit':
            p.exit();
            break;
        }
        for (const [uid, pages] of m.contig.charged) {
          expect(pages, `uid ${uid}`).toBeGreaterThan(0);
          expect(pages * 4, `uid ${uid}`).toBeLessThanOrEqual(USER_KB);
        }
        expect(m.contig.total * 4).toBeLessThanOrEqual(TOTAL_KB);
        expect(contig_check(m.contig)).toEqual([]);
      }
      expect(m.invariantViolations()).toEqual([]);
      for (const { p } of procs) if (!p.exited) p.exit();
      expect(m.contig.total).toBe(0);
      expect(m.contig.charged.size).toBe(0);
      expect(m.vm.contig_backings.every((b) => b === undefined)).toBe(true);
      expect(m.invariantViolations()).toEqual([]);
    },
  );
});

describe('abuse: one unprivileged user drains the high-order blocks', () => {
  /**
   * A 1 GiB machine whose kernel holds 200 MiB of unmovable pages with a free page between each
   * two (held by nothing, but never mergeable): ~200 MiB free in order-0 pieces keeps the zone
   * above its watermarks while the high-order blocks go. Then uid 1000, no capabilities,
   * RLIMIT_MEMLOCK 1 GiB, maps 4 MiB MAP_CONTIG chunks from four processes until refused.
   */
  function attack(map_contig: Policy, sysctl: Record<string, string | number> = {}, chunk = 4 * MiB) {
    const m = Machine.boot({ memory: '1G', cpus: 2, seed: 1, map_contig, sysctl });
    const held: number[] = [];
    m.instantly(() => {
      for (let i = 0; i < 100000; i++) {
        const pfn = m.kernel.alloc_pages(GFP_KERNEL, 0);
        if (pfn < 0) break;
        held.push(pfn);
      }
      held.sort((a, b) => a - b);
      for (const pfn of held) if (pfn % 2) m.kernel.free_pages(pfn, 0);
      m.kernel.drain_all_pages();
    });
    const blocks = freeOrder(m, 10);
    const procs = [0, 1, 2, 3].map(() => user(m));
    let taken = 0;
    let last = { code: 'ok', message: '' };
    for (let round = 0; last.code === 'ok' && round < 1000; round++) {
      for (const p of procs) {
        last = refusal(() => p.mmap(0, chunk, RW, CONTIG));
        if (last.code !== 'ok') break;
        taken += chunk / (4 * MiB);
      }
    }
    return { m, blocks, taken, last, reserve: Number(sysctl_(m, 'contig_reserve_kbytes')) };
  }
  const sysctl_ = (m: Machine, name: string) => m.readFile(`/proc/sys/vm/${name}`).trim();

  it('rfc-poc: only mlock limits apply, and it takes nearly every order-10 block', () => {
    const { m, blocks, taken, last, reserve } = attack('rfc-poc');
    expect(blocks).toBeGreaterThan(100);
    expect(last.code).toBe('ENOMEM');
    expect(taken).toBeGreaterThanOrEqual(Math.floor(blocks * 0.9));
    expect(freeOrder(m, 10)).toBeLessThanOrEqual(blocks - taken + 1);
    // Far below what the kernel wants kept in free pageblocks, while plenty of memory is free.
    expect(info(m, 'FreeBlocks')).toBeLessThan(reserve / 2);
    expect(info(m, 'Unaccounted')).toBe(taken * 4096);
    expect(info(m, 'InUse')).toBe(0);
    m.checkInvariants();
  });

  it('bounded, as configured: the group gate refuses the user outright', () => {
    const { m, taken, last } = attack('bounded');
    expect(taken).toBe(0);
    expect(last.code).toBe('EPERM');
    expect(info(m, 'InUse')).toBe(0);
  });

  it('bounded, the user let in: the per-user quota stops it across its four processes', () => {
    const { m, blocks, taken, last, reserve } = attack('bounded', { contig_group: 1000 });
    const quota = Number(sysctl_(m, 'contig_user_kbytes'));
    expect(last.code).toBe('EAGAIN');
    expect(last.message).toContain('vm.contig_user_kbytes');
    expect(taken).toBe(Math.floor(quota / 4096));
    expect(taken).toBeLessThan(blocks / 10);
    expect(uidKb(m, 1000)).toBe(taken * 4096);
    expect(info(m, 'FreeBlocks')).toBeGreaterThan(reserve);
    m.checkInvariants();
  });

  it('bounded, quotas lifted by the admin: the reserve guard keeps the kernel its free pageblocks', () => {
    const { m, blocks, taken, last, reserve } = attack(
      'bounded',
      { contig_group: -1, contig_user_kbytes: 2 ** 30, contig_total_kbytes: 2 ** 30 },
      32 * MiB,
    );
    expect(last.code).toBe('ENOMEM');
    expect(last.message).toContain('vm.contig_reserve_kbytes');
    expect(taken).toBeGreaterThan(blocks / 2);
    expect(info(m, 'FreeBlocks')).toBeGreaterThanOrEqual(reserve);
    // The kernel's own high-order allocations still find free blocks without compaction.
    for (const order of [9, 3])
      expect(m.kernel.alloc_pages(GFP_KERNEL | __GFP_NORETRY | __GFP_NOWARN, order)).toBeGreaterThanOrEqual(
        0,
      );
    m.checkInvariants();
  });
});
