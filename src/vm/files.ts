/**
 * The files user processes open, map, read and write: a flat namespace of regular files on a
 * disk filesystem (`/`, ext4-like, written back to a device at its bandwidth) and tmpfs mounts
 * (`/dev/shm` and `/run` by default: memory only), their inodes (one address_space each, with
 * a dentry and an inode slab object), open files (struct file, with the position and readahead
 * state) and per-process descriptor tables. Directories, links and file contents are not
 * modelled: what matters here is which pages a file brings into memory and holds.
 *
 * An inode lives while it has a name, an open file or a mapping; the last of them going evicts
 * it (truncate_inode_pages_final: its page cache is freed). A named file pins its dentry and
 * inode objects (as tmpfs does; a disk file's would be reclaimable in the kernel).
 */
import { errnos } from '../lib/errno.ts';
import type { AddressSpace, BackingDev } from '../mm/filemap.ts';
import { GFP_KERNEL } from '../mm/gfp.ts';
import type { Hstate } from '../mm/hstate.ts';
import type { MM } from '../mm/mm.ts';
import { PAGE_SIZE } from '../mm/mmzone.ts';
import { FileRaState } from '../mm/readahead.ts';
import { ShmemSbInfo } from '../mm/shmem.ts';
import {
  alloc_super,
  clear_nlink,
  d_alloc,
  d_drop,
  d_instantiate,
  dput,
  new_inode,
  type SuperBlock,
} from '../mm/shrinker.ts';
import { kmem_cache_by_name } from '../mm/slab_common.ts';
import { truncate_inode_pages } from '../mm/truncate.ts';
import { CAP_DAC_OVERRIDE, CAP_FOWNER, O_ACCMODE, O_APPEND, O_RDONLY, O_RDWR, O_WRONLY } from './uapi.ts';
import type { Vm } from './vm.ts';

/** A file system mounted at `path`: tmpfs (sbinfo), the disk (bdi) or hugetlbfs (hstate). */
export class Mount {
  constructor(
    readonly path: string,
    readonly fstype: 'tmpfs' | 'ext4' | 'hugetlbfs',
    /** The major:minor /proc/<pid>/maps shows for its files. */
    readonly dev: string,
    readonly sbinfo: ShmemSbInfo | null,
    readonly bdi: BackingDev | null,
    readonly sb: SuperBlock,
    /** hugetlbfs: the page size of its files (the `pagesize=` mount option). */
    readonly hstate: Hstate | null = null,
  ) {}
}

/** struct inode of a regular file. */
export class Inode {
  nlink = 1;
  /** Open files (struct file) referring to it. */
  nr_files = 0;
  /** Pages charged to Committed_AS for its whole size (shmem_acct_size: shared anonymous memory). */
  acct_size = 0;
  /** super_operations->evict_inode beyond the page cache (hugetlbfs_evict_inode), if any. */
  evict: ((cpu: number) => void) | null = null;

  constructor(
    readonly ino: number,
    readonly mapping: AddressSpace,
    readonly mount: Mount,
    /** The name it was created with (maps shows it, with " (deleted)" once unlinked). */
    readonly path: string,
    readonly mode: number,
    readonly uid: number,
    readonly gid: number,
    /** Its dentry and inode slab objects (handles). */
    readonly dentry: number,
    readonly inode_obj: number,
  ) {}
}

/** The disk behind `/`: readahead window, largest request, write bandwidth. */
export interface DiskConfig {
  /** /sys/block/<dev>/queue/read_ahead_kb */
  read_ahead_kb: number;
  /** /sys/block/<dev>/queue/max_sectors_kb */
  max_sectors_kb: number;
  /** The device's write bandwidth, MiB/s (6.18 starts every bdi's estimate at 100 MiB/s). */
  write_mb_s: number;
}

/**
 * A SATA disk's defaults: read_ahead_kb 128 (VM_READAHEAD_PAGES), max_sectors_kb 1280
 * (BLK_DEF_MAX_SECTORS_CAP), 100 MiB/s. Our machines' virtio disk has read_ahead_kb 8192 and
 * max_sectors_kb 4096, but also ext4 large folios, which the model's page cache lacks.
 */
export const DEFAULT_DISK: DiskConfig = { read_ahead_kb: 128, max_sectors_kb: 1280, write_mb_s: 100 };

