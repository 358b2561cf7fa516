/**
 * Exact snapshots of our own output in test/golden/<name>.txt. Run with UPDATE_GOLDEN=1 to
 * (re)write them after an intended change, then review the diff in git.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'vitest';

const GOLDEN_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', 'golden');

/** The path of golden file `name`. */
export function goldenPath(name: string): string {
  return join(GOLDEN_DIR, `${name}.txt`);
}

/** Assert `text` equals the golden file byte for byte (or write it with UPDATE_GOLDEN=1). */
export function expectGolden(name: string, text: string): void {
  const path = goldenPath(name);
  if (process.env.UPDATE_GOLDEN === '1') {
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(path, text);
    return;
  }
  if (!existsSync(path))
    throw new Error(`missing golden file ${path}: run with UPDATE_GOLDEN=1 to create it`);
  expect(text, `${name} differs from ${path} (UPDATE_GOLDEN=1 rewrites it)`).toBe(readFileSync(path, 'utf8'));
}
