/**
 * `mapcontig snapshot`: help with examples, a capture that prints what it took, what is missing
 * and the size, JSON for programs, and exit status 1 on failure.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { cleanupScratch, scratch } from './helpers.ts';

afterAll(cleanupScratch, 60_000);

const repo = fileURLToPath(new URL('../..', import.meta.url));
const linux = process.platform === 'linux' && existsSync('/proc/zoneinfo');
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'snapshot', ...args], {
    cwd: repo,
    encoding: 'utf8',
  });

describe('mapcontig snapshot', () => {
  it('--help shows the options and examples', () => {
    const r = run('--help');
    expect(r.status).toBe(0);
    for (const s of [
      '--out',
      '--no-kpageflags',
      '--json',
      '--quiet',
      'Examples:',
      'snapshot.json',
      'Exit status',
    ])
      expect(r.stdout).toContain(s);
  });

  it.skipIf(!linux)('captures, and says what it took, what is missing and the size', () => {
    const dir = join(scratch(), 'snap');
    const r = run('--out', dir, '--no-kpageflags');
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^snapshot of Linux \d+\.\d+\S* in /);
    expect(r.stdout).toMatch(/\d+ files, [\d.]+ (KiB|MiB) on disk, captured in [\d.]+ s/);
    expect(r.stdout).toMatch(/\/proc\/kpageflags: not requested/);
    expect(r.stdout).toMatch(/costs: no per-page state/);
    expect(existsSync(join(dir, 'snapshot.json'))).toBe(true);
  });

  it.skipIf(!linux)('--json prints the manifest; --quiet prints nothing', () => {
    const r = run('--out', join(scratch(), 'snap'), '--no-kpageflags', '--json');
    expect(r.status, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.manifest.format).toBe('mapcontig-snapshot');
    expect(j.total_bytes).toBeGreaterThan(0);
    const q = run('--out', join(scratch(), 'snap'), '--no-kpageflags', '--quiet');
    expect(q.status).toBe(0);
    expect(q.stdout).toBe('');
  });

  it.skipIf(!linux)('writes ./mapcontig-snapshot, then .1, without --out', () => {
    const cwd = scratch();
    const tsx = pathToFileURL(join(repo, 'node_modules/tsx/dist/loader.mjs')).href;
    const main = join(repo, 'src/cli/main.ts');
    const go = () =>
      spawnSync(process.execPath, ['--import', tsx, main, 'snapshot', '--no-kpageflags', '--quiet'], {
        cwd,
        encoding: 'utf8',
      });
    expect(go().status).toBe(0);
    expect(go().status).toBe(0);
    expect(existsSync(join(cwd, 'mapcontig-snapshot/snapshot.json'))).toBe(true);
    expect(existsSync(join(cwd, 'mapcontig-snapshot.1/snapshot.json'))).toBe(true);
  });

  it('exits 1 with one message when the directory cannot be used', () => {
    const dir = scratch();
    writeFileSync(join(dir, 'x'), 'taken');
    const r = run('--out', dir, '--no-kpageflags');
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^mapcontig snapshot: .*not empty/);
    expect(r.stdout).toBe('');
  });
});
