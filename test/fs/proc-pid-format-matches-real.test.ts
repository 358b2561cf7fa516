/**
 * /proc/<pid>/maps and /proc/<pid>/status have the real 6.18 kernel's format: compared with the
 * files a `cat` process printed about itself on our machines (test/fixtures/real-6.18-fc/maps and
 * status), with addresses and numbers masked. The address-space sysctls print the real
 * defaults byte for byte.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { Machine } from '../../src/sim/machine.ts';
import type { Process } from '../../src/vm/process.ts';
import { MAP_ANONYMOUS, MAP_FIXED, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../../src/vm/uapi.ts';
import { formatDiff } from './format.ts';

const FIXTURES = join(import.meta.dirname, '..', 'fixtures', 'real-6.18-fc');
const real = (name: string): string => readFileSync(join(FIXTURES, name), 'utf8');
const ANON = MAP_PRIVATE | MAP_ANONYMOUS;

/**
 * show_map_vma(): "%08lx-%08lx %c%c%c%c %08llx %02x:%02x %lu " (hex lowercase), then, for a
 * named VMA, spaces to column 72, a space and the name.
 */
const MAPS_LINE =
  /^([0-9a-f]{8,16})-([0-9a-f]{8,16}) [r-][w-][x-][ps] [0-9a-f]{8} [0-9a-f]{2}:[0-9a-f]{2} \d+ (.*)$/;

/** Problems with one maps line, or [] if it has the kernel's layout. */
function mapsLineProblems(line: string): string[] {
  const m = MAPS_LINE.exec(line);
  if (!m) return [`not a maps line: ${JSON.stringify(line)}`];
  const rest = m[3];
  if (rest === '') return []; // anonymous: the line ends with the space after the inode
  const prefix = line.length - rest.length;
  const name = rest.trimStart();
  const at = line.length - name.length;
  return at === Math.max(73, prefix) ? [] : [`name at column ${at}: ${JSON.stringify(line)}`];
}

/** A maps line with its addresses (and device and inode) masked. */
function maskMaps(line: string): string {
  return line.replace(/^[0-9a-f]+-[0-9a-f]+/, 'X-X').replace(/ [0-9a-f]{2}:[0-9a-f]{2} \d+ /, ' D:D I ');
}

let m: Machine;
let p: Process;
beforeAll(() => {
  m = Machine.boot({ memory: '24G', cpus: 2, kernel: { CMA: false }, seed: 1 });
  p = m.spawn();
  const heap = p.mmap(0x55b5224f8000, 33 * 4096, PROT_READ | PROT_WRITE, ANON | MAP_FIXED);
  Object.assign(p.mm, { start_brk: heap, brk: heap + 33 * 4096 });
  const a = p.mmap(0, 34 * 4096, PROT_READ | PROT_WRITE, ANON);
  p.touch(a, 34 * 4096, { write: true });
});

describe('/proc/<pid>/maps against a real one', () => {
  it('every real line and every line of ours has the show_map_vma() layout', () => {
    const problems = [
      ...real('maps').trimEnd().split('\n'),
      ...m.readFile(`/proc/${p.pid}/maps`).trimEnd().split('\n'),
    ].flatMap(mapsLineProblems);
    expect(problems).toEqual([]);
  });

  it('the [vsyscall] line is the real one, byte for byte', () => {
    const last = (t: string) => t.trimEnd().split('\n').at(-1);
    expect(last(m.readFile(`/proc/${p.pid}/maps`))).toBe(last(real('maps')));
  });

  it('anonymous and [heap] lines are the real ones with the addresses masked', () => {
    const ours = m.readFile(`/proc/${p.pid}/maps`).trimEnd().split('\n').map(maskMaps);
    const theirs = real('maps').trimEnd().split('\n').map(maskMaps);
    const anon = 'X-X rw-p 00000000 D:D I ';
    expect(theirs).toContain(anon);
    expect(ours).toContain(anon);
    const heap = theirs.find((l) => l.endsWith('[heap]'));
    expect(heap).toBeDefined();
    expect(ours).toContain(heap);
  });
});

describe('/proc/<pid>/status against a real one', () => {
  const labels = (t: string) => t.split('\n').map((l) => l.split(':')[0]);
  const lines = (t: string, re: RegExp) => t.split('\n').filter((l) => re.test(l));

  it('the same fields in the same order', () => {
    expect(labels(m.readFile(`/proc/${p.pid}/status`))).toEqual(labels(real('status')));
  });

  it('the memory lines have the same labels, tabs and %8lu widths', () => {
    const re = /^(Vm|Rss|HugetlbPages)/;
    expect(
      formatDiff(
        lines(real('status'), re).join('\n'),
        lines(m.readFile(`/proc/${p.pid}/status`), re).join('\n'),
      ),
    ).toEqual([]);
  });

  it('the lines a plain process shares with the real one are identical', () => {
    const same =
      /^(Umask|Ngid|TracerPid|Uid|Gid|Groups|Kthread|VmPin|RssShmem|VmSwap|HugetlbPages|CoreDumping|THP_enabled|untag_mask|Threads|Sig(Pnd|Blk|Ign|Cgt)|ShdPnd|CapInh|CapAmb|NoNewPrivs|Seccomp|Speculation|Cpus_allowed|Mems_allowed|(non)?voluntary_ctxt)/;
    expect(lines(m.readFile(`/proc/${p.pid}/status`), same)).toEqual(lines(real('status'), same));
  });

  it('the other lines have the real shapes', () => {
    const shape = (t: string) =>
      t
        .split('\n')
        .map((l) => l.replace(/[0-9a-f]{16}/g, 'H').replace(/\d+/g, '#'))
        .filter((l) => /^(Tgid|Pid|PPid|NS|SigQ|Cap(Prm|Eff|Bnd)|FDSize)/.test(l));
    expect(shape(m.readFile(`/proc/${p.pid}/status`))).toEqual(shape(real('status')));
  });
});

describe('address-space sysctls: the real defaults, byte for byte', () => {
  for (const name of [
    'max_map_count',
    'overcommit_memory',
    'overcommit_ratio',
    'overcommit_kbytes',
    'swappiness',
    'min_unmapped_ratio',
    'mmap_min_addr',
    'admin_reserve_kbytes',
  ]) {
    it(`/proc/sys/vm/${name}`, () => {
      expect(m.readFile(`/proc/sys/vm/${name}`)).toBe(real(`sysctl_vm_${name}`));
    });
  }

  it('/proc/sys/vm/user_reserve_kbytes has the real format (its value depends on free memory at boot)', () => {
    expect(
      formatDiff(real('sysctl_vm_user_reserve_kbytes'), m.readFile('/proc/sys/vm/user_reserve_kbytes')),
    ).toEqual([]);
  });
});