/** struct file: an open file, shared by the descriptors and mappings that refer to it. */
export class OpenFile {
  pos = 0;
  /** f_count: descriptors (also in forked children) and VMAs holding it. */
  count = 1;
  readonly ra = new FileRaState();
  /** FMODE_RANDOM (POSIX_FADV_RANDOM). */
  random = false;
  /** FMODE_NOREUSE (POSIX_FADV_NOREUSE): its mappings carry no recency (vma_has_recency). */
  noreuse = false;
  /** file->f_ra.mmap_miss: faults that had to read, less those that found the page. */
  mmap_miss = 0;

  constructor(
    readonly id: number,
    readonly inode: Inode,
    /** O_ACCMODE and O_APPEND of the open. */
    readonly flags: number,
  ) {}

  /** FMODE_READ: O_RDONLY or O_RDWR (access mode 3, O_ACCMODE, gives neither). */
  get readable(): boolean {
    const acc = this.flags & O_ACCMODE;
    return acc === O_RDONLY || acc === O_RDWR;
  }

  get writable(): boolean {
    return (this.flags & O_ACCMODE) === O_WRONLY || (this.flags & O_ACCMODE) === O_RDWR;
  }

  get append(): boolean {
    return (this.flags & O_APPEND) !== 0;
  }
}

/** Who is asking: a process's ids and capabilities. */
export interface FileCred {
  uid: number;
  gid: number;
  capable(cap: number): boolean;
}

/** PATH_MAX */
const PATH_MAX = 4096;

/** A thrown -errno from the file layer, with why (the syscall wrappers turn it into ErrnoError). */
export class FileError extends Error {
  constructor(
    readonly errno: number,
    readonly why: string,
  ) {
    super(why);
  }
}

function fail(code: keyof typeof errnos, why: string): never {
  throw new FileError(-errnos[code], why);
}

/** The machine's files: mounts, names, inodes and open files. */
export class Files {
  readonly mounts: Mount[] = [];
  private readonly names = new Map<string, Inode>();
  /** Inodes by address_space id (for the maps file and the file rmap). */
  private readonly byMapping = new Map<number, Inode>();
  /** Open files by id (VMAs refer to them by id); slot 0 is never used. */
  private readonly open: Array<OpenFile | undefined> = [undefined];
  private readonly freeIds: number[] = [];
  private nextIno = 12;
  private shm_sb: SuperBlock | null = null;
  /** The kernel's internal tmpfs (shm_mnt): memfds and shared anonymous memory. */
  readonly shm_mount: Mount;
  /** hugetlbfs_vfsmount[]: the internal hugetlbfs mount of each huge page size (MFD_HUGETLB). */
  private readonly hugetlbfs_internal = new Map<Hstate, Mount>();

  constructor(
    readonly mm: MM,
    /**
     * Called when an inode loses its last name, open file and mapping, before eviction, to
     * ask whether any VMA still maps it (the vm layer's i_mmap).
     */
    private readonly mapped: (as: AddressSpace) => boolean,
    /**
     * Charge `pages` to the commit count for the running task (negative: give back); false when
     * the overcommit policy refuses.
     */
    private readonly acct: (pages: number) => boolean = () => true,
    /** The disk behind `/` (the machine config's `disk`). */
    private readonly disk: DiskConfig = DEFAULT_DISK,
  ) {
    const totalram = mm.totalram_pages;
    const root_sb = mm.slab.super_blocks[0];
    const sda = {
      name: 'sda',
      write_bw: this.disk.write_mb_s * 2 ** 20,
      io_pages: Math.floor(this.disk.max_sectors_kb / 4),
      ra_pages: Math.floor(this.disk.read_ahead_kb / 4),
    };
    this.mounts.push(new Mount('/', 'ext4', '08:01', null, sda, root_sb));
    // shmem_default_max_blocks(): half of RAM; systemd mounts /run with size=20%.
    this.mount_tmpfs('/dev/shm', Math.floor(totalram / 2) * PAGE_SIZE);
    this.mount_tmpfs('/run', Math.floor(totalram / 5) * PAGE_SIZE);
    // shm_mnt: memfds and shared anonymous memory, limited only by memory.
    const shm = new ShmemSbInfo(Number.POSITIVE_INFINITY);
    this.shm_mount = new Mount('', 'tmpfs', '00:01', shm, null, this.shmem_sb());
    // systemd's dev-hugepages.mount: hugetlbfs of the default huge page size.
    if (mm.hugetlb.hstates.length) this.mount_hugetlbfs('/dev/hugepages', mm.hugetlb.default_hstate);
  }

