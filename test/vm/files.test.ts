/**
 * Files: open(2) and its flags, read/write/lseek/ftruncate/fsync/posix_fadvise/unlink/memfd_create
 * with Linux's errnos, tmpfs size limits, the page cache as /proc/meminfo and /proc/vmstat show it,
 * writeback by the flusher and the dirty limits, drop_caches, and readahead.
 *
 * Cases marked "6.18:" were measured on a real Linux 6.18 kernel with small C programs, run as
 * root and as nobody (uid 65534): errnos on tmpfs (/dev/shm) files; page-cache numbers (mincore)
 * on an ext4 file system mounted data=journal from a loop device with read_ahead_kb 128 and
 * max_sectors_kb 1280 (data=journal keeps ext4 to order-0 folios, as the model's disk is).
 */
import { describe, expect, it } from 'vitest';
import { filemap_get_folio } from '../../src/mm/filemap.ts';
import { Machine } from '../../src/sim/machine.ts';
import { FileError } from '../../src/vm/files.ts';
import { FaultError, type Process } from '../../src/vm/process.ts';
import {
  MAP_PRIVATE,
  MAP_SHARED,
  MFD_CLOEXEC,
  MFD_EXEC,
  MFD_NOEXEC_SEAL,
  O_ACCMODE,
  O_APPEND,
  O_CREAT,
  O_EXCL,
  O_RDONLY,
  O_RDWR,
  O_TRUNC,
  O_WRONLY,
  POSIX_FADV_DONTNEED,
  POSIX_FADV_NOREUSE,
  POSIX_FADV_NORMAL,
  POSIX_FADV_RANDOM,
  POSIX_FADV_SEQUENTIAL,
  POSIX_FADV_WILLNEED,
  PROT_READ,
  PROT_WRITE,
  RLIMIT_NOFILE,
  SEEK_CUR,
  SEEK_DATA,
  SEEK_END,
  SEEK_HOLE,
  SEEK_SET,
} from '../../src/vm/uapi.ts';
import { boot, errno, MiB, meminfo, PG, vmstat } from './helpers.ts';

const KiB = 1024;
const NOBODY = { uid: 65534, gid: 65534 };

/** Pages the page cache holds for the file named `path`. */
function cached(m: ReturnType<typeof boot>['m'], path: string): number {
  const inode = m.vm.files.lookup(path);
  if (!inode) throw new Error(`no file ${path}`);
  return inode.mapping.nrpages;
}

/** The size of the file open as `fd` (lseek to the end, then back). */
function size(p: Process, fd: number): number {
  const pos = p.lseek(fd, 0, SEEK_CUR);
  const end = p.lseek(fd, 0, SEEK_END);
  p.lseek(fd, pos, SEEK_SET);
  return end;
}

/** A disk file of `bytes`, written, synced and dropped from the page cache: a cold file. */
function coldFile(p: Process, path: string, bytes: number): void {
  const fd = p.open(path, O_CREAT | O_RDWR);
  p.write(fd, bytes);
  p.fsync(fd);
  p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  p.close(fd);
}

