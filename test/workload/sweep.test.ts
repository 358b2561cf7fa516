/**
 * Sweeps (src/workload/sweep.ts): the grid × seeds expand in the documented order, every kind of
 * mistake in a sweep file gets one message naming the file, line, column and field, and the
 * results do not depend on how the points were run: 1 or 2 workers, whole or in shards merged.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { parseScenario, ScenarioError } from '../../src/workload/scenario.ts';
import {
  expandGrid,
  formatFieldPath,
  inShard,
  loadSweep,
  mergeSweep,
  type PointRecord,
  parseFieldPath,
  parseShard,
  parseSweep,
  runSweep,
  SweepError,
  SweepOutputError,
} from '../../src/workload/sweep.ts';

const dir = mkdtempSync(join(tmpdir(), 'mapcontig-sweep-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** 256 MiB, one simulated minute: about a second a point. */
const TINY = readFileSync(
  fileURLToPath(new URL('../fixtures/scenarios/one-minute.yaml', import.meta.url)),
  'utf8',
);
writeFileSync(join(dir, 'tiny.yaml'), TINY);

/** A sweep file next to tiny.yaml. */
function sweepFile(name: string, text: string): string {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
}

/** The one-line message parsing `text` as a sweep file (x.yaml, beside tiny.yaml) throws. */
function error(text: string): string {
  const f = join(dir, 'x.yaml');
  try {
    parseSweep(text, f);
  } catch (e) {
    expect(e).toBeInstanceOf(ScenarioError);
    const msg = (e as Error).message;
    expect(msg).not.toContain('\n');
    return msg.replace(`${dir}/`, '');
  }
  throw new Error('the sweep was accepted');
}

