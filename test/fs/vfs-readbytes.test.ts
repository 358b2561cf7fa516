/**
 * Byte reads (pread) through the VFS: text files read as their UTF-8 bytes at any offset, binary
 * files only as bytes; bad offsets are EINVAL; owners and modes decide who may open what, and a
 * mounted directory resolves paths on every lookup.
 */
import { describe, expect, it } from 'vitest';
import { ROOT, Vfs } from '../../src/fs/vfs.ts';
import type { ErrnoError } from '../../src/lib/errno.ts';
import { Machine } from '../../src/sim/machine.ts';

function errnoOf(f: () => unknown): string | undefined {
  try {
    f();
  } catch (e) {
    return (e as ErrnoError).code;
  }
  return undefined;
}

describe('Machine.readFileBytes', () => {
  const m = Machine.boot({ memory: '256M', cpus: 1 });

  it('a text file reads as the bytes of its text, sliced by offset and length', () => {
    const text = m.readFile('/proc/meminfo');
    const bytes = m.readFileBytes('/proc/meminfo');
    expect(new TextDecoder().decode(bytes)).toBe(text);
    expect(new TextDecoder().decode(m.readFileBytes('/proc/meminfo', { offset: 3, length: 10 }))).toBe(
      text.slice(3, 13),
    );
    expect(m.readFileBytes('/proc/meminfo', { offset: bytes.length + 5 }).length).toBe(0);
    expect(new TextDecoder().decode(m.readFileBytes('/proc/sys/vm/swappiness'))).toBe('60\n');
  });

  it('negative or fractional offsets and lengths are EINVAL', () => {
    expect(errnoOf(() => m.readFileBytes('/proc/meminfo', { offset: -8 }))).toBe('EINVAL');
    expect(errnoOf(() => m.readFileBytes('/proc/kpageflags', { offset: 8, length: -8 }))).toBe('EINVAL');
    expect(errnoOf(() => m.readFileBytes('/proc/kpageflags', { offset: 0.5, length: 8 }))).toBe('EINVAL');
  });

  it('permissions and missing files as for text reads', () => {
    expect(errnoOf(() => m.readFileBytes('/proc/pagetypeinfo', {}, { uid: 1, gid: 1 }))).toBe('EACCES');
    expect(errnoOf(() => m.readFileBytes('/proc/nonesuch'))).toBe('ENOENT');
    expect(errnoOf(() => m.readFileBytes('/proc/sys/vm/drop_caches'))).toBe('EACCES');
  });

  it('the string API is unchanged for text files', () => {
    expect(m.readFile('/proc/sys/vm/max_map_count')).toBe('65530\n');
  });
});

describe('Vfs', () => {
  it('owner, group and other bits decide for non-root readers', () => {
    const vfs = new Vfs();
    vfs.register('/proc/x', { mode: 0o440, uid: 5, gid: 7, read: () => 'x' });
    expect(vfs.read('/proc/x', { uid: 5, gid: 1 })).toBe('x');
    expect(vfs.read('/proc/x', { uid: 6, gid: 7 })).toBe('x');
    expect(errnoOf(() => vfs.read('/proc/x', { uid: 6, gid: 8 }))).toBe('EACCES');
    expect(vfs.read('/proc/x', ROOT)).toBe('x');
  });

  it('a mounted directory is asked on every lookup and listed with the rest', () => {
    const vfs = new Vfs();
    let live = true;
    vfs.register('/proc/a', { mode: 0o444, read: () => 'a' });
    vfs.mount('/proc/', {
      lookup: (path) => (live && path === '/proc/7/x' ? { mode: 0o444, read: () => 'seven' } : undefined),
      list: () => (live ? ['/proc/7/x'] : []),
    });
    expect(vfs.read('/proc/7/x')).toBe('seven');
    expect(vfs.list('/proc')).toEqual(['/proc/7/x', '/proc/a']);
    live = false;
    expect(errnoOf(() => vfs.read('/proc/7/x'))).toBe('ENOENT');
    expect(vfs.exists('/proc/7/x')).toBe(false);
    expect(vfs.read('/proc/a')).toBe('a');
  });

  it('open-time checks run before reads and writes', () => {
    const vfs = new Vfs();
    vfs.register('/proc/guarded', {
      mode: 0o666,
      open: (cred) => {
        if (cred.uid !== 0) throw Object.assign(new Error('no'), { code: 'EACCES' });
      },
      read: () => 'ok',
      write: () => {},
    });
    expect(vfs.read('/proc/guarded')).toBe('ok');
    expect(errnoOf(() => vfs.read('/proc/guarded', { uid: 3, gid: 3 }))).toBe('EACCES');
    expect(errnoOf(() => vfs.write('/proc/guarded', '1', { uid: 3, gid: 3 }))).toBe('EACCES');
  });
});
