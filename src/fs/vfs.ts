/**
 * A tiny VFS for the machine's /proc and /sys files: paths map to read and write handlers with a
 * mode and an owner, and errors come back as the errno Linux gives (ENOENT, EACCES, EINVAL, …).
 *
 * Files are read as text (`read`) or as bytes (`readBytes`, a pread(2) of `length` bytes at
 * `offset`). Binary files (/proc/kpageflags, /proc/<pid>/pagemap) have only the byte form; text
 * files read as bytes give the UTF-8 encoding of their text. Directories whose entries come and
 * go (/proc/<pid>/) are resolved on every lookup by a mounted `DynamicDir`.
 */
import { ErrnoError } from '../lib/errno.ts';

/**
 * Who is asking. Root (uid 0) passes every permission check, as CAP_DAC_OVERRIDE does.
 * `caps` lists the capabilities held; without it uid 0 holds all and other users none. A
 * Process has these three fields, so a process can be passed as the reader.
 */
export interface Cred {
  uid: number;
  gid: number;
  caps?: ReadonlySet<number>;
}
export const ROOT: Cred = { uid: 0, gid: 0 };

/** capable(): whether `cred` holds capability `cap`. */
export function capable(cred: Cred, cap: number): boolean {
  return cred.caps ? cred.caps.has(cap) : cred.uid === 0;
}

export interface FileOps {
  /** Permission bits, e.g. 0o444, 0o400 (owner only), 0o644 (a writable sysctl). */
  mode: number;
  /** Owner (default root): /proc/<pid>/ files belong to the task's user. */
  uid?: number;
  gid?: number;
  /** Extra checks at open (the kernel's proc_mem_open ptrace check); throw ErrnoError to refuse. */
  open?(cred: Cred): void;
  /** The text of a text file. */
  read?(cred: Cred): string;
  /** pread(): up to `length` bytes at `offset`; fewer at the end of the file. */
  readBytes?(offset: number, length: number, cred: Cred): Uint8Array;
  /** Bytes from 0 to the end of a binary file, for reads that give no length. */
  size?(): number;
  /** Parse and apply a write; throw ErrnoError (EINVAL, EPERM, …) for bad input, changing nothing. */
  write?(text: string, cred: Cred): void;
}

/** A directory whose files are looked up when asked for, e.g. /proc/<pid>/ for live processes. */
export interface DynamicDir {
  /** The file at `path` (normalized, below the mount point), or undefined. */
  lookup(path: string): FileOps | undefined;
  /** Every path it holds now. */
  list(): string[];
}

/** MAX_RW_COUNT (INT_MAX & PAGE_MASK): vfs_read() returns at most this many bytes per call. */
const MAX_RW_COUNT = 0x7ffff000;

export class Vfs {
  private readonly files = new Map<string, FileOps>();
  private readonly mounts: Array<{ prefix: string; dir: DynamicDir }> = [];

  register(path: string, ops: FileOps): void {
    this.files.set(path, ops);
  }

  /** Serve every path below `prefix` (e.g. '/proc/') that is not registered from `dir`. */
  mount(prefix: string, dir: DynamicDir): void {
    this.mounts.push({ prefix: prefix.endsWith('/') ? prefix : `${prefix}/`, dir });
  }

  exists(path: string): boolean {
    return this.find(normalize(path)) !== undefined;
  }

  /** Every file below `dir`, sorted. */
  list(dir: string): string[] {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    const all = new Set(this.files.keys());
    for (const m of this.mounts) for (const p of m.dir.list()) all.add(p);
    return [...all].filter((p) => p.startsWith(prefix)).sort();
  }

  read(path: string, cred: Cred = ROOT): string {
    const p = normalize(path);
    const f = this.open(p, cred, 4);
    if (!f.read) throw new ErrnoError('EINVAL', 'read', p, 'a binary file: read it with readFileBytes()');
    return f.read(cred);
  }

  /**
   * pread(2) of `length` bytes at `offset` (default: to the end of the file). Binary files check
   * alignment and permissions as their kernel read methods do. Like vfs_read(), one call returns
   * at most MAX_RW_COUNT bytes; a read without a length of a file bigger than that (pagemap
   * spans 256 GiB) throws a RangeError asking for a length.
   */
  readBytes(path: string, offset = 0, length: number | undefined = undefined, cred: Cred = ROOT): Uint8Array {
    const p = normalize(path);
    if (!Number.isInteger(offset) || offset < 0) throw new ErrnoError('EINVAL', 'pread', p, 'bad offset');
    if (length !== undefined && (!Number.isInteger(length) || length < 0))
      throw new ErrnoError('EINVAL', 'pread', p, 'bad length');
    const f = this.open(p, cred, 4);
    if (f.readBytes) {
      let n = length;
      if (n === undefined) {
        n = Math.max(0, (f.size?.() ?? 0) - offset);
        if (n > MAX_RW_COUNT) throw new RangeError(`${p}: ${n} bytes to the end of the file; pass a length`);
      }
      return f.readBytes(offset, Math.min(n, MAX_RW_COUNT), cred);
    }
    const bytes = new TextEncoder().encode(f.read ? f.read(cred) : '');
    return bytes.slice(offset, length === undefined ? undefined : offset + length);
  }

  write(path: string, text: string, cred: Cred = ROOT): void {
    const p = normalize(path);
    const f = this.lookup(p, 'open');
    if (!f.write || (f.mode & 0o222) === 0) throw new ErrnoError('EACCES', 'open', p);
    if (!may_open(f, cred, 2)) throw new ErrnoError('EACCES', 'open', p);
    f.open?.(cred);
    f.write(text, cred);
  }

  /** open(2) for reading: the file, after the permission and open-time checks. */
  private open(p: string, cred: Cred, want: number): FileOps {
    const f = this.lookup(p, 'open');
    if (!may_open(f, cred, want)) throw new ErrnoError('EACCES', 'open', p);
    f.open?.(cred);
    return f;
  }

  private find(path: string): FileOps | undefined {
    const f = this.files.get(path);
    if (f) return f;
    for (const m of this.mounts) {
      if (path.startsWith(m.prefix)) {
        const d = m.dir.lookup(path);
        if (d) return d;
      }
    }
    return undefined;
  }

  private lookup(path: string, syscall: string): FileOps {
    const f = this.find(path);
    if (!f) throw new ErrnoError('ENOENT', syscall, path);
    return f;
  }
}

/**
 * kernel: fs/namei.c generic_permission() for procfs inodes: root passes; otherwise the owner's,
 * the group's or the others' bits of `mode` must grant `want` (4 read, 2 write).
 */
function may_open(f: FileOps, cred: Cred, want: number): boolean {
  if (cred.uid === 0) return true;
  const bits = cred.uid === (f.uid ?? 0) ? f.mode >> 6 : cred.gid === (f.gid ?? 0) ? f.mode >> 3 : f.mode;
  return (bits & want) === want;
}

function normalize(path: string): string {
  if (!path.startsWith('/')) throw new ErrnoError('ENOENT', 'open', path, 'paths are absolute');
  return path.replace(/\/+/g, '/').replace(/\/$/, '');
}