  /**
   * Mount a hugetlbfs of huge page size `h` at `path` (`mount -t hugetlbfs -o pagesize=…`). No
   * `size=`/`min_size=` (subpools) or `nr_inodes=` limits are modelled.
   */
  mount_hugetlbfs(path: string, h: Hstate): Mount {
    const norm = normalize(path);
    if (this.mounts.some((m) => m.path === norm)) fail('EBUSY', `${norm} is already a mount point`);
    const minor = 0x19 + this.mounts.length;
    const dev = `00:${minor.toString(16).padStart(2, '0')}`;
    const m = new Mount(norm, 'hugetlbfs', dev, null, null, this.shmem_sb(), h);
    this.mounts.push(m);
    return m;
  }

  /** hugetlbfs_vfsmount[hstate_index(h)]: the internal mount memfd_create(MFD_HUGETLB) uses. */
  hugetlbfs_mount(h: Hstate): Mount {
    let m = this.hugetlbfs_internal.get(h);
    if (!m) {
      m = new Mount(
        '',
        'hugetlbfs',
        `00:${(0x40 + this.hugetlbfs_internal.size).toString(16)}`,
        null,
        null,
        this.shmem_sb(),
        h,
      );
      this.hugetlbfs_internal.set(h, m);
    }
    return m;
  }

  /** Mount a tmpfs of `size` bytes at `path` (a file system of its own, like `mount -t tmpfs`). */
  mount_tmpfs(path: string, size: number): Mount {
    const norm = normalize(path);
    if (this.mounts.some((m) => m.path === norm)) fail('EBUSY', `${norm} is already a mount point`);
    const minor = 0x19 + this.mounts.length;
    const m = new Mount(
      norm,
      'tmpfs',
      `00:${minor.toString(16).padStart(2, '0')}`,
      new ShmemSbInfo(Math.floor(size / PAGE_SIZE)),
      null,
      this.shmem_sb(),
    );
    this.mounts.push(m);
    return m;
  }

  private shmem_sb(): SuperBlock {
    this.shm_sb ??= alloc_super(this.mm, 'tmpfs', kmem_cache_by_name(this.mm, 'shmem_inode_cache'));
    return this.shm_sb;
  }

  /** The mount a path lives on: the longest mount-point prefix. */
  mount_of(path: string): Mount {
    let best = this.mounts[0];
    for (const m of this.mounts) {
      if ((path === m.path || path.startsWith(`${m.path}/`)) && m.path.length > best.path.length) best = m;
    }
    return best;
  }

  /** The inode named `path`, or undefined. */
  lookup(path: string): Inode | undefined {
    return this.names.get(path);
  }

  /** The inode whose page cache is `as`. */
  inode_of(as: AddressSpace): Inode | undefined {
    return this.byMapping.get(as.id);
  }

  /** Pages tmpfs and shared memory hold charged to Committed_AS (per page or by size). */
  committed(): number {
    let pages = 0;
    for (const inode of this.byMapping.values())
      pages += inode.acct_size + (inode.mapping.acct_blocks ? inode.mapping.nrpages : 0);
    return pages;
  }

  /** Every named file's path, sorted. */
  list(): string[] {
    return [...this.names.keys()].sort();
  }

  /**
   * Create a regular file (open with O_CREAT): the inode, its dentry and inode objects, its
   * address_space. With `name` null the file is unnamed from the start (memfd, shared anonymous
   * memory), shown in maps as `label`.
   */
  create(
    name: string | null,
    mount: Mount,
    mode: number,
    cred: FileCred,
    cpu: number,
    label = name ?? '',
  ): Inode {
    const sb = mount.sb;
    const dentry = d_alloc(sb, GFP_KERNEL, cpu);
    const inode_obj = dentry ? new_inode(sb, GFP_KERNEL, cpu) : 0;
    if (!inode_obj) {
      if (dentry) dput(sb, dentry, cpu);
      fail('ENOMEM', 'no memory for the dentry or inode');
    }
    d_instantiate(sb, dentry, inode_obj);
    const as = this.mm.page_cache.create(mount.sbinfo, mount.bdi);
    // tmpfs files are VM_NORESERVE: their pages are charged as they are allocated.
    if (mount.sbinfo) as.acct_blocks = this.acct;
    const inode = new Inode(
      this.nextIno++,
      as,
      mount,
      label,
      mode & 0o7777,
      cred.uid,
      cred.gid,
      dentry,
      inode_obj,
    );
    this.byMapping.set(as.id, inode);
    if (name !== null) this.names.set(name, inode);
    else this.drop_name(inode);
    return inode;
  }

