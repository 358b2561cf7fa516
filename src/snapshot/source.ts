/**
 * Where a snapshot's files come from: a directory (what `mapcontig snapshot` writes), or a tar
 * archive, plain or gzip-compressed, of the same files gathered by other means (`tar czf` of a
 * copy, a support bundle). Paths are relative to the snapshot's root, without the leading slash;
 * a tar whose entries sit under a common prefix (`snap/proc/zoneinfo`, `./proc/zoneinfo`) is
 * rooted where `proc/zoneinfo` or `proc/buddyinfo` is found.
 *
 * Every size is known before any content is read, so the reader can refuse hostile sizes first.
 */
import { createReadStream } from 'node:fs';
import { lstat, readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gunzipSync } from 'node:zlib';
import { SnapshotError } from './manifest.ts';

/** A tar larger than this is refused (a 64 GiB machine's uncompressed kpage files are 268 MiB). */
export const MAX_TAR_BYTES = 1 << 30;
/** A snapshot with more files than this is not one. */
export const MAX_FILES = 20000;

export interface SnapshotSource {
  /** The directory or archive, for messages. */
  readonly name: string;
  /** Relative paths of the regular files, sorted. */
  list(): string[];
  has(path: string): boolean;
  /** Size in bytes, as stored. */
  size(path: string): number;
  /** The whole file; callers check size() first. */
  read(path: string): Promise<Buffer>;
  /** The file as a stream, for decompression without holding the compressed bytes. */
  stream(path: string): Readable;
}

/** Open a directory or a .tar / .tar.gz / .tgz file as a snapshot source. */
export async function openSource(path: string): Promise<SnapshotSource> {
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch (e) {
    throw new SnapshotError(path, `cannot open: ${(e as Error).message}`);
  }
  if (st.isDirectory()) return openDir(path);
  if (st.isFile()) return openTar(path, st.size);
  throw new SnapshotError(path, 'neither a directory nor a tar file');
}

async function openDir(dir: string): Promise<SnapshotSource> {
  const sizes = new Map<string, number>();
  const walk = async (abs: string, rel: string, depth: number): Promise<void> => {
    if (depth > 16) throw new SnapshotError(rel, 'directories nested too deep');
    for (const name of await readdir(abs)) {
      const a = join(abs, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = await lstat(a);
      if (st.isDirectory()) await walk(a, r, depth + 1);
      else if (st.isFile()) {
        sizes.set(r, st.size);
        if (sizes.size > MAX_FILES) throw new SnapshotError(dir, `more than ${MAX_FILES} files`);
      }
    }
  };
  await walk(dir, '', 0);
  const names = [...sizes.keys()].sort();
  return {
    name: dir,
    list: () => names,
    has: (p) => sizes.has(p),
    size: (p) => sizes.get(p) ?? -1,
    read: (p) => readFile(join(dir, p)),
    stream: (p) => createReadStream(join(dir, p)),
  };
}

function octal(b: Buffer, off: number, len: number): number {
  const s = b
    .toString('latin1', off, off + len)
    .replace(/\0.*$/s, '')
    .trim();
  if (!/^[0-7]*$/.test(s)) return Number.NaN;
  return s === '' ? 0 : Number.parseInt(s, 8);
}

function cstr(b: Buffer, off: number, len: number): string {
  const s = b.toString('utf8', off, off + len);
  const z = s.indexOf('\0');
  return z < 0 ? s : s.slice(0, z);
}

async function openTar(path: string, size: number): Promise<SnapshotSource> {
  const name = path;
  if (size > MAX_TAR_BYTES)
    throw new SnapshotError(name, `${size} bytes: larger than the ${MAX_TAR_BYTES} allowed`);
  let buf = await readFile(path);
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    try {
      buf = gunzipSync(buf, { maxOutputLength: MAX_TAR_BYTES });
    } catch (e) {
      throw new SnapshotError(name, `not a readable gzip-compressed tar: ${(e as Error).message}`);
    }
  }
  const entries = new Map<string, { off: number; len: number }>();
  let off = 0;
  let longName: string | null = null;
  let paxPath: string | null = null;
  while (off + 512 <= buf.length) {
    const h = buf.subarray(off, off + 512);
    if (h.every((x) => x === 0)) break;
    let sum = 0;
    for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : h[i];
    const chk = octal(h, 148, 8);
    if (chk !== sum) throw new SnapshotError(name, `corrupt tar header at byte ${off} (checksum)`);
    const len = octal(h, 124, 12);
    if (!Number.isSafeInteger(len) || off + 512 + len > buf.length)
      throw new SnapshotError(name, `truncated tar: entry at byte ${off} claims ${len} bytes`);
    const type = String.fromCharCode(h[156] || 0x30);
    // POSIX ustar has a name prefix at 345; old GNU tar ("ustar  \0") keeps other fields there.
    const posix = h.toString('latin1', 257, 263) === 'ustar\0';
    let p = cstr(h, 0, 100);
    if (posix) {
      const prefix = cstr(h, 345, 155);
      if (prefix) p = `${prefix}/${p}`;
    }
    const body = off + 512;
    if (type === 'L') longName = cstr(buf, body, len);
    else if (type === 'x') {
      const m = /\d+ path=([^\n]*)\n/.exec(buf.toString('utf8', body, body + len));
      paxPath = m ? m[1] : null;
    } else {
      if (longName !== null) p = longName;
      if (paxPath !== null) p = paxPath;
      longName = null;
      paxPath = null;
      if (type === '0' || type === '\0' || type === '7') {
        entries.set(p.replace(/^(\.\/)+/, '').replace(/^\/+/, ''), { off: body, len });
        if (entries.size > MAX_FILES) throw new SnapshotError(name, `more than ${MAX_FILES} files`);
      }
    }
    off = body + Math.ceil(len / 512) * 512;
  }
  if (entries.size === 0) throw new SnapshotError(name, 'not a tar archive, or an empty one');
  // Root the snapshot where its proc/ directory is.
  let prefix = '';
  for (const k of entries.keys()) {
    const m = /^(.*?)proc\/(zoneinfo|buddyinfo)$/.exec(k);
    if (m && (prefix === '' || m[1].length < prefix.length)) prefix = m[1];
  }
  const files = new Map<string, { off: number; len: number }>();
  for (const [k, v] of entries) if (k.startsWith(prefix)) files.set(k.slice(prefix.length), v);
  const names = [...files.keys()].sort();
  const slice = (p: string) => {
    const e = files.get(p);
    if (!e) throw new SnapshotError(p, 'not in the archive');
    return buf.subarray(e.off, e.off + e.len);
  };
  return {
    name,
    list: () => names,
    has: (p) => files.has(p),
    size: (p) => files.get(p)?.len ?? -1,
    read: async (p) => slice(p),
    stream: (p) => Readable.from([slice(p)]),
  };
}
