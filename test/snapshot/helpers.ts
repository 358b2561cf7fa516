/**
 * Helpers of the snapshot tests: a scratch copy of the committed fixture to damage, and a tiny
 * ustar writer so the tar path is tested without a `tar` binary.
 */
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

export const FIXTURE = fileURLToPath(new URL('../fixtures/snapshot', import.meta.url));

const scratches: string[] = [];

/** A fresh temporary directory, removed by cleanupScratch(). */
export function scratch(prefix = 'mapcontig-snap-'): string {
  const d = mkdtempSync(join(tmpdir(), prefix));
  scratches.push(d);
  return d;
}

/** Remove every scratch directory of this test file (call from afterAll). */
export function cleanupScratch(): void {
  for (const d of scratches.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** A copy of the fixture snapshot that a test may damage. */
export function fixtureCopy(): string {
  const dir = join(scratch(), 'snap');
  cpSync(FIXTURE, dir, { recursive: true });
  return dir;
}

/** Every file under dir, relative, sorted. */
export function walk(dir: string, rel = ''): string[] {
  const out: string[] = [];
  for (const n of readdirSync(join(dir, rel)).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    if (statSync(join(dir, r)).isDirectory()) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out;
}

function header(name: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write('0', 156);
  h.write('ustar\x0000', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A tar (optionally gzipped) of a directory's files, each under `prefix`. */
export function tarOf(dir: string, prefix = '', gzip = false): Buffer {
  const parts: Buffer[] = [];
  for (const f of walk(dir)) {
    const body = readFileSync(join(dir, f));
    parts.push(header(prefix + f, body.length), body, Buffer.alloc((512 - (body.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  const tar = Buffer.concat(parts);
  return gzip ? gzipSync(tar) : tar;
}
