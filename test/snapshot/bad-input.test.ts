/**
 * Bad snapshots: each kind of damage gives one SnapshotError that names the file, before any
 * hostile size is allocated or read.
 */
import { appendFileSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { SnapshotError } from '../../src/snapshot/manifest.ts';
import { readSnapshot } from '../../src/snapshot/read.ts';
import { cleanupScratch, fixtureCopy, scratch, tarOf } from './helpers.ts';

afterAll(cleanupScratch, 60_000);

/** readSnapshot must reject with a SnapshotError for `file` whose reason matches. */
async function rejects(dir: string, file: string, reason: RegExp): Promise<void> {
  const e = await readSnapshot(dir).then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'no error').toBeInstanceOf(SnapshotError);
  expect((e as SnapshotError).file).toBe(file);
  expect((e as SnapshotError).reason).toMatch(reason);
  expect((e as SnapshotError).message.startsWith(`${file}: `)).toBe(true);
}

const manifestOf = (dir: string) => JSON.parse(readFileSync(join(dir, 'snapshot.json'), 'utf8'));
const writeManifest = (dir: string, m: unknown) =>
  writeFileSync(join(dir, 'snapshot.json'), JSON.stringify(m));
/** Replace a file and drop it from the manifest's size checks. */
function replace(dir: string, path: string, body: Buffer | string): void {
  writeFileSync(join(dir, path), body);
  const m = manifestOf(dir);
  m.files = m.files.filter((f: { path: string }) => f.path !== path);
  writeManifest(dir, m);
}

