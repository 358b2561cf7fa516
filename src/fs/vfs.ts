/**
 * A tiny VFS for the machine's /proc and /sys files: paths map to read and write handlers with a
 * mode, and errors come back as the errno Linux gives (ENOENT, EACCES, EINVAL, …).
 */
import { ErrnoError } from '../lib/errno.ts';

/** Who is asking; root (uid 0) passes every permission check, as CAP_DAC_OVERRIDE does. */
export interface Cred {
  uid: number;
  gid: number;
}
export const ROOT: Cred = { uid: 0, gid: 0 };

export interface FileOps {
  /** Permission bits, e.g. 0o444, 0o400 (root only), 0o644 (a writable sysctl). */
  mode: number;
  read(): string;
  /** Parse and apply a write; throw ErrnoError (EINVAL, …) for bad input, changing nothing. */
  write?(text: string): void;
}

export class Vfs {
  private readonly files = new Map<string, FileOps>();

  register(path: string, ops: FileOps): void {
    this.files.set(path, ops);
  }

  exists(path: string): boolean {
    return this.files.has(normalize(path));
  }

  /** Every registered path below `dir`, sorted. */
  list(dir: string): string[] {
    const prefix = dir.endsWith('/') ? dir : `${dir}/`;
    return [...this.files.keys()].filter((p) => p.startsWith(prefix)).sort();
  }

  read(path: string, cred: Cred = ROOT): string {
    const p = normalize(path);
    const f = this.lookup(p, 'open');
    if (cred.uid !== 0 && (f.mode & 0o004) === 0) throw new ErrnoError('EACCES', 'open', p);
    return f.read();
  }

  write(path: string, text: string, cred: Cred = ROOT): void {
    const p = normalize(path);
    const f = this.lookup(p, 'open');
    if (!f.write || (f.mode & 0o222) === 0) throw new ErrnoError('EACCES', 'open', p);
    if (cred.uid !== 0 && (f.mode & 0o002) === 0) throw new ErrnoError('EACCES', 'open', p);
    f.write(text);
  }

  private lookup(path: string, syscall: string): FileOps {
    const f = this.files.get(path);
    if (!f) throw new ErrnoError('ENOENT', syscall, path);
    return f;
  }
}

function normalize(path: string): string {
  if (!path.startsWith('/')) throw new ErrnoError('ENOENT', 'open', path, 'paths are absolute');
  return path.replace(/\/+/g, '/').replace(/\/$/, '');
}