describe('grid expansion', () => {
  it('nests the grid fields in file order, the first slowest, with the seeds innermost', () => {
    const points = expandGrid(
      [
        { path: 'a', values: [1, 2] },
        { path: 'b', values: ['x', 'y'] },
      ],
      [7, 8],
    );
    expect(points.map((p) => p.key)).toEqual([
      'a=1 b=x seed=7',
      'a=1 b=x seed=8',
      'a=1 b=y seed=7',
      'a=1 b=y seed=8',
      'a=2 b=x seed=7',
      'a=2 b=x seed=8',
      'a=2 b=y seed=7',
      'a=2 b=y seed=8',
    ]);
    expect(points.map((p) => p.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(points[5]).toEqual({ index: 5, key: 'a=2 b=x seed=8', params: { a: 2, b: 'x' }, seed: 8 });
  });

  it('with no grid, one point per seed; values that could be misread are quoted in keys', () => {
    expect(expandGrid([], [1, 2, 3]).map((p) => p.key)).toEqual(['seed=1', 'seed=2', 'seed=3']);
    const keys = expandGrid(
      [{ path: 'machine.hugetlb', values: ['hugepagesz=1G hugepages=2', { a: 1 }] }],
      [1],
    );
    expect(keys.map((p) => p.key)).toEqual([
      'machine.hugetlb="hugepagesz=1G hugepages=2" seed=1',
      'machine.hugetlb={"a":1} seed=1',
    ]);
  });

  it('shard I/N takes the points whose index % N == I-1', () => {
    expect(parseShard('2/3')).toEqual({ index: 2, count: 3 });
    for (const bad of ['0/2', '3/2', '1', '1/0', 'a/b', '1/2/3']) expect(parseShard(bad)).toBeNull();
    const idx = (i: number, n: number) =>
      [0, 1, 2, 3, 4, 5, 6].filter((p) => inShard(p, { index: i, count: n }));
    expect(idx(1, 3)).toEqual([0, 3, 6]);
    expect(idx(2, 3)).toEqual([1, 4]);
    expect(idx(3, 3)).toEqual([2, 5]);
    expect(inShard(5, null)).toBe(true);
  });

  it('field paths: keys, list indices and quoted keys', () => {
    expect(parseFieldPath('phases[1].workloads[0].params.forks_per_s')).toEqual([
      'phases',
      1,
      'workloads',
      0,
      'params',
      'forks_per_s',
    ]);
    expect(parseFieldPath("sysfs['/proc/sys/vm/compaction_proactiveness']")).toEqual([
      'sysfs',
      '/proc/sys/vm/compaction_proactiveness',
    ]);
    expect(formatFieldPath(['sysfs', '/proc/sys/vm/x'])).toBe("sysfs['/proc/sys/vm/x']");
    for (const bad of ['', 'machine..memory', '.machine', 'phases[x]', 'phases[1', '1abc', 'a b']) {
      expect(parseFieldPath(bad)).toBeNull();
    }
  });
});

describe('sweep files', () => {
  it("apply each point's values and seed to the scenario, which is checked again", () => {
    const s = loadSweep(
      sweepFile(
        'ok.yaml',
        `name: sizes
scenario: tiny.yaml
seeds: 2
grid:
  compare.request.bytes: [8M, 32M]
  phases[0].workloads[1].params.read_mb_s: [5]
  "sysfs['/proc/sys/vm/compaction_proactiveness']": [0]
`,
      ),
    );
    expect(s.name).toBe('sizes');
    expect(s.seeds).toEqual([1, 2]);
    expect(s.points.map((p) => p.key)).toEqual([
      "compare.request.bytes=8M phases[0].workloads[1].params.read_mb_s=5 sysfs['/proc/sys/vm/compaction_proactiveness']=0 seed=1",
      "compare.request.bytes=8M phases[0].workloads[1].params.read_mb_s=5 sysfs['/proc/sys/vm/compaction_proactiveness']=0 seed=2",
      "compare.request.bytes=32M phases[0].workloads[1].params.read_mb_s=5 sysfs['/proc/sys/vm/compaction_proactiveness']=0 seed=1",
      "compare.request.bytes=32M phases[0].workloads[1].params.read_mb_s=5 sysfs['/proc/sys/vm/compaction_proactiveness']=0 seed=2",
    ]);
    const p3 = parseScenario(s.points[3].text, 'p3');
    expect(p3.compare?.request.bytes).toBe(32 * 2 ** 20);
    expect(p3.phases[0].workloads[1].params).toEqual({ working_set: '32M', read_mb_s: 5 });
    expect(p3.sysfs).toEqual({ '/proc/sys/vm/compaction_proactiveness': '0' });
    expect(p3.seed).toBe(2);
    expect(p3.machine.seed).toBe(2);
    expect(s.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('the shipped example parses: five sizes × two seeds', () => {
    const s = loadSweep('scenarios/sweeps/thread-700m-sizes.yaml');
    expect(s.name).toBe('thread-700m-sizes');
    expect(s.points.map((p) => p.key).slice(0, 3)).toEqual([
      'compare.request.bytes=16M seed=1',
      'compare.request.bytes=16M seed=2',
      'compare.request.bytes=64M seed=1',
    ]);
    expect(s.points).toHaveLength(10);
  });

  it("run the scenario's own seed when there is no seeds:, and are named after the scenario", () => {
    const s = parseSweep('scenario: tiny.yaml\ngrid: { machine.cpus: [1, 2] }\n', join(dir, 'y.yaml'));
    expect(s.name).toBe('tiny-sweep');
    expect(s.points.map((p) => p.key)).toEqual(['machine.cpus=1 seed=5', 'machine.cpus=2 seed=5']);
  });

  it('an empty file', () => {
    expect(error('')).toBe(
      'x.yaml:1:1: the file is empty (a sweep needs at least scenario and grid or seeds)',
    );
  });
  it('YAML syntax', () => {
    expect(error('scenario: tiny.yaml\ngrid: [1, 2\n')).toMatch(/^x\.yaml:\d+:\d+: YAML syntax: /);
  });
  it('not a mapping', () => {
    expect(error('- tiny.yaml\n')).toBe('x.yaml:1:1: (top level): expected a mapping, got a list');
  });
  it('an unknown key, with a suggestion', () => {
    expect(error('scenario: tiny.yaml\nseed: 3\n')).toBe(
      "x.yaml:2:1: seed: unknown key 'seed' (did you mean 'seeds'?)",
    );
  });
  it('no scenario', () => {
    expect(error('seeds: 3\n')).toBe('x.yaml:1:1: scenario: is required');
  });
  it('a scenario that cannot be read', () => {
    expect(error('scenario: nope.yaml\nseeds: 2\n')).toBe(
      `x.yaml:1:11: scenario: cannot read '${dir}/nope.yaml': ENOENT`,
    );
  });
  it('a bad scenario is reported against the scenario file', () => {
    writeFileSync(join(dir, 'bad.yaml'), 'name: bad\nmachine: { memory: 1G }\nphases: []\n');
    expect(error('scenario: bad.yaml\n')).toBe('bad.yaml:3:9: phases: needs at least 1 entry');
  });
  it('seeds that are neither a count nor a list', () => {
    expect(error('scenario: tiny.yaml\nseeds: many\n')).toBe(
      "x.yaml:2:8: seeds: expected a count or a list of seeds, got 'many'",
    );
  });
  it('a seed count of 0', () => {
    expect(error('scenario: tiny.yaml\nseeds: 0\n')).toBe('x.yaml:2:8: seeds: must be at least 1, got 0');
  });
  it('a seed twice', () => {
    expect(error('scenario: tiny.yaml\nseeds: [1, 2, 1]\n')).toBe(
      'x.yaml:2:15: seeds[2]: seed 1 is already seeds[0]',
    );
  });
  it('a grid field without a list of values', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  machine.memory: 512M\n')).toBe(
      "x.yaml:3:19: grid['machine.memory']: expected a list, got '512M'",
    );
  });
  it('a grid field with no values', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  machine.memory: []\n')).toBe(
      "x.yaml:3:19: grid['machine.memory']: needs at least one value",
    );
  });
  it('a grid key that is not a field path', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  machine..memory: [1G]\n')).toMatch(
      /^x\.yaml:3:3: grid\['machine\.\.memory'\]: 'machine\.\.memory' is not a field path \(expected e\.g\. /,
    );
  });
  it('the seed in the grid', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  seed: [1, 2]\n')).toBe(
      "x.yaml:3:3: grid['seed']: the seed is swept by 'seeds:', not by the grid",
    );
  });
  it('two grid fields, one inside the other', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  machine: [{ memory: 1G }]\n  machine.memory: [1G]\n')).toBe(
      "x.yaml:4:3: grid['machine.memory']: 'machine.memory' overlaps 'machine': sweep one or the other",
    );
  });
  it('a value twice', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  machine.memory: [256M, 512M, 256M]\n')).toBe(
      "x.yaml:3:32: grid['machine.memory'][2]: 256M is already value [0]: every point would run twice",
    );
  });
  it('a list index past the end of the list', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  phases[2].duration: [1min]\n')).toBe(
      "x.yaml:3:3: grid['phases[2].duration']: point 0 (phases[2].duration=1min seed=5): phases has 1 entries, so there is no [2]",
    );
  });
  it('a path through a value that is not a mapping', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  machine.memory.size: [1G]\n')).toBe(
      "x.yaml:3:3: grid['machine.memory.size']: point 0 (machine.memory.size=1G seed=5): machine.memory is not a mapping",
    );
  });
  it('a value the scenario refuses, naming the point', () => {
    expect(error('scenario: tiny.yaml\nseeds: 2\ngrid:\n  machine.memory: [256M, 32M]\n')).toBe(
      "x.yaml:4:26: grid['machine.memory'][1]: point 2 (machine.memory=32M seed=1): machine.memory: at least 64M is needed",
    );
  });
  it('a misspelt field, with the scenario schema suggestion', () => {
    expect(error('scenario: tiny.yaml\ngrid:\n  machine.memroy: [1G]\n')).toBe(
      "x.yaml:3:20: grid['machine.memroy'][0]: point 0 (machine.memroy=1G seed=5): machine.memroy: unknown key 'memroy' (did you mean 'memory'?)",
    );
  });
  it('a combination that breaks another field blames the closest grid field', () => {
    expect(
      error('scenario: tiny.yaml\ngrid:\n  compare.request.bytes: [8M]\n  phases[0].duration: [2min, 30s]\n'),
    ).toBe(
      "x.yaml:4:30: grid['phases[0].duration'][1]: point 1 (compare.request.bytes=8M phases[0].duration=30s seed=5): events[1].at: '1min' is after the phases end (30s)",
    );
  });
});