describe('open(2)', () => {
  it('O_CREAT creates with mode & ~022, a second open finds the same file, O_EXCL refuses it (EEXIST)', () => {
    const { m, p } = boot();
    expect(errno(() => p.open('/data/a', O_RDONLY))).toBe('ENOENT');
    expect(errno(() => p.open('/data/a', O_RDWR))).toBe('ENOENT');
    const fd = p.open('/data/a', O_CREAT | O_RDWR, 0o666);
    expect(fd).toBe(0);
    // 6.18: mode after umask 0644.
    expect(m.vm.files.lookup('/data/a')?.mode).toBe(0o644);
    expect(m.vm.files.list()).toEqual(['/data/a']);
    expect(errno(() => p.open('/data/a', O_CREAT | O_EXCL | O_RDWR, 0o666))).toBe('EEXIST');
    const again = p.open('/data/a', O_CREAT | O_RDONLY);
    expect(again).toBe(1);
    p.write(fd, 10000);
    expect(p.read(again, 20000)).toBe(10000);
    expect(p.read(again, 20000)).toBe(0);
    expect(m.vm.files.list()).toEqual(['/data/a']);
    expect(p.open('/data/b', O_CREAT | O_EXCL | O_WRONLY, 0o600)).toBe(2);
    expect(m.vm.files.lookup('/data/b')?.mode).toBe(0o600);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('O_TRUNC empties an existing file and frees its page cache, with O_RDONLY too (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/data/t', O_CREAT | O_RDWR);
    p.write(fd, MiB);
    p.close(fd);
    const before = meminfo(m, 'Cached');
    expect(cached(m, '/data/t')).toBe(256);
    const ro = p.open('/data/t', O_RDONLY | O_TRUNC);
    expect(size(p, ro)).toBe(0);
    expect(cached(m, '/data/t')).toBe(0);
    expect(meminfo(m, 'Cached')).toBe(before - 1024);
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(p.read(ro, 4096)).toBe(0);
    // Creating with O_TRUNC is just creating.
    const fresh = p.open('/dev/shm/t', O_CREAT | O_TRUNC | O_RDWR);
    expect(size(p, fresh)).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('O_APPEND writes at the end, pwrite() too (Linux ignores its offset), leaving pwrite’s position (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/dev/shm/log', O_CREAT | O_WRONLY | O_APPEND);
    const rd = p.open('/dev/shm/log', O_RDONLY);
    p.write(fd, 10);
    p.write(fd, 10);
    expect(p.lseek(fd, 0, SEEK_CUR)).toBe(20);
    expect(p.pwrite(fd, 5, 0)).toBe(5);
    expect(size(p, rd)).toBe(25);
    expect(p.lseek(fd, 0, SEEK_CUR)).toBe(20);
    p.lseek(fd, 0, SEEK_SET);
    expect(p.write(fd, 5)).toBe(5);
    expect(size(p, rd)).toBe(30);
    expect(p.lseek(fd, 0, SEEK_CUR)).toBe(30);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('reads need O_RDONLY or O_RDWR and writes O_WRONLY or O_RDWR (EBADF); ftruncate needs a writer (EINVAL) (6.18)', () => {
    const { m, p } = boot();
    const rw = p.open('/dev/shm/f', O_CREAT | O_RDWR);
    p.write(rw, 100);
    const ro = p.open('/dev/shm/f', O_RDONLY);
    const wo = p.open('/dev/shm/f', O_WRONLY);
    expect(errno(() => p.read(wo, 10))).toBe('EBADF');
    expect(errno(() => p.pread(wo, 10, 0))).toBe('EBADF');
    expect(errno(() => p.write(ro, 10))).toBe('EBADF');
    expect(errno(() => p.write(ro, 0))).toBe('EBADF');
    expect(errno(() => p.pwrite(ro, 10, 0))).toBe('EBADF');
    expect(errno(() => p.ftruncate(ro, 0))).toBe('EINVAL');
    expect(errno(() => p.ftruncate(wo, -1))).toBe('EINVAL');
    expect(p.read(ro, 1000)).toBe(100);
    expect(p.write(wo, 10)).toBe(10);
    expect(errno(() => p.ftruncate(wo, 10000))).toBe('ok');
    expect(size(p, ro)).toBe(10000);
    expect(errno(() => p.pread(ro, 10, -1))).toBe('EINVAL');
    expect(errno(() => p.pwrite(wo, 10, -1))).toBe('EINVAL');
    expect(p.pread(ro, 10, 20000)).toBe(0);
    expect(p.read(ro, 0)).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('access mode 3 (O_ACCMODE) needs read and write permission and can then do neither (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/dev/shm/acc', O_CREAT | O_RDWR, 0o644);
    p.write(fd, 100);
    const acc = p.open('/dev/shm/acc', O_ACCMODE);
    expect(errno(() => p.read(acc, 10))).toBe('EBADF');
    expect(errno(() => p.write(acc, 10))).toBe('EBADF');
    expect(errno(() => p.ftruncate(acc, 0))).toBe('EINVAL');
    expect(errno(() => p.mmap(0, PG, PROT_READ, MAP_PRIVATE, acc, 0))).toBe('EACCES');
    expect(p.lseek(acc, 5, SEEK_SET)).toBe(5);
    // Another user has only read permission on the 0644 file.
    const nobody = m.spawn(NOBODY);
    expect(errno(() => nobody.open('/dev/shm/acc', O_ACCMODE))).toBe('EACCES');
    expect(errno(() => nobody.open('/dev/shm/acc', O_RDONLY))).toBe('ok');
    expect(m.invariantViolations()).toEqual([]);
  });

  it('permissions: EACCES for another user’s 0600 file or for writing a 0644 one; root overrides (6.18)', () => {
    const { m, p } = boot();
    p.close(p.open('/dev/shm/secret', O_CREAT | O_RDWR, 0o600));
    const pub = p.open('/dev/shm/pub', O_CREAT | O_RDWR, 0o644);
    p.write(pub, 100);
    const nobody = m.spawn(NOBODY);
    expect(errno(() => nobody.open('/dev/shm/secret', O_RDONLY))).toBe('EACCES');
    expect(errno(() => nobody.open('/dev/shm/pub', O_WRONLY))).toBe('EACCES');
    expect(errno(() => nobody.open('/dev/shm/pub', O_RDWR))).toBe('EACCES');
    // O_TRUNC asks for write permission: refused, and nothing is truncated.
    expect(errno(() => nobody.open('/dev/shm/pub', O_RDONLY | O_TRUNC))).toBe('EACCES');
    expect(size(p, pub)).toBe(100);
    expect(errno(() => nobody.open('/dev/shm/pub', O_RDONLY))).toBe('ok');
    expect(errno(() => nobody.open('/dev/shm/pub', O_CREAT | O_RDONLY, 0o666))).toBe('ok');
    expect(errno(() => nobody.open('/dev/shm/pub', O_CREAT | O_EXCL | O_RDONLY, 0o666))).toBe('EEXIST');
    // A file nobody owns and keeps to itself is still root's to open (CAP_DAC_OVERRIDE).
    nobody.close(nobody.open('/dev/shm/mine', O_CREAT | O_RDWR, 0o600));
    expect(m.vm.files.lookup('/dev/shm/mine')?.uid).toBe(65534);
    expect(errno(() => p.open('/dev/shm/mine', O_RDWR))).toBe('ok');
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a mount point is a directory: EISDIR to open it for writing or creating, and to unlink it (6.18)', () => {
    const { m, p } = boot();
    expect(errno(() => p.open('/dev/shm', O_RDWR))).toBe('EISDIR');
    expect(errno(() => p.open('/dev/shm', O_WRONLY | O_CREAT, 0o644))).toBe('EISDIR');
    expect(errno(() => p.open('/', O_RDWR))).toBe('EISDIR');
    expect(errno(() => p.unlink('/dev/shm'))).toBe('EISDIR');
    expect(m.vm.files.list()).toEqual([]);
  });

  it('EMFILE at RLIMIT_NOFILE, before the path is even looked up, and creating nothing (6.18)', () => {
    const { m } = boot();
    const q = m.spawn({ uid: 1000, gid: 1000, rlimits: { nofile: 4 } });
    for (let i = 0; i < 4; i++) expect(q.open(`/dev/shm/f${i}`, O_CREAT | O_RDWR)).toBe(i);
    expect(errno(() => q.open('/dev/shm/f0', O_RDONLY))).toBe('EMFILE');
    expect(errno(() => q.open('/dev/shm/nonexistent', O_RDONLY))).toBe('EMFILE');
    expect(errno(() => q.open('/dev/shm/new', O_CREAT | O_RDWR))).toBe('EMFILE');
    expect(m.vm.files.lookup('/dev/shm/new')).toBeUndefined();
    expect(errno(() => q.memfd_create('x'))).toBe('EMFILE');
    // The lowest free descriptor is reused.
    q.close(1);
    expect(q.open('/dev/shm/f3', O_RDONLY)).toBe(1);
    expect(q.openFiles().map((f) => [f.fd, f.path])).toEqual([
      [0, '/dev/shm/f0'],
      [1, '/dev/shm/f3'],
      [2, '/dev/shm/f2'],
      [3, '/dev/shm/f3'],
    ]);
    // The limit is the soft one: raising it (up to the hard limit) makes room.
    expect(errno(() => q.setrlimit(RLIMIT_NOFILE, { rlim_cur: 5, rlim_max: 4 }))).toBe('EINVAL');
    expect(errno(() => q.setrlimit(RLIMIT_NOFILE, { rlim_cur: 5, rlim_max: 5 }))).toBe('EPERM');
    const r = m.spawn({ uid: 1000, rlimits: { nofile: 2 }, rlimits_max: { nofile: 3 } });
    r.open('/dev/shm/f0', O_RDONLY);
    r.open('/dev/shm/f0', O_RDONLY);
    expect(errno(() => r.open('/dev/shm/f0', O_RDONLY))).toBe('EMFILE');
    r.setrlimit(RLIMIT_NOFILE, { rlim_cur: 3, rlim_max: 3 });
    expect(r.open('/dev/shm/f0', O_RDONLY)).toBe(2);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('EBADF for a descriptor that is not open, and for closing one twice (6.18)', () => {
    const { p } = boot();
    expect(errno(() => p.read(999, 10))).toBe('EBADF');
    expect(errno(() => p.close(999))).toBe('EBADF');
    expect(errno(() => p.lseek(3, 0, SEEK_SET))).toBe('EBADF');
    expect(errno(() => p.fsync(3))).toBe('EBADF');
    expect(errno(() => p.fadvise(3, 0, 0, POSIX_FADV_DONTNEED))).toBe('EBADF');
    const fd = p.open('/data/x', O_CREAT | O_RDWR);
    p.close(fd);
    expect(errno(() => p.close(fd))).toBe('EBADF');
    expect(errno(() => p.write(fd, 1))).toBe('EBADF');
  });
});

describe('lseek(2)', () => {
  it('moves by SEEK_SET, SEEK_CUR and SEEK_END (past the end too); EINVAL for a bad whence or a negative position (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/dev/shm/s', O_CREAT | O_RDWR);
    p.ftruncate(fd, 10000);
    expect(p.lseek(fd, 100, SEEK_END)).toBe(10100);
    expect(p.lseek(fd, 5, SEEK_CUR)).toBe(10105);
    expect(p.read(fd, 10)).toBe(0);
    expect(errno(() => p.lseek(fd, 0, 5))).toBe('EINVAL');
    expect(errno(() => p.lseek(fd, 0, -1))).toBe('EINVAL');
    expect(errno(() => p.lseek(fd, -1, SEEK_SET))).toBe('EINVAL');
    expect(errno(() => p.lseek(fd, -20000, SEEK_END))).toBe('EINVAL');
    expect(errno(() => p.lseek(fd, -10106, SEEK_CUR))).toBe('EINVAL');
    // A failed lseek leaves the position where it was.
    expect(p.lseek(fd, 0, SEEK_CUR)).toBe(10105);
    expect(p.lseek(fd, -105, SEEK_CUR)).toBe(10000);
    expect(p.lseek(fd, 4000, SEEK_SET)).toBe(4000);
    expect(p.read(fd, 10000)).toBe(6000);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('SEEK_DATA and SEEK_HOLE: on tmpfs the holes are the pages never written; ENXIO at or past the end (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/dev/shm/sparse', O_CREAT | O_RDWR);
    p.ftruncate(fd, 20000);
    expect(errno(() => p.lseek(fd, 0, SEEK_DATA))).toBe('ENXIO');
    expect(p.lseek(fd, 0, SEEK_HOLE)).toBe(0);
    p.pwrite(fd, 10, 5000);
    expect(p.lseek(fd, 0, SEEK_DATA)).toBe(4096);
    expect(p.lseek(fd, 5000, SEEK_DATA)).toBe(5000);
    expect(p.lseek(fd, 0, SEEK_HOLE)).toBe(0);
    expect(p.lseek(fd, 4096, SEEK_HOLE)).toBe(8192);
    expect(p.lseek(fd, 19999, SEEK_HOLE)).toBe(19999);
    expect(errno(() => p.lseek(fd, 8192, SEEK_DATA))).toBe('ENXIO');
    expect(errno(() => p.lseek(fd, 20000, SEEK_DATA))).toBe('ENXIO');
    expect(errno(() => p.lseek(fd, 20000, SEEK_HOLE))).toBe('ENXIO');
    expect(errno(() => p.lseek(fd, -1, SEEK_DATA))).toBe('ENXIO');
    // The position moves to the answer.
    p.lseek(fd, 4096, SEEK_HOLE);
    expect(p.lseek(fd, 0, SEEK_CUR)).toBe(8192);
    // A disk file is all data (the model keeps no block map).
    const d = p.open('/data/dense', O_CREAT | O_RDWR);
    p.write(d, 3 * PG);
    expect(p.lseek(d, 100, SEEK_DATA)).toBe(100);
    expect(p.lseek(d, 100, SEEK_HOLE)).toBe(3 * PG);
    expect(errno(() => p.lseek(d, 3 * PG, SEEK_DATA))).toBe('ENXIO');
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('unlink(2)', () => {
  it('ENOENT for a missing name; EPERM for another user’s file in the sticky /dev/shm; the owner and root may (6.18)', () => {
    const { m, p } = boot();
    const nobody = m.spawn(NOBODY);
    expect(errno(() => nobody.unlink('/dev/shm/none'))).toBe('ENOENT');
    p.close(p.open('/dev/shm/r644', O_CREAT | O_RDWR, 0o644));
    p.close(p.open('/dev/shm/r600', O_CREAT | O_RDWR, 0o600));
    expect(errno(() => nobody.unlink('/dev/shm/r644'))).toBe('EPERM');
    expect(errno(() => nobody.unlink('/dev/shm/r600'))).toBe('EPERM');
    expect(m.vm.files.list()).toEqual(['/dev/shm/r600', '/dev/shm/r644']);
    nobody.close(nobody.open('/dev/shm/n', O_CREAT | O_RDWR));
    nobody.close(nobody.open('/dev/shm/n2', O_CREAT | O_RDWR));
    expect(errno(() => nobody.unlink('/dev/shm/n'))).toBe('ok');
    expect(errno(() => p.unlink('/dev/shm/n2'))).toBe('ok');
    expect(errno(() => p.unlink('/dev/shm/r644'))).toBe('ok');
    expect(errno(() => p.unlink('/dev/shm/r644'))).toBe('ENOENT');
    expect(m.vm.files.list()).toEqual(['/dev/shm/r600']);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('an unlinked file keeps its pages while it is open, and frees them with its last close', () => {
    const { m, p } = boot();
    const fd = p.open('/data/x', O_CREAT | O_RDWR);
    p.write(fd, MiB);
    p.fsync(fd);
    const other = p.open('/data/x', O_RDONLY);
    const inode = m.vm.files.lookup('/data/x')!;
    const base = meminfo(m, 'Cached');
    p.unlink('/data/x');
    expect(m.vm.files.lookup('/data/x')).toBeUndefined();
    expect(meminfo(m, 'Cached')).toBe(base);
    expect(inode.mapping.nrpages).toBe(256);
    expect(p.openFiles().map((f) => f.path)).toEqual(['/data/x (deleted)', '/data/x (deleted)']);
    expect(p.pread(other, MiB, 0)).toBe(MiB);
    expect(p.write(fd, MiB)).toBe(MiB);
    expect(meminfo(m, 'Cached')).toBe(base + 1024);
    // The name is free for a new, different file.
    const fresh = p.open('/data/x', O_CREAT | O_RDWR);
    expect(size(p, fresh)).toBe(0);
    expect(m.vm.files.lookup('/data/x')).not.toBe(inode);
    p.close(fd);
    expect(meminfo(m, 'Cached')).toBe(base + 1024);
    p.close(other);
    expect(meminfo(m, 'Cached')).toBe(base - 1024);
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a process that exits closes its files: an unlinked open file vanishes with it', () => {
    const { m } = boot();
    const q = m.spawn({ uid: 1000 });
    const fd = q.open('/dev/shm/tmp', O_CREAT | O_RDWR);
    q.write(fd, 4 * MiB);
    q.unlink('/dev/shm/tmp');
    expect(meminfo(m, 'Shmem')).toBe(4096);
    q.exit();
    expect(meminfo(m, 'Shmem')).toBe(0);
    expect(meminfo(m, 'Cached')).toBe(0);
    expect([...m.mm.page_cache.all()]).toEqual([]);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('memfd_create(2)', () => {
  it('refuses unknown flags, MFD_EXEC with MFD_NOEXEC_SEAL, and names over 249 bytes (EINVAL) (6.18)', () => {
    const { p } = boot();
    expect(errno(() => p.memfd_create('x', 0x100))).toBe('EINVAL');
    expect(errno(() => p.memfd_create('x', MFD_EXEC | MFD_NOEXEC_SEAL))).toBe('EINVAL');
    expect(errno(() => p.memfd_create('a'.repeat(250)))).toBe('EINVAL');
    expect(errno(() => p.memfd_create('a'.repeat(249)))).toBe('ok');
    expect(errno(() => p.memfd_create('x', MFD_CLOEXEC | MFD_NOEXEC_SEAL))).toBe('ok');
  });

  it('is an unnamed tmpfs file: Shmem while it holds pages, /memfd:<name> (deleted), gone at close', () => {
    const { m, p } = boot();
    const fd = p.memfd_create('ring');
    expect(p.openFiles()).toEqual([{ fd, path: '/memfd:ring (deleted)', pos: 0 }]);
    expect(m.vm.files.list()).toEqual([]);
    p.write(fd, 2 * MiB);
    expect(meminfo(m, 'Shmem')).toBe(2048);
    expect(meminfo(m, 'Cached')).toBe(2048);
    expect(meminfo(m, 'Dirty')).toBe(0);
    // A read of a hole allocates nothing.
    p.ftruncate(fd, 4 * MiB);
    expect(p.pread(fd, 2 * MiB, 2 * MiB)).toBe(2 * MiB);
    expect(meminfo(m, 'Shmem')).toBe(2048);
    p.ftruncate(fd, MiB);
    expect(meminfo(m, 'Shmem')).toBe(1024);
    p.close(fd);
    expect(meminfo(m, 'Shmem')).toBe(0);
    expect([...m.mm.page_cache.all()]).toEqual([]);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('tmpfs size limits', () => {
  it('a full mount gives a short write, then ENOSPC; a fault that needs a new page gets SIGBUS (6.18)', () => {
    const { m, p } = boot();
    m.vm.files.mount_tmpfs('/mnt/small', 64 * KiB);
    const fd = p.open('/mnt/small/f', O_CREAT | O_RDWR);
    expect(p.write(fd, 100 * KiB)).toBe(64 * KiB);
    expect(errno(() => p.write(fd, 4 * KiB))).toBe('ENOSPC');
    expect(meminfo(m, 'Shmem')).toBe(64);
    // The limit is the mount's, not the file's.
    const other = p.open('/mnt/small/g', O_CREAT | O_RDWR);
    expect(errno(() => p.write(other, 1))).toBe('ENOSPC');
    // Other tmpfs mounts are not affected.
    expect(p.write(p.open('/dev/shm/big', O_CREAT | O_RDWR), MiB)).toBe(MiB);
    expect(errno(() => p.ftruncate(fd, MiB))).toBe('ok');
    const a = p.mmap(0, MiB, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    expect(errno(() => p.touch(a + 8 * PG, 1))).toBe('ok');
    const read = (() => {
      try {
        p.touch(a + 100 * PG, 1);
      } catch (e) {
        return e;
      }
    })() as FaultError;
    expect(read).toBeInstanceOf(FaultError);
    expect(read.signal).toBe('SIGBUS');
    expect(read.address).toBe(a + 100 * PG);
    expect(() => p.touch(a + 100 * PG, 1, { write: true })).toThrow(FaultError);
    expect(meminfo(m, 'Shmem')).toBe(64 + 1024);
    // Freeing the first file's pages makes room again.
    p.munmap(a, MiB);
    p.ftruncate(fd, 0);
    expect(p.write(other, 32 * KiB)).toBe(32 * KiB);
    expect(meminfo(m, 'Shmem')).toBe(32 + 1024);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('refuses a second mount at the same place (EBUSY)', () => {
    const { m } = boot();
    const e = (() => {
      try {
        m.vm.files.mount_tmpfs('/dev/shm', MiB);
      } catch (err) {
        return err;
      }
    })() as FileError;
    expect(e).toBeInstanceOf(FileError);
    expect(e.errno).toBe(-16);
  });
});

describe('the page cache in /proc/meminfo', () => {
  it('a written disk file is Cached, Dirty and Inactive(file); reading it twice activates it (6.18)', () => {
    const { m, p } = boot();
    const mi = (n: string) => meminfo(m, n);
    const base = Object.fromEntries(
      ['Cached', 'Active(file)', 'Inactive(file)', 'Inactive(anon)', 'Active(anon)', 'MemFree'].map((n) => [
        n,
        mi(n),
      ]),
    );
    const fd = p.open('/data/f', O_CREAT | O_RDWR);
    p.write(fd, 16 * MiB);
    expect(mi('Cached') - base.Cached).toBe(16384);
    expect(mi('Dirty')).toBe(16384);
    expect(mi('Writeback')).toBe(0);
    expect(mi('Inactive(file)') - base['Inactive(file)']).toBe(16384);
    expect(mi('Active(file)') - base['Active(file)']).toBe(0);
    expect(mi('Inactive(anon)') - base['Inactive(anon)']).toBe(0);
    expect(mi('Shmem')).toBe(0);
    expect(mi('Mapped')).toBe(0);
    expect(base.MemFree - mi('MemFree')).toBeGreaterThanOrEqual(16384);
    const written = vmstat(m, 'nr_written');
    p.fsync(fd);
    expect(mi('Dirty')).toBe(0);
    expect(mi('Writeback')).toBe(0);
    expect(vmstat(m, 'nr_written') - written).toBe(4096);
    expect(mi('Cached') - base.Cached).toBe(16384);
    // Written pages are not yet referenced: the first read marks them, the second activates.
    p.lseek(fd, 0, SEEK_SET);
    expect(p.read(fd, 16 * MiB)).toBe(16 * MiB);
    expect(mi('Active(file)') - base['Active(file)']).toBe(0);
    p.lseek(fd, 0, SEEK_SET);
    p.read(fd, 16 * MiB);
    expect(mi('Active(file)') - base['Active(file)']).toBe(16384);
    expect(mi('Inactive(file)') - base['Inactive(file)']).toBe(0);
    expect(vmstat(m, 'pgactivate')).toBeGreaterThanOrEqual(4096);
    // Clean pages go with POSIX_FADV_DONTNEED.
    p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    expect(mi('Cached')).toBe(base.Cached);
    expect(mi('Active(file)')).toBe(base['Active(file)']);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('tmpfs pages are Shmem and Cached on the anon LRU, never Dirty in meminfo; Mapped while mapped', () => {
    const { m, p } = boot();
    const mi = (n: string) => meminfo(m, n);
    const inactiveAnon = mi('Inactive(anon)');
    const inactiveFile = mi('Inactive(file)');
    const fd = p.open('/dev/shm/x', O_CREAT | O_RDWR);
    p.write(fd, 16 * MiB);
    expect(mi('Shmem')).toBe(16384);
    expect(mi('Cached')).toBe(16384);
    expect(mi('Inactive(anon)') - inactiveAnon).toBe(16384);
    expect(mi('Inactive(file)')).toBe(inactiveFile);
    expect(mi('Dirty')).toBe(0);
    const a = p.mmap(0, 16 * MiB, PROT_READ, MAP_SHARED, fd, 0);
    p.touch(a, 16 * MiB);
    expect(mi('Mapped')).toBe(16384);
    expect(m.readFile(`/proc/${p.pid}/status`)).toMatch(/^RssShmem:\s+16384 kB$/m);
    expect(m.readFile(`/proc/${p.pid}/status`)).toMatch(/^RssFile:\s+0 kB$/m);
    p.munmap(a, 16 * MiB);
    expect(mi('Mapped')).toBe(0);
    p.close(fd);
    // Still named: the pages stay.
    expect(mi('Shmem')).toBe(16384);
    p.unlink('/dev/shm/x');
    expect(mi('Shmem')).toBe(0);
    expect(mi('Cached')).toBe(0);
    expect(mi('Inactive(anon)')).toBe(inactiveAnon);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('ftruncate() shrinking frees the pages past the new end (a partial last page stays); growing allocates none', () => {
    const { m, p } = boot();
    const fd = p.open('/data/t', O_CREAT | O_RDWR);
    p.write(fd, 64 * PG);
    p.ftruncate(fd, 5000);
    expect(cached(m, '/data/t')).toBe(2);
    expect(meminfo(m, 'Cached')).toBe(8);
    expect(meminfo(m, 'Dirty')).toBe(8);
    p.ftruncate(fd, 100 * MiB);
    expect(cached(m, '/data/t')).toBe(2);
    expect(size(p, fd)).toBe(100 * MiB);
    p.ftruncate(fd, 0);
    expect(meminfo(m, 'Cached')).toBe(0);
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('writeback', () => {
  it('the flusher writes a file dirty for dirty_expire_centisecs (30 s), at the disk’s 100 MiB/s', () => {
    const { m, p } = boot();
    const mi = (n: string) => meminfo(m, n);
    const pages = 10240; // 40 MiB: below the background threshold, so only age starts writeback
    expect(pages).toBeLessThan(vmstat(m, 'nr_dirty_background_threshold'));
    const t0 = m.now;
    const written = vmstat(m, 'nr_written');
    const pgpgout = vmstat(m, 'pgpgout');
    const fd = p.open('/data/log', O_CREAT | O_WRONLY);
    p.write(fd, pages * PG);
    expect(mi('Dirty')).toBe(pages * 4);
    m.advance(29.9e9);
    expect(mi('Dirty')).toBe(pages * 4);
    expect(mi('Writeback')).toBe(0);
    expect(vmstat(m, 'nr_written')).toBe(written);
    // The flusher wakes every dirty_writeback_centisecs (5 s): the first run after the inode
    // has been dirty for 30 s takes it.
    let start = -1;
    while (m.now - t0 < 35.1e9) {
      m.advance('10ms');
      if (mi('Dirty') < pages * 4) {
        start = m.now;
        break;
      }
    }
    expect(start - t0).toBeGreaterThanOrEqual(30e9);
    expect(start - t0).toBeLessThanOrEqual(35.01e9);
    expect(mi('Writeback')).toBeGreaterThan(0);
    // 40 MiB at 100 MiB/s: 0.4 s of writing.
    m.advance(start + 0.3e9 - m.now);
    expect(mi('Writeback')).toBeGreaterThan(0);
    expect(vmstat(m, 'nr_written') - written).toBeGreaterThan(0);
    expect(vmstat(m, 'nr_written') - written).toBeLessThan(pages);
    m.advance(start + 0.45e9 - m.now);
    expect(mi('Dirty')).toBe(0);
    expect(mi('Writeback')).toBe(0);
    expect(vmstat(m, 'nr_written') - written).toBe(pages);
    expect(vmstat(m, 'pgpgout') - pgpgout).toBe(pages * 4);
    expect(vmstat(m, 'nr_dirtied')).toBeGreaterThanOrEqual(pages);
    // Written pages stay cached, clean.
    expect(mi('Cached')).toBe(pages * 4);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('follows dirty_expire_centisecs and dirty_writeback_centisecs (0 stops periodic writeback)', () => {
    const { m, p } = boot();
    m.writeFile('/proc/sys/vm/dirty_expire_centisecs', '1000');
    const fd = p.open('/data/a', O_CREAT | O_WRONLY);
    p.write(fd, 4 * MiB);
    m.advance('9900ms');
    expect(meminfo(m, 'Dirty')).toBe(4096);
    m.advance('5200ms');
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(meminfo(m, 'Writeback')).toBe(0);
    m.writeFile('/proc/sys/vm/dirty_writeback_centisecs', '0');
    p.write(fd, 4 * MiB);
    m.advance('60s');
    expect(meminfo(m, 'Dirty')).toBe(4096);
    // Turning it back on wakes the flusher at once; the inode is long expired.
    m.writeFile('/proc/sys/vm/dirty_writeback_centisecs', '500');
    m.advance('100ms');
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(meminfo(m, 'Writeback')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('fsync() writes back that file’s dirty pages at once, and only that file’s', () => {
    const { m, p } = boot();
    const a = p.open('/data/a', O_CREAT | O_RDWR);
    const b = p.open('/data/b', O_CREAT | O_RDWR);
    p.write(a, 8 * MiB);
    p.write(b, 4 * MiB);
    const written = vmstat(m, 'nr_written');
    p.fsync(a);
    expect(meminfo(m, 'Dirty')).toBe(4096);
    expect(meminfo(m, 'Writeback')).toBe(0);
    expect(vmstat(m, 'nr_written') - written).toBe(2048);
    p.fsync(a);
    expect(vmstat(m, 'nr_written') - written).toBe(2048);
    // Opened read-only, fsync still works (6.18); tmpfs has nothing to write.
    p.fsync(p.open('/data/b', O_RDONLY));
    expect(meminfo(m, 'Dirty')).toBe(0);
    const s = p.open('/dev/shm/s', O_CREAT | O_RDWR);
    p.write(s, MiB);
    p.fsync(s);
    expect(vmstat(m, 'nr_written') - written).toBe(3072);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('above the background threshold the flusher starts at once and stops just below it', () => {
    const { m, p } = boot();
    const bg = vmstat(m, 'nr_dirty_background_threshold');
    const written = vmstat(m, 'nr_written');
    const fd = p.open('/data/big', O_CREAT | O_WRONLY);
    const pages = bg + 4096;
    p.write(fd, pages * PG);
    expect(vmstat(m, 'nr_written')).toBe(written);
    m.advance('1s');
    const dirty = meminfo(m, 'Dirty') / 4;
    expect(dirty).toBeLessThanOrEqual(vmstat(m, 'nr_dirty_background_threshold'));
    expect(dirty).toBeGreaterThan(bg - 2048);
    expect(meminfo(m, 'Writeback')).toBe(0);
    expect(vmstat(m, 'nr_written') - written).toBe(pages - dirty);
    // What is left waits for dirty_expire_centisecs.
    m.advance('20s');
    expect(meminfo(m, 'Dirty') / 4).toBe(dirty);
    m.advance('15s');
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a writer past the dirty threshold is throttled until dirty and writeback pages are back under it', () => {
    const { m, p } = boot();
    const thresh = vmstat(m, 'nr_dirty_threshold');
    const fd = p.open('/data/huge', O_CREAT | O_WRONLY);
    const bytes = (thresh + 8192) * PG;
    expect(p.write(fd, bytes)).toBe(bytes);
    const pending = (meminfo(m, 'Dirty') + meminfo(m, 'Writeback')) / 4;
    expect(pending).toBeLessThanOrEqual(vmstat(m, 'nr_dirty_threshold'));
    expect(vmstat(m, 'nr_written')).toBeGreaterThanOrEqual(8192);
    expect(meminfo(m, 'Cached')).toBe(thresh * 4 + 8192 * 4);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a single write() larger than free memory completes: the writer is throttled as it dirties pages', () => {
    const { m, p } = boot();
    expect(meminfo(m, 'MemFree')).toBeLessThan(600 * 1024);
    const fd = p.open('/data/huge', O_CREAT | O_WRONLY);
    expect(p.write(fd, 600 * MiB)).toBe(600 * MiB);
    expect(p.exited).toBe(false);
    expect(vmstat(m, 'oom_kill')).toBe(0);
    expect(size(p, fd)).toBe(600 * MiB);
    // Throttled every 32 pages it dirtied, the writer never left more than the limit dirty.
    expect((meminfo(m, 'Dirty') + meminfo(m, 'Writeback')) / 4).toBeLessThanOrEqual(
      vmstat(m, 'nr_dirty_threshold'),
    );
    expect(vmstat(m, 'nr_written')).toBeGreaterThan(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('expired dirty data drains at the disk’s full 100 MiB/s, however much there is', () => {
    const { m, p } = boot();
    // Thresholds high enough that 200 MiB stays dirty until it expires.
    m.writeFile('/proc/sys/vm/dirty_ratio', '60');
    m.writeFile('/proc/sys/vm/dirty_background_ratio', '50');
    const pages = 51200; // 200 MiB: two seconds of the disk
    expect(pages).toBeLessThan(vmstat(m, 'nr_dirty_background_threshold'));
    const t0 = m.now;
    const written = vmstat(m, 'nr_written');
    const fd = p.open('/data/log', O_CREAT | O_WRONLY);
    p.write(fd, pages * PG);
    m.advance(29.9e9);
    expect(meminfo(m, 'Dirty')).toBe(pages * 4);
    let start = -1;
    while (m.now - t0 < 35.1e9) {
      m.advance('10ms');
      if (meminfo(m, 'Dirty') < pages * 4) {
        start = m.now;
        break;
      }
    }
    expect(start).toBeGreaterThan(0);
    // After one second half is written; after two and a bit, all of it.
    m.advance(start + 1e9 - m.now);
    expect(vmstat(m, 'nr_written') - written).toBeGreaterThan(pages / 3);
    expect(vmstat(m, 'nr_written') - written).toBeLessThan(pages);
    m.advance(start + 2.1e9 - m.now);
    expect(meminfo(m, 'Dirty')).toBe(0);
    expect(meminfo(m, 'Writeback')).toBe(0);
    expect(vmstat(m, 'nr_written') - written).toBe(pages);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('pages a throttled writer writes back count once each: pgpgout is 4 KiB per written page', () => {
    const { m, p } = boot();
    const written = vmstat(m, 'nr_written');
    const pgpgout = vmstat(m, 'pgpgout');
    const fd = p.open('/data/big', O_CREAT | O_WRONLY);
    p.write(fd, 200 * MiB);
    const n = vmstat(m, 'nr_written') - written;
    expect(n).toBeGreaterThan(0); // the writer was throttled
    expect(vmstat(m, 'pgpgout') - pgpgout).toBe(n * 4);
    // No reclaim was throttled waiting for writeback.
    expect(vmstat(m, 'nr_throttled_written')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('dirty_bytes overrides dirty_ratio in the thresholds /proc/vmstat shows', () => {
    const { m } = boot();
    m.writeFile('/proc/sys/vm/dirty_bytes', String(64 * MiB));
    m.writeFile('/proc/sys/vm/dirty_background_bytes', String(16 * MiB));
    expect(vmstat(m, 'nr_dirty_threshold')).toBe(16384);
    expect(vmstat(m, 'nr_dirty_background_threshold')).toBe(4096);
    expect(m.readFile('/proc/sys/vm/dirty_ratio').trim()).toBe('0');
    expect(m.readFile('/proc/sys/vm/dirty_background_ratio').trim()).toBe('0');
  });
});

describe('posix_fadvise(2)', () => {
  it('DONTNEED drops clean pages, whole pages only, the last one only at a page end or the end of the file (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/data/d', O_CREAT | O_RDWR);
    p.write(fd, MiB);
    p.fsync(fd);
    const as = m.vm.files.lookup('/data/d')!.mapping;
    const present = () => [...Array(256).keys()].filter((i) => filemap_get_folio(as, i) >= 0);
    p.fadvise(fd, 4097, 3 * PG, POSIX_FADV_DONTNEED);
    expect(cached(m, '/data/d')).toBe(254);
    expect(present().slice(0, 4)).toEqual([0, 1, 4, 5]);
    p.fadvise(fd, 1040000, 0, POSIX_FADV_DONTNEED);
    expect(present().slice(-2)).toEqual([252, 253]);
    // A range ending mid-page inside the file keeps that page; one ending at a page end does not.
    p.fadvise(fd, 8 * PG, PG + 100, POSIX_FADV_DONTNEED);
    expect(present()).toContain(9);
    expect(present()).not.toContain(8);
    p.fadvise(fd, 10 * PG, 2 * PG, POSIX_FADV_DONTNEED);
    expect(present()).not.toContain(10);
    expect(present()).not.toContain(11);
    expect(present()).toContain(12);
    expect(cached(m, '/data/d')).toBe(256 - 2 - 2 - 1 - 2);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('DONTNEED of small ranges drops exactly those pages, anywhere in a large file', () => {
    const { m, p } = boot();
    const pages = 16384; // 64 MiB, clean
    const fd = p.open('/data/big', O_CREAT | O_RDWR);
    p.write(fd, pages * PG);
    p.fsync(fd);
    const as = m.vm.files.lookup('/data/big')!.mapping;
    // Single pages, ranges across the index's 512-page chunks, and one past the end.
    const ranges: Array<[number, number]> = [
      [0, 1],
      [511, 2],
      [1000, 100],
      [1535, 1026],
      [8191, 1],
      [pages - 3, 10],
    ];
    for (let i = 0; i < 1000; i++) ranges.push([(i * 7919) % pages, 1]);
    for (const [first, n] of ranges) p.fadvise(fd, first * PG, n * PG, POSIX_FADV_DONTNEED);
    const dropped = new Set<number>();
    for (const [first, n] of ranges) for (let i = first; i < Math.min(first + n, pages); i++) dropped.add(i);
    const wrong: number[] = [];
    for (let i = 0; i < pages; i++) if (filemap_get_folio(as, i) < 0 !== dropped.has(i)) wrong.push(i);
    expect(wrong).toEqual([]);
    expect(cached(m, '/data/big')).toBe(pages - dropped.size);
    expect(meminfo(m, 'Cached')).toBe((pages - dropped.size) * 4);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('DONTNEED starts writeback of dirty pages in the range and keeps them until it is done', () => {
    const { m, p } = boot();
    const fd = p.open('/data/d', O_CREAT | O_RDWR);
    p.write(fd, 4 * MiB);
    const other = p.open('/data/e', O_CREAT | O_RDWR);
    p.write(other, MiB);
    p.fadvise(fd, 0, 2 * MiB, POSIX_FADV_DONTNEED);
    expect(meminfo(m, 'Writeback')).toBe(2048);
    expect(meminfo(m, 'Dirty')).toBe(2048 + 1024);
    expect(cached(m, '/data/d')).toBe(1024);
    m.advance('100ms');
    expect(meminfo(m, 'Writeback')).toBe(0);
    p.fadvise(fd, 0, 2 * MiB, POSIX_FADV_DONTNEED);
    expect(cached(m, '/data/d')).toBe(512);
    expect(cached(m, '/data/e')).toBe(256);
    expect(meminfo(m, 'Dirty')).toBe(2048 + 1024);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('DONTNEED keeps mapped pages', () => {
    const { m, p } = boot();
    const fd = p.open('/data/d', O_CREAT | O_RDWR);
    p.write(fd, 64 * PG);
    p.fsync(fd);
    const a = p.mmap(0, 16 * PG, PROT_READ, MAP_SHARED, fd, 0);
    p.touch(a, 16 * PG);
    p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    expect(cached(m, '/data/d')).toBe(16);
    expect(meminfo(m, 'Mapped')).toBe(64);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('on tmpfs every advice is accepted and ignored, clean pages included (6.18)', () => {
    const { m, p } = boot();
    const fd = p.open('/dev/shm/s', O_CREAT | O_RDWR);
    p.ftruncate(fd, 16 * MiB);
    const a = p.mmap(0, 16 * MiB, PROT_READ, MAP_SHARED, fd, 0);
    p.touch(a, 16 * MiB);
    p.munmap(a, 16 * MiB);
    expect(meminfo(m, 'Shmem')).toBe(16384);
    for (const advice of [
      POSIX_FADV_DONTNEED,
      POSIX_FADV_WILLNEED,
      POSIX_FADV_NORMAL,
      POSIX_FADV_RANDOM,
      POSIX_FADV_SEQUENTIAL,
      POSIX_FADV_NOREUSE,
    ])
      expect(errno(() => p.fadvise(fd, 0, 0, advice))).toBe('ok');
    expect(meminfo(m, 'Shmem')).toBe(16384);
    expect(errno(() => p.fadvise(fd, 0, 0, 99))).toBe('EINVAL');
    expect(m.invariantViolations()).toEqual([]);
  });

  it('EINVAL for an unknown advice or a negative length; a negative offset is accepted (6.18)', () => {
    const { p } = boot();
    const fd = p.open('/data/d', O_CREAT | O_RDWR);
    p.write(fd, 4 * PG);
    expect(errno(() => p.fadvise(fd, 0, 0, 99))).toBe('EINVAL');
    expect(errno(() => p.fadvise(fd, 0, -1, POSIX_FADV_DONTNEED))).toBe('EINVAL');
    expect(errno(() => p.fadvise(fd, -1, 0, POSIX_FADV_DONTNEED))).toBe('ok');
  });

  it('WILLNEED reads the range ahead, up to the disk’s largest request (320 pages) (6.18)', () => {
    const { m, p } = boot();
    coldFile(p, '/data/w', 8 * MiB);
    const fd = p.open('/data/w', O_RDONLY);
    const pgpgin = vmstat(m, 'pgpgin');
    p.fadvise(fd, 40960, 8192, POSIX_FADV_WILLNEED);
    expect(cached(m, '/data/w')).toBe(2);
    expect(vmstat(m, 'pgpgin') - pgpgin).toBe(8);
    p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    p.fadvise(fd, 0, 4 * MiB, POSIX_FADV_WILLNEED);
    expect(cached(m, '/data/w')).toBe(320);
    // Reading what was read ahead takes no more I/O.
    const before = vmstat(m, 'pgpgin');
    p.pread(fd, 64 * KiB, 0);
    expect(vmstat(m, 'pgpgin')).toBe(before);
    // Nothing past the end of the file.
    p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    p.fadvise(fd, 8 * MiB - PG, 0, POSIX_FADV_WILLNEED);
    expect(cached(m, '/data/w')).toBe(1);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('drop_caches', () => {
  it('1 drops only clean, unmapped page cache: dirty, mapped and written tmpfs pages stay (6.18)', () => {
    const { m, p } = boot();
    const dirty = p.open('/data/dirty', O_CREAT | O_RDWR);
    p.write(dirty, 8 * MiB);
    const clean = p.open('/data/clean', O_CREAT | O_RDWR);
    p.write(clean, 8 * MiB);
    p.fsync(clean);
    const mapped = p.open('/data/mapped', O_CREAT | O_RDWR);
    p.write(mapped, 8 * MiB);
    p.fsync(mapped);
    const a = p.mmap(0, 8 * MiB, PROT_READ, MAP_SHARED, mapped, 0);
    p.touch(a, 8 * MiB);
    const shm = p.open('/dev/shm/written', O_CREAT | O_RDWR);
    p.write(shm, 8 * MiB);
    // Pages a read fault allocated in a tmpfs hole are clean: 6.18 drops them.
    const holes = p.open('/dev/shm/holes', O_CREAT | O_RDWR);
    p.ftruncate(holes, 8 * MiB);
    const h = p.mmap(0, 8 * MiB, PROT_READ, MAP_SHARED, holes, 0);
    p.touch(h, 8 * MiB);
    p.munmap(h, 8 * MiB);
    expect(meminfo(m, 'Cached')).toBe(5 * 8192);
    expect(meminfo(m, 'Shmem')).toBe(2 * 8192);
    const drops = vmstat(m, 'drop_pagecache');
    m.writeFile('/proc/sys/vm/drop_caches', '1');
    expect(vmstat(m, 'drop_pagecache')).toBe(drops + 1);
    expect(cached(m, '/data/clean')).toBe(0);
    expect(cached(m, '/dev/shm/holes')).toBe(0);
    expect(cached(m, '/data/dirty')).toBe(2048);
    expect(cached(m, '/data/mapped')).toBe(2048);
    expect(cached(m, '/dev/shm/written')).toBe(2048);
    expect(meminfo(m, 'Cached')).toBe(3 * 8192);
    expect(meminfo(m, 'Dirty')).toBe(8192);
    expect(meminfo(m, 'Shmem')).toBe(8192);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('readahead', () => {
  it('a sequential 4 KiB reader gets windows of 4, 8, 16 and 32 pages, each read at the last one’s mark (6.18)', () => {
    const { m, p } = boot();
    coldFile(p, '/data/big', 8 * MiB);
    expect(meminfo(m, 'Cached')).toBe(0);
    const fd = p.open('/data/big', O_RDONLY);
    const pgpgin = vmstat(m, 'pgpgin');
    const grew: Array<[number, number]> = [];
    let last = 0;
    for (let i = 0; i < 130; i++) {
      expect(p.read(fd, 4096)).toBe(4096);
      const now = meminfo(m, 'Cached') / 4;
      if (now !== last) grew.push([i, now]);
      last = now;
    }
    // 6.18 (mincore after each read): the same reads, the same totals.
    expect(grew).toEqual([
      [0, 4],
      [1, 12],
      [4, 28],
      [12, 60],
      [28, 92],
      [60, 124],
      [92, 156],
      [124, 188],
    ]);
    expect(vmstat(m, 'pgpgin') - pgpgin).toBe(188 * 4);
    expect(vmstat(m, 'pgmajfault')).toBe(0);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a read that starts one page past where the last one ended is still sequential: it reads ahead', () => {
    const { m, p } = boot();
    coldFile(p, '/data/big', 8 * MiB);
    const fd = p.open('/data/big', O_RDONLY);
    p.pread(fd, 4096, 100 * PG); // a lone read: one page
    expect(cached(m, '/data/big')).toBe(1);
    const pgpgin = vmstat(m, 'pgpgin');
    // It ended at page 101 (prev_pos); page 102 is within one page of it: a 4-page window.
    p.pread(fd, 4096, 102 * PG);
    expect(vmstat(m, 'pgpgin') - pgpgin).toBe(16);
    expect(cached(m, '/data/big')).toBe(1 + 4);
    // Two pages past the end is a random read again: the page alone.
    p.pread(fd, 4096, 200 * PG);
    p.pread(fd, 4096, 203 * PG);
    expect(cached(m, '/data/big')).toBe(1 + 4 + 1 + 1);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('a large read reads ahead up to the disk’s request size: read(1 MiB) caches 512 pages, read(256 KiB) 128 (6.18)', () => {
    const { m, p } = boot();
    coldFile(p, '/data/big', 8 * MiB);
    const fd = p.open('/data/big', O_RDONLY);
    expect(p.read(fd, MiB)).toBe(MiB);
    expect(cached(m, '/data/big')).toBe(512);
    p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    p.lseek(fd, 0, SEEK_SET);
    expect(p.read(fd, 256 * KiB)).toBe(256 * KiB);
    expect(cached(m, '/data/big')).toBe(128);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('POSIX_FADV_RANDOM reads exactly the pages asked for; a lone random read reads one page (6.18)', () => {
    const { m, p } = boot();
    coldFile(p, '/data/big', 8 * MiB);
    const fd = p.open('/data/big', O_RDONLY);
    const pgpgin = vmstat(m, 'pgpgin');
    p.fadvise(fd, 0, 0, POSIX_FADV_RANDOM);
    p.pread(fd, 4096, 100 * PG);
    expect(cached(m, '/data/big')).toBe(1);
    p.pread(fd, 16384, 200 * PG);
    expect(cached(m, '/data/big')).toBe(5);
    expect(vmstat(m, 'pgpgin') - pgpgin).toBe(5 * 4);
    // Back to normal: a read far from the last one is random; one before it is not sequential.
    p.fadvise(fd, 0, 0, POSIX_FADV_NORMAL);
    p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    p.pread(fd, 4096, 1000 * PG);
    expect(cached(m, '/data/big')).toBe(1);
    p.pread(fd, 4096, 500 * PG);
    expect(cached(m, '/data/big')).toBe(2);
    // A read that continues the previous one is sequential again.
    p.pread(fd, 4096, 501 * PG);
    expect(cached(m, '/data/big')).toBe(2 + 4);
    // SEQUENTIAL doubles the window but a one-page read from the start still reads 4.
    p.fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    p.fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    p.lseek(fd, 0, SEEK_SET);
    p.read(fd, 4096);
    expect(cached(m, '/data/big')).toBe(4);
    expect(m.invariantViolations()).toEqual([]);
  });

  it('reading a tmpfs file reads nothing in: holes read as zeroes without pages', () => {
    const { m, p } = boot();
    const fd = p.open('/dev/shm/z', O_CREAT | O_RDWR);
    p.ftruncate(fd, 4 * MiB);
    const pgpgin = vmstat(m, 'pgpgin');
    expect(p.read(fd, 8 * MiB)).toBe(4 * MiB);
    expect(meminfo(m, 'Shmem')).toBe(0);
    expect(vmstat(m, 'pgpgin')).toBe(pgpgin);
    expect(m.invariantViolations()).toEqual([]);
  });
});

describe('the disk behind /', () => {
  it('takes its readahead window from the machine config (read_ahead_kb)', () => {
    const run = (read_ahead_kb: number): number => {
      const m = Machine.boot({ memory: '512M', disk: { read_ahead_kb } });
      const p = m.spawn();
      const fd = p.open('/data/big', O_CREAT | O_RDWR);
      p.ftruncate(fd, 64 * MiB);
      p.pread(fd, PG, 0);
      p.pread(fd, PG, PG); // the async mark: the second window
      return meminfo(m, 'Cached') / 4;
    };
    // get_init_ra_size(1) = 4, then get_next_ra_size(4): ×2 under a 32-page window, ×4 under 2048.
    expect(run(128)).toBe(4 + 8);
    expect(run(8192)).toBe(4 + 16);
  });

  it('refuses an impossible disk configuration, naming the field', () => {
    expect(() => Machine.boot({ memory: '512M', disk: { read_ahead_kb: -1 } })).toThrow(
      /disk\.read_ahead_kb/,
    );
  });
});