describe('readSnapshot refuses bad snapshots with one error naming the file', () => {
  it('a snapshot without zoneinfo', async () => {
    const d = fixtureCopy();
    rmSync(join(d, 'proc/zoneinfo'));
    const m = manifestOf(d);
    m.files = m.files.filter((f: { path: string }) => f.path !== 'proc/zoneinfo');
    writeManifest(d, m);
    await rejects(d, 'proc/zoneinfo', /missing/);
  });

  it('a path that is not a snapshot at all', async () => {
    await rejects('/nonexistent/snapshot', '/nonexistent/snapshot', /cannot open/);
  });

  it('a truncated text file (size differs from the manifest)', async () => {
    const d = fixtureCopy();
    const b = readFileSync(join(d, 'proc/zoneinfo'));
    writeFileSync(join(d, 'proc/zoneinfo'), b.subarray(0, b.length >> 1));
    await rejects(d, 'proc/zoneinfo', /truncated/);
  });

  it('a file the manifest lists that is absent', async () => {
    const d = fixtureCopy();
    rmSync(join(d, 'proc/vmstat'));
    await rejects(d, 'proc/vmstat', /listed in snapshot.json but absent/);
  });

  it('a truncated kpageflags.gz', async () => {
    const d = fixtureCopy();
    const b = readFileSync(join(d, 'proc/kpageflags.gz'));
    replace(d, 'proc/kpageflags.gz', b.subarray(0, b.length - 100));
    await rejects(d, 'proc/kpageflags.gz', /corrupt or truncated/);
  });

  it('a corrupt gzip stream', async () => {
    const d = fixtureCopy();
    const b = Buffer.from(readFileSync(join(d, 'proc/kpagecount.gz')));
    for (let i = 20; i < 200; i++) b[i] ^= 0x5a;
    replace(d, 'proc/kpagecount.gz', b);
    await rejects(d, 'proc/kpagecount.gz', /corrupt or truncated/);
  });

  it('kpageflags covering fewer PFNs than the ranges', async () => {
    const d = fixtureCopy();
    const raw = gunzipSync(readFileSync(join(d, 'proc/kpageflags.gz')));
    replace(d, 'proc/kpageflags.gz', gzipSync(raw.subarray(0, raw.length - 8 * 512)));
    await rejects(d, 'proc/kpageflags.gz', /truncated/);
  });

  it('kpageflags and kpagecount of different sizes (no manifest)', async () => {
    const d = fixtureCopy();
    rmSync(join(d, 'snapshot.json'));
    const raw = gunzipSync(readFileSync(join(d, 'proc/kpagecount.gz')));
    writeFileSync(join(d, 'proc/kpagecount.gz'), gzipSync(raw.subarray(0, raw.length - 8 * 100)));
    await rejects(d, 'proc/kpagecount.gz', /must cover the same PFNs/);
  });

  it('kpageflags without kpagecount', async () => {
    const d = fixtureCopy();
    rmSync(join(d, 'snapshot.json'));
    rmSync(join(d, 'proc/kpagecount.gz'));
    await rejects(d, 'proc/kpageflags.gz', /kpagecount is missing/);
  });

  it('a gzip bomb: more PFNs than the ranges allow', async () => {
    const d = fixtureCopy();
    replace(d, 'proc/kpageflags.gz', gzipSync(Buffer.alloc(64 << 20)));
    await rejects(d, 'proc/kpageflags.gz', /holds more than the 32768 PFNs of its ranges/);
  });

  it('a plain kpageflags whose size is not a whole number of entries', async () => {
    const d = fixtureCopy();
    rmSync(join(d, 'snapshot.json'));
    rmSync(join(d, 'proc/kpageflags.gz'));
    writeFileSync(join(d, 'proc/kpageflags'), Buffer.alloc(8 * 100 + 3));
    await rejects(d, 'proc/kpageflags', /multiple of 8/);
  });

  it('both kpageflags and kpageflags.gz, and a .zst', async () => {
    const d = fixtureCopy();
    writeFileSync(join(d, 'proc/kpageflags'), Buffer.alloc(8));
    await rejects(d, 'proc/kpageflags', /both/);
    const e = fixtureCopy();
    writeFileSync(join(e, 'proc/kpagecount.zst'), Buffer.alloc(8));
    await rejects(e, 'proc/kpagecount.zst', /not supported/);
  });

  it('a buddyinfo with a zone zoneinfo does not have', async () => {
    const d = fixtureCopy();
    const t = readFileSync(join(d, 'proc/buddyinfo'), 'latin1');
    replace(d, 'proc/buddyinfo', t.replace('zone   Normal', 'zone  Movable'));
    await rejects(d, 'proc/buddyinfo', /zone Movable of node 0 is empty/);
    replace(d, 'proc/buddyinfo', t.replace('Node 0, zone   Normal', 'Node 1, zone   Normal'));
    await rejects(d, 'proc/buddyinfo', /not in proc\/zoneinfo/);
  });

  it('a buddyinfo missing a populated zone', async () => {
    const d = fixtureCopy();
    const t = readFileSync(join(d, 'proc/buddyinfo'), 'latin1');
    replace(
      d,
      'proc/buddyinfo',
      t
        .split('\n')
        .filter((l) => !l.includes('DMA32'))
        .join('\n'),
    );
    await rejects(d, 'proc/buddyinfo', /populated zone DMA32 of node 0 .* has no line/);
  });

  it('a buddyinfo with more free pages than the zone manages', async () => {
    const d = fixtureCopy();
    const t = readFileSync(join(d, 'proc/buddyinfo'), 'latin1');
    replace(d, 'proc/buddyinfo', t.replace(/(zone\s+DMA\s+)(\d+)/, '$1999999999'));
    await rejects(d, 'proc/buddyinfo', /more than its \d+ managed pages/);
  });

  it('a zoneinfo with garbage, and with present > spanned', async () => {
    const d = fixtureCopy();
    const t = readFileSync(join(d, 'proc/zoneinfo'), 'latin1');
    replace(d, 'proc/zoneinfo', t.replace('pagesets', 'pagesets\n\u0007 rm -rf /'));
    await rejects(d, 'proc/zoneinfo', /line \d+: not a zoneinfo line/);
    replace(d, 'proc/zoneinfo', t.replace(/spanned\s+\d+/, 'spanned  1'));
    await rejects(d, 'proc/zoneinfo', /does not hold/);
  });

  it('hostile sizes: a huge text file is refused from its size, without reading it', async () => {
    const d = fixtureCopy();
    const m = manifestOf(d);
    m.files = m.files.filter((f: { path: string }) => f.path !== 'proc/slabinfo');
    writeManifest(d, m);
    truncateSync(join(d, 'proc/slabinfo'), 8 * 2 ** 30); // sparse: 8 GiB of nothing
    await rejects(d, 'proc/slabinfo', /larger than the \d+ allowed/);
  });

  it('hostile sizes: manifest PFN ranges beyond the zones', async () => {
    const d = fixtureCopy();
    const m = manifestOf(d);
    m.pfn_ranges = [{ start_pfn: 0, nr_pages: 2 ** 50 }];
    writeManifest(d, m);
    await rejects(d, 'snapshot.json', /beyond the zones' end/);
  });

  it('hostile sizes: a zoneinfo spanning more than 1 TiB of PFNs', async () => {
    const d = fixtureCopy();
    const t = readFileSync(join(d, 'proc/zoneinfo'), 'latin1');
    replace(d, 'proc/zoneinfo', t.replace(/spanned\s+5505024/, 'spanned  999999999999'));
    await rejects(d, 'proc/zoneinfo', /beyond the \d+ this reader loads/);
  });

  it('a manifest that is not JSON, of another format, or with overlapping ranges', async () => {
    const d = fixtureCopy();
    writeFileSync(join(d, 'snapshot.json'), '{"format": "mapcontig-snap');
    await rejects(d, 'snapshot.json', /not valid JSON/);
    writeManifest(d, { format: 'other' });
    await rejects(d, 'snapshot.json', /"format"/);
    const e = fixtureCopy();
    const m = manifestOf(e);
    m.pfn_ranges = [
      { start_pfn: 1048576, nr_pages: 32768 },
      { start_pfn: 1048576 + 100, nr_pages: 10 },
    ];
    writeManifest(e, m);
    await rejects(e, 'snapshot.json', /pfn_ranges\[1\] overlaps/);
  });

  it('an osrelease that is not a release', async () => {
    const d = fixtureCopy();
    replace(d, 'proc/sys/kernel/osrelease', 'banana\n');
    await rejects(d, 'proc/sys/kernel/osrelease', /not a kernel release/);
  });

  it('without osrelease, a manifest release that is not one', async () => {
    const d = fixtureCopy();
    rmSync(join(d, 'proc/sys/kernel/osrelease'));
    const m = manifestOf(d);
    m.files = m.files.filter((f: { path: string }) => f.path !== 'proc/sys/kernel/osrelease');
    m.kernel_release = 'banana';
    writeManifest(d, m);
    await rejects(d, 'snapshot.json', /not a kernel release/);
  });

  it('a pagetypeinfo with more pageblocks than its zone spans', async () => {
    const d = fixtureCopy();
    const t = readFileSync(join(d, 'proc/pagetypeinfo'), 'latin1');
    replace(d, 'proc/pagetypeinfo', t.replace(/(Node 0, zone\s+DMA\s+)(\d+)/, '$1999999'));
    await rejects(d, 'proc/pagetypeinfo', /pageblocks in a zone that spans/);
  });

  it('a corrupt tar and a truncated tar', async () => {
    const dir = scratch();
    const tar = tarOf(fixtureCopy());
    const bad = Buffer.from(tar);
    bad[1] ^= 0xff; // the first header's name: checksum no longer matches
    writeFileSync(join(dir, 'bad.tar'), bad);
    await rejects(join(dir, 'bad.tar'), join(dir, 'bad.tar'), /checksum/);
    writeFileSync(join(dir, 'short.tar'), tar.subarray(0, 2000));
    await rejects(join(dir, 'short.tar'), join(dir, 'short.tar'), /truncated tar/);
    writeFileSync(join(dir, 'x.tar.gz'), Buffer.from([0x1f, 0x8b, 1, 2, 3]));
    await rejects(join(dir, 'x.tar.gz'), join(dir, 'x.tar.gz'), /not a readable gzip/);
  });

  it('flags a release does not define are a warning, naming the file', async () => {
    const d = fixtureCopy();
    const raw = Buffer.from(gunzipSync(readFileSync(join(d, 'proc/kpageflags.gz'))));
    raw.writeUInt32LE(1 << 29, 8 * 7); // PFN 7: bit 29, never defined
    replace(d, 'proc/kpageflags.gz', gzipSync(raw));
    const s = await readSnapshot(d);
    expect(s.warnings).toEqual([
      expect.stringMatching(/^proc\/kpageflags.gz: 1 PFNs carry bits 29, which Linux 6\.18/),
    ]);
  });

  it('an empty required file', async () => {
    const d = fixtureCopy();
    replace(d, 'proc/buddyinfo', '');
    await rejects(d, 'proc/buddyinfo', /empty/);
    appendFileSync(join(d, 'proc/buddyinfo'), 'Node 0, zone DMA 1 2 x\n');
    await rejects(d, 'proc/buddyinfo', /not a buddyinfo line/);
  });
});
