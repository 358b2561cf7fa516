/**
 * `mapcontig run`, `compare` and `proc` end to end, as a user runs them: exit codes, what is
 * printed where, the report folder, and one clear message for each kind of bad input.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mapcontig, type Ran } from './cli.ts';

const tiny = 'test/fixtures/scenarios/tiny.yaml';
const tmp = mkdtempSync(join(tmpdir(), 'mapcontig-cli-'));

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('mapcontig run', () => {
  let quiet: Ran;
  let json: Ran;
  let table: Ran;
  beforeAll(async () => {
    [quiet, json, table] = await Promise.all([
      mapcontig('run', tiny, '--out', join(tmp, 'quiet'), '--quiet'),
      mapcontig('run', tiny, '--out', join(tmp, 'json'), '--json'),
      mapcontig('run', tiny, '--out', join(tmp, 'table'), '--seed', '12'),
    ]);
  }, 120_000);

  it('writes the report folder and, with --quiet, prints nothing', () => {
    expect(quiet).toMatchObject({ status: 0, stdout: '', stderr: '' });
    const dir = join(tmp, 'quiet');
    for (const f of [
      'run.json',
      'samples.csv',
      'events.csv',
      'comparison.csv',
      'fragmentation.json',
      'report.md',
      'report.html',
    ])
      expect(existsSync(join(dir, f)), f).toBe(true);
    expect(readdirSync(join(dir, 'plots')).filter((f) => f.endsWith('.svg')).length).toBeGreaterThanOrEqual(
      4,
    );
  });

  it('prints the result as JSON with --json, the same as run.json, and the same for the same seed', () => {
    expect(json.status).toBe(0);
    const printed = JSON.parse(json.stdout);
    expect(printed).toEqual(JSON.parse(readFileSync(join(tmp, 'json', 'run.json'), 'utf8')));
    expect(printed.scenario).toMatchObject({ name: 'tiny', seed: 11 });
    expect(readFileSync(join(tmp, 'json', 'run.json'), 'utf8')).toBe(
      readFileSync(join(tmp, 'quiet', 'run.json'), 'utf8'),
    );
  });

  it('prints a summary, and --seed changes the run', () => {
    expect(table.status).toBe(0);
    expect(table.stdout).toMatch(/map_contig 2M/);
    expect(table.stdout).toMatch(/report: .*report\.html/);
    const seeded = JSON.parse(readFileSync(join(tmp, 'table', 'run.json'), 'utf8'));
    expect(seeded.scenario.seed).toBe(12);
    expect(JSON.stringify(seeded.samples)).not.toBe(JSON.stringify(JSON.parse(json.stdout).samples));
  });

  it('gives one line naming file, line and field for a bad scenario, and exit code 1', async () => {
    const r = await mapcontig('run', 'test/fixtures/scenarios/bad-duration.yaml', '--out', join(tmp, 'bad'));
    expect(r.status).toBe(1);
    expect(r.stderr).toBe(
      "mapcontig: test/fixtures/scenarios/bad-duration.yaml:5:15: phases[0].duration: 'forever' is not a duration (expected e.g. 500ms, 1.5s, 24h)\n",
    );
    expect(existsSync(join(tmp, 'bad'))).toBe(false);
  });

  it('says when the file cannot be read', async () => {
    const r = await mapcontig('run', 'no/such.yaml');
    expect(r.status).toBe(1);
    expect(r.stderr).toBe('mapcontig: no/such.yaml:1:1: cannot read: ENOENT\n');
  });

  it('exits 2 on bad usage, with a hint', async () => {
    const [unknown, seed, none] = await Promise.all([
      mapcontig('run', tiny, '--bogus'),
      mapcontig('run', tiny, '--seed', 'x'),
      mapcontig('run'),
    ]);
    for (const r of [unknown, seed, none]) {
      expect(r.status).toBe(2);
      expect(r.stderr).toMatch(/add --help for usage and examples/);
    }
    expect(unknown.stderr).toMatch(/unknown option '--bogus'/);
    expect(seed.stderr).toMatch(/must be a whole number/);
    expect(none.stderr).toMatch(/missing required argument 'scenario'/);
  });
});

describe('mapcontig compare', () => {
  it('asks the listed contenders (cma = cma-heap) on copies of the machine at --at', async () => {
    const r = await mapcontig(
      'compare',
      tiny,
      '--policies',
      'rfc,4k,cma',
      '--size',
      '8M',
      '--at',
      '1min',
      '--json',
    );
    expect(r.status).toBe(0);
    const c = JSON.parse(r.stdout);
    expect(c.request.bytes).toBe(8 << 20);
    expect(c.results.map((x: { name: string }) => x.name)).toEqual(['rfc', '4k', 'cma-heap']);
    expect(c.at_ns - 60e9).toBeLessThan(1e9);
    expect(c.results[0].ok).toBe(true);
  }, 60_000);

  it("prints tables for people, with the scenario's own request by default", async () => {
    const r = await mapcontig('compare', tiny, '--quiet');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/best-effort/);
    expect(r.stdout).toMatch(/thp/);
  }, 60_000);

  it('refuses an unknown contender (2), and a scenario without a request and no --size (1)', async () => {
    const [unknown, nosize] = await Promise.all([
      mapcontig('compare', tiny, '--policies', 'rfc,magic'),
      mapcontig('compare', 'test/fixtures/scenarios/no-compare.yaml'),
    ]);
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/'magic' is not a contender \(known: rfc-poc, rfc,/);
    expect(nosize.status).toBe(1);
    expect(nosize.stderr).toBe(
      'mapcontig: test/fixtures/scenarios/no-compare.yaml has no compare: section; say how much to ask for with --size\n',
    );
  }, 60_000);
});

describe('mapcontig proc', () => {
  it('prints a file as it is at --at, and several with head(1) headers', async () => {
    const hugepages = '/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages';
    const [one, two, json] = await Promise.all([
      mapcontig('proc', tiny, '--at', '90s', '/proc/buddyinfo'),
      mapcontig('proc', tiny, '--at', '90s', '/proc/buddyinfo', hugepages),
      mapcontig('proc', tiny, '--at', '90s', '/proc/buddyinfo', hugepages, '--json'),
    ]);
    expect(JSON.parse(json.stdout)).toEqual({ '/proc/buddyinfo': one.stdout, [hugepages]: '8\n' });
    expect(one.status).toBe(0);
    expect(one.stdout).toMatch(/^Node 0, zone {6}DMA/);
    expect(two.stdout).toMatch(/^==> \/proc\/buddyinfo <==\nNode 0/);
    // The 1 min event asked for 8 huge pages.
    expect(two.stdout).toMatch(/==> \/sys\/kernel\/mm\/hugepages\/hugepages-2048kB\/nr_hugepages <==\n8\n$/);
  }, 60_000);

  it('says which file does not exist, and refuses a time outside the scenario', async () => {
    const [nofile, late, outside] = await Promise.all([
      mapcontig('proc', tiny, '--at', '1min', '/proc/nonexistent'),
      mapcontig('proc', tiny, '--at', '3h', '/proc/buddyinfo'),
      mapcontig('proc', tiny, '--at', '1min', '/etc/passwd'),
    ]);
    expect(nofile.status).toBe(1);
    expect(nofile.stderr).toMatch(/^mapcontig: \/proc\/nonexistent: .*(ENOENT|No such file)/);
    expect(late.status).toBe(1);
    expect(late.stderr).toBe("mapcontig: --at 3h is not within the scenario's 120s\n");
    expect(outside.status).toBe(1);
    expect(outside.stderr).toBe('mapcontig: /etc/passwd: not a file under /proc or /sys\n');
  }, 60_000);
});

describe('--help', () => {
  it('shows examples for every command', async () => {
    const helps = await Promise.all(['run', 'compare', 'proc', 'demo'].map((c) => mapcontig(c, '--help')));
    for (const h of helps) {
      expect(h.status).toBe(0);
      expect(h.stdout).toMatch(/Examples:\n {2}\$ mapcontig /);
    }
  }, 60_000);
});