/** The two files every whole sweep ends with. */
const results = (out: string) => ({
  json: readFileSync(join(out, 'sweep.json'), 'utf8'),
  csv: readFileSync(join(out, 'sweep.csv'), 'utf8'),
});

describe('running a sweep', () => {
  const file = sweepFile(
    'run.yaml',
    `name: run
description: two request sizes, two seeds
scenario: tiny.yaml
seeds: [1, 2]
grid:
  compare.request.bytes: [8M, 32M]
`,
  );
  const s = loadSweep(file);
  let one: { json: string; csv: string };

  it('on 1 worker and on 2 gives the same bytes; a point file per point, written as it finishes', async () => {
    const written: number[] = [];
    const a = await runSweep(s, { out: join(dir, 'w1'), workers: 1, onPoint: (r) => written.push(r.index) });
    expect(a).toMatchObject({ total: 4, selected: 4, resumed: 0, ran: 4, failed: 0, interrupted: false });
    // One worker runs them in order.
    expect(written).toEqual([0, 1, 2, 3]);
    one = results(join(dir, 'w1'));
    const b = await runSweep(s, { out: join(dir, 'w2'), workers: 2 });
    expect(b.ran).toBe(4);
    expect(results(join(dir, 'w2'))).toEqual(one);

    const r = JSON.parse(one.json);
    expect(r).toMatchObject({ format: 'mapcontig-sweep/1', name: 'run', ok: 4, failed: 0, seeds: [1, 2] });
    expect(r.points.map((p: PointRecord) => p.key)).toEqual(s.points.map((p) => p.key));
    const p = r.points[3];
    expect(p.error).toBeNull();
    expect(p.summary.compare.bytes).toBe(32 * 2 ** 20);
    expect(p.summary.compare.contenders.map((c: { name: string }) => c.name)).toEqual(['rfc', 'thp']);
    expect(p.summary.events.map((e: { action: string }) => e.action)).toEqual(['spawn', 'map_contig']);
    expect(p.summary.final.largest_free_block).toBeGreaterThan(0);
    // The point file holds the same record, with its format and the sweep's hash.
    const file3 = JSON.parse(readFileSync(join(dir, 'w1', 'points', '00003.json'), 'utf8'));
    expect(file3).toEqual({ format: 'mapcontig-sweep-point/1', sweep: s.hash, ...p });
    const lines = one.csv.trimEnd().split('\n');
    expect(lines).toHaveLength(5);
    expect(lines[0]).toMatch(
      /^index,key,compare\.request\.bytes,seed,error,end_ns,free_pages,unusable_index,fragmentation_index,largest_free_block,events\[0\]\.spawn\.ok,/,
    );
    expect(lines[4]).toMatch(/^3,compare\.request\.bytes=32M seed=2,32M,2,,/);
  });

  it('in shards, merged, gives the same bytes as one run; merge refuses what is not one sweep', async () => {
    const [a, b] = await Promise.all([
      runSweep(s, { out: join(dir, 's1'), workers: 1, shard: { index: 1, count: 2 } }),
      runSweep(s, { out: join(dir, 's2'), workers: 1, shard: { index: 2, count: 2 } }),
    ]);
    expect([a.selected, b.selected, a.merged, b.merged]).toEqual([2, 2, null, null]);
    mergeSweep([join(dir, 's2'), join(dir, 's1')], join(dir, 'merged'));
    expect(results(join(dir, 'merged'))).toEqual(one);

    expect(() => mergeSweep([join(dir, 's1')], join(dir, 'm2'))).toThrow(
      "2 of 4 points of sweep 'run' are missing: 1 (compare.request.bytes=8M seed=2), 3 (compare.request.bytes=32M seed=2)",
    );
    cpSync(join(dir, 's1'), join(dir, 's1-copy'), { recursive: true });
    expect(() =>
      mergeSweep([join(dir, 's1'), join(dir, 's2'), join(dir, 's1-copy')], join(dir, 'm2')),
    ).toThrow(
      `point 0 (compare.request.bytes=8M seed=1) is in both ${join(dir, 's1')} and ${join(dir, 's1-copy')}`,
    );
    const other = loadSweep(sweepFile('other.yaml', 'scenario: tiny.yaml\nseeds: 1\n'));
    await runSweep(other, { out: join(dir, 'other'), workers: 1, shard: { index: 2, count: 2 } });
    expect(() => mergeSweep([join(dir, 's1'), join(dir, 'other')], join(dir, 'm2'))).toThrow(
      /other holds sweep 'tiny-sweep' \([0-9a-f]{12}\) but .*s1 holds 'run' \([0-9a-f]{12}\): not shards of one sweep/,
    );
    expect(() => mergeSweep([dir], join(dir, 'm2'))).toThrow(SweepOutputError);
  });

  it('resumes: keeps valid points, runs the missing, and refuses a directory of another sweep', async () => {
    const out = join(dir, 'resume');
    cpSync(join(dir, 'w1'), out, { recursive: true });
    rmSync(join(out, 'sweep.json'));
    // What a run killed while writing leaves: a tmp file (removed); and a torn or foreign point
    // file, which only a hand could leave (run again).
    writeFileSync(join(out, 'points', '00001.json.tmp-123'), '{"format":');
    writeFileSync(join(out, 'points', '00001.json'), '{"format":"mapcontig-sweep-point/1"');
    await expect(runSweep(s, { out, workers: 1 })).rejects.toThrow(
      `${out} already holds sweep results; pass --resume to continue that sweep, or choose another --out`,
    );
    const r = await runSweep(s, { out, workers: 2, resume: true });
    expect(r).toMatchObject({ resumed: 3, ran: 1 });
    expect(readdirSync(join(out, 'points'))).toEqual([
      '00000.json',
      '00001.json',
      '00002.json',
      '00003.json',
    ]);
    expect(results(out)).toEqual(one);
    const changed = parseSweep(`${readFileSync(file, 'utf8')}# changed\n`, file);
    await expect(runSweep(changed, { out, resume: true })).rejects.toThrow(
      /holds sweep 'run' \([0-9a-f]{12}\), not 'run' \([0-9a-f]{12}\): the sweep or scenario file changed since/,
    );
  });
});