  /** unlink(2): drop the name; the inode goes when nothing else holds it. */
  unlink(path: string, cred: FileCred, cpu: number): void {
    const inode = this.names.get(path);
    if (!inode) fail('ENOENT', `${path} does not exist`);
    // A sticky, world-writable directory (/tmp, /dev/shm): only the owner (or CAP_FOWNER) may.
    if (cred.uid !== inode.uid && !cred.capable(CAP_FOWNER))
      fail('EPERM', `${path} belongs to uid ${inode.uid} in a sticky directory`);
    this.names.delete(path);
    this.drop_name(inode);
    this.put_inode(inode, cpu);
  }

  /** The inode has no name any more: its objects go with its last reference. */
  private drop_name(inode: Inode): void {
    inode.nlink = 0;
    clear_nlink(inode.mount.sb, inode.inode_obj);
    d_drop(inode.mount.sb, inode.dentry);
  }

  /** Open `inode` with `flags`; returns the new struct file. */
  open_file(inode: Inode, flags: number): OpenFile {
    const id = this.freeIds.pop() ?? this.open.length;
    const file = new OpenFile(id, inode, flags);
    // file_ra_state_init(): the window of the file's device (tmpfs keeps the default).
    if (inode.mapping.bdi) file.ra.ra_pages = inode.mapping.bdi.ra_pages;
    this.open[id] = file;
    inode.nr_files++;
    return file;
  }

  /** The open file with this id (a VMA's vm_file). */
  file(id: number): OpenFile {
    return this.open[id]!;
  }

  /** get_file(): another reference (a new descriptor or VMA). */
  get_file(file: OpenFile): void {
    file.count++;
  }

  /** fput(): drop a reference; the last one closes the file. */
  fput(file: OpenFile, cpu: number): void {
    if (--file.count > 0) return;
    this.open[file.id] = undefined;
    this.freeIds.push(file.id);
    file.inode.nr_files--;
    this.put_inode(file.inode, cpu);
  }

  /**
   * iput_final() + evict(): an inode with no name, open file or mapping left frees its page
   * cache, its objects and its address_space.
   */
  put_inode(inode: Inode, cpu: number): void {
    if (inode.nlink || inode.nr_files || this.mapped(inode.mapping)) return;
    const as = inode.mapping;
    inode.evict?.(cpu);
    truncate_inode_pages(this.mm, as, 0, cpu);
    if (inode.acct_size) this.acct(-inode.acct_size); // shmem_unacct_size()
    this.byMapping.delete(as.id);
    this.mm.page_cache.destroy(as);
    dput(inode.mount.sb, inode.dentry, cpu);
  }

  /**
   * may_open() / inode_permission(): the owner's, group's or others' bits of `mode` allow
   * `mask` (4 read, 2 write); CAP_DAC_OVERRIDE allows anything.
   */
  permission(inode: Inode, mask: number, cred: FileCred): boolean {
    if (cred.capable(CAP_DAC_OVERRIDE)) return true;
    const shift = cred.uid === inode.uid ? 6 : cred.gid === inode.gid ? 3 : 0;
    return ((inode.mode >> shift) & mask) === mask;
  }
}

/**
 * kernel: mm/shmem.c shmem_zero_setup()
 * A MAP_SHARED anonymous mapping is backed by an unnamed file of its size on the internal tmpfs
 * (maps shows it as "/dev/zero (deleted)"); the VMA holds the only reference.
 */
export function shmem_zero_setup(
  vm: Vm,
  cred: FileCred & { mm: { cpu: number } },
  vma: number,
  size: number,
  acct_size: number,
): void {
  const files = vm.files;
  const inode = files.create(null, files.shm_mount, 0o777, cred, cred.mm.cpu, '/dev/zero');
  inode.mapping.i_size = size;
  // Charged for its size at mmap (the caller did it), unless VM_NORESERVE: then page by page.
  if (acct_size) {
    inode.acct_size = acct_size;
    inode.mapping.acct_blocks = null;
  }
  const file = files.open_file(inode, O_RDWR);
  vm.vmas.set_file(vma, file.id, inode.mapping.id);
}

/** Check and normalise an absolute path (no directories are modelled: "." and ".." are refused). */
export function normalize(path: string): string {
  if (typeof path !== 'string' || !path.startsWith('/')) fail('ENOENT', `${path} is not an absolute path`);
  if (path.length >= PATH_MAX) fail('ENAMETOOLONG', 'path longer than PATH_MAX');
  const parts = path.split('/').filter((p) => p !== '');
  for (const p of parts) {
    if (p === '.' || p === '..') fail('ENOENT', `${path}: "." and ".." are not supported`);
    if (p.length > 255) fail('ENAMETOOLONG', 'a path component is longer than NAME_MAX');
  }
  return `/${parts.join('/')}`;
}
