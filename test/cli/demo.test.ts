/**
 * The command line end to end: `mapcontig demo` tells its story, deterministically, and bad flags
 * get one clear message and a non-zero exit.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = (...args: string[]) =>
  spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
    cwd: root,
    encoding: 'utf8',
    env: { ...process.env, NO_COLOR: '1' },
  });

describe('mapcontig demo', () => {
  it('boots, runs a simulated day and reports what is contiguous, the same way every time', () => {
    const a = run('demo', '--memory', '1G', '--cpus', '2', '--seed', '3');
    expect(a.status).toBe(0);
    expect(a.stdout).toContain('1. Freshly booted');
    expect(a.stdout).toMatch(/Node 0, zone {4}DMA32 /);
    expect(a.stdout).toContain('2. After 24 simulated hours');
    expect(a.stdout).toMatch(/longest contiguous free run\s+\d+ MiB\s+\d+ MiB/);
    expect(a.stdout).toMatch(/is free, but the longest physically contiguous free run is \d+ MiB/);
    const b = run('demo', '--memory', '1G', '--cpus', '2', '--seed', '3');
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