describe('a point that throws', () => {
  it('is recorded as its error, the others run; a resume keeps it, but runs a crashed one again', async () => {
    // compaction_proactiveness takes 0..100: the boot-time write of 1000 fails the run.
    const s = loadSweep(
      sweepFile(
        'throws.yaml',
        `scenario: tiny.yaml
grid:
  "sysfs['/proc/sys/vm/compaction_proactiveness']": [1000]
  phases[0].duration: [1min]
`,
      ),
    );
    const out = join(dir, 'throws');
    const r = await runSweep(s, { out, workers: 1 });
    expect(r).toMatchObject({ ran: 1, failed: 1 });
    const rec = JSON.parse(readFileSync(join(out, 'points', '00000.json'), 'utf8')) as PointRecord;
    expect(rec.summary).toBeNull();
    expect(rec.error?.kind).toBe('thrown');
    expect(rec.error?.message).toMatch(/EINVAL/);
    expect(JSON.parse(results(out).json)).toMatchObject({ ok: 0, failed: 1 });

    expect((await runSweep(s, { out, workers: 1, resume: true })).ran).toBe(0);
    writeFileSync(
      join(out, 'points', '00000.json'),
      JSON.stringify({ ...rec, error: { kind: 'crashed', message: 'worker exited with code 1' } }),
    );
    const again = await runSweep(s, { out, workers: 1, resume: true });
    expect(again).toMatchObject({ resumed: 0, ran: 1, failed: 1 });
    expect(JSON.parse(readFileSync(join(out, 'points', '00000.json'), 'utf8')).error.kind).toBe('thrown');
  });
});

it('SweepError is a ScenarioError with the parts for programs', () => {
  const e = new SweepError('f.yaml', 2, 3, 'seeds', 'bad');
  expect(e).toBeInstanceOf(ScenarioError);
  expect([e.message, e.name]).toEqual(['f.yaml:2:3: seeds: bad', 'SweepError']);
});
