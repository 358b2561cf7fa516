/**
 * The command line end to end: `mapcontig demo` tells its story (a simulated day whose holders of
 * memory fragment it, who holds what, what is still contiguous), deterministically, and bad flags
 * get one clear message and a non-zero exit.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { mapcontig, root } from './cli.ts';

const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });

/** The MiB figure printed after `label` (a "label   123 MiB" row or "label 123 MiB" in prose). */
function mib(text: string, label: string): number {
  const m = new RegExp(`${label.replace(/[()]/g, '\\$&')}\\s+(\\d+) MiB`).exec(text);
  if (!m) throw new Error(`no "${label} <n> MiB" in the demo's output`);
  return Number(m[1]);
}

/** The booted and after columns of a row of the "What changed" table. */
function row(text: string, label: string): [number, number] {
  const m = new RegExp(`^  ${label}\\s+(\\d+)(?: MiB)?\\s+(\\d+)(?: MiB)?$`, 'm').exec(text);
  if (!m) throw new Error(`no "${label}" row in the demo's output`);
  return [Number(m[1]), Number(m[2])];
}

describe('mapcontig demo', () => {
  it('boots, runs a simulated day, says who holds memory and what is contiguous, the same way every time', async () => {
    const demo = () => mapcontig('demo', '--memory', '1G', '--cpus', '2', '--seed', '3');
    const [a, b] = await Promise.all([demo(), demo()]);
    expect(a.stderr).toBe('');
    expect(a.status).toBe(0);
    const out = a.stdout;
    const at = [
      '1. Freshly booted',
      '2. After 24 simulated hours',
      '3. Who holds memory',
      '4. What changed',
      "5. The thread's request",
      '6. What Linux 6.18 does by itself',
    ].map((s) => out.indexOf(s));
    expect(at[0]).toBeGreaterThanOrEqual(0);
    for (let i = 1; i < at.length; i++) expect(at[i]).toBeGreaterThan(at[i - 1]);
    expect(out).toMatch(/Node 0, zone {4}DMA32 /);
    expect(out).toMatch(/and 48 batch jobs; \d+ processes still running/);

    // Every kind of holder the day sets up still holds memory at its end.
    expect(mib(out, 'Cached')).toBeGreaterThan(mib(out, 'Shmem'));
    expect(mib(out, 'Shmem')).toBeGreaterThan(0); // postgres shared_buffers
    expect(mib(out, 'AnonPages')).toBeGreaterThan(0);
    expect(mib(out, 'pinned')).toBeGreaterThan(0); // the RDMA registrations
    expect(mib(out, 'Slab')).toBeGreaterThan(0);
    expect(mib(out, 'VmallocUsed')).toBeGreaterThan(0);
    expect(mib(out, 'page_pool')).toBeGreaterThan(0);
    expect(mib(out, 'what reclaim could free:')).toBeGreaterThan(mib(out, 'MemFree'));
    // The page cache outgrew memory and reclaim trimmed it; the flusher wrote dirty pages back.
    expect(mib(out, 'kswapd reclaimed')).toBeGreaterThan(0);
    expect(Number(/; (\d+) MiB was written back to disk/.exec(out)?.[1])).toBeGreaterThan(0);

    // Fragmentation emerged: less free memory, in smaller pieces, with blocks pinned or held by the kernel.
    const [freeBooted, freeAfter] = row(out, 'free memory');
    expect(freeAfter).toBeLessThan(freeBooted);
    const [runBooted, runAfter] = row(out, 'longest contiguous free run');
    expect(runAfter).toBeLessThan(runBooted);
    const [pinnedBooted, pinnedAfter] = row(out, '2 MiB blocks with pinned pages');
    expect(pinnedBooted).toBe(0);
    expect(pinnedAfter).toBeGreaterThan(0);
    const [kernelBooted, kernelAfter] = row(out, '2 MiB blocks with kernel memory');
    expect(kernelAfter).toBeGreaterThan(kernelBooted);
    expect(out).toMatch(
      /\d+ MiB is free, but the longest physically contiguous free run is \d+ MiB\. .* could at best empty the \d+ 2 MiB blocks that hold only movable pages; \d+ more are held in place by pages pinned for RDMA and \d+ by kernel memory/,
    );
    // Every contender on its own clone, side by side: the POC cannot (4 MiB at most), the admin
    // bounds stop the user at its quota, the CMA heap reserved at boot delivers one usable buffer,
    // and best effort and the system heap deliver pieces.
    for (const name of [
      'rfc-poc',
      'rfc',
      'bounded',
      'best-effort',
      'hugetlb',
      'thp',
      '4k',
      'device',
      'dma-heap',
      'cma-heap',
    ])
      expect(out).toMatch(
        new RegExp(`^  ${name} +(ok|ENOMEM|EAGAIN|EPERM|EACCES) +[\\d.]+ ms +\\d+ +\\d+`, 'm'),
      );
    expect(out).toMatch(/^ {2}rfc-poc +ENOMEM/m);
    expect(out).toMatch(/^ {2}bounded +EAGAIN/m);
    expect(out).toMatch(
      /bounded: MAP_CONTIG \(bounded\): uid 1000 holds 0 kB; 65536 kB more exceeds vm\.contig_user_kbytes/,
    );
    expect(out).toMatch(/^ {2}cma-heap +ok .* \d+ × \d+M +usable/m);
    expect(out).toMatch(/^ {2}best-effort +ok .* \d+ pieces +[-+][\d.]+ pp +[-+]\d+ +[-+]\d+$/m);
    // What the kernel does by itself: a hugetlb pool, a driver's contiguous allocation,
    // compaction — each with its simulated latency and the pages it moved.
    expect(out).toMatch(/echo 32 > nr_hugepages +\d+ of 32 2 MiB pages in [\d.]+ ms/);
    expect(out).toMatch(
      /a driver's alloc_contig_pages\(64 MiB\) +(got it|failed \(NULL\)) in [\d.]+ ms, migrating \d+ pages/,
    );
    expect(out).toMatch(/echo 1 > compact_memory +[\d.]+ ms, migrating \d+ pages: \d+ free 2 MiB blocks/);
    expect(b.stdout).toBe(a.stdout);
  }, 60_000);

  it('refuses bad flags with one message', () => {
    const r = run('demo', '--memory', 'banana');
    expect(r.status).toBe(1);
    expect(r.stderr.trim()).toBe(
      "mapcontig: invalid machine configuration:\n  memory: 'banana' is not a size (expected e.g. 4096, 700M, 64G)",
    );
    const c = run('demo', '--cpus', 'two');
    expect(c.status).not.toBe(0);
    expect(c.stderr).toContain('--cpus must be a whole number >= 1');
  }, 60_000);
});
