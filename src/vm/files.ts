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
import { AddressSpace, type BackingDev, type ShmemAcct } from '../mm/filemap.ts';
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
import type { MmStruct } from './mm_struct.ts';
import type { FileTask } from './read_write.ts';
import { CAP_DAC_OVERRIDE, CAP_FOWNER, O_ACCMODE, O_APPEND, O_RDONLY, O_RDWR, O_WRONLY } from './uapi.ts';
import type { Vm } from './vm.ts';

/**
 * struct vm_area_desc (6.18's f_op->mmap_prepare()): a mapping of a device file before its VMA
 * exists. The driver sets the flags it wants (VM_IO | VM_PFNMAP | …) and may hand the mapping a
 * struct file of its own (vma_set_file()): the VMA holds `file`'s reference.
 */
export interface VmAreaDesc {
  readonly start: number;
  readonly end: number;
  readonly pgoff: number;
  vm_flags: number;
  file: OpenFile;
}

/**
 * struct file_operations (with the vm_operations_struct of the mappings it makes) of a character
 * device or a pseudo file (dma-buf). Drivers are class instances (src/contig/): no closures in
 * machine state; a driver keeps its Vm. Each method returns 0 (or a value) or -errno, as the
 * kernel's do.
 */
export interface FileOperations {
  /** The driver's name, for error messages. */
  readonly name: string;
  /** f_op->open: a new struct file of the device node; may give it a per-open f_op. */
  open?(file: OpenFile, task: FileTask): number;
  /** f_op->mmap, the checks and allocation before the VMA exists (EINVAL, ENOMEM, …). */
  mmap_prepare?(task: FileTask, desc: VmAreaDesc): number;
  /** Why the last mmap_prepare() or ioctl() failed, for the error message. */
  readonly refusal?: string;
  /** f_op->mmap, once the VMA is linked: its PTEs (remap_pfn_range()); -errno unmaps it. */
  mmap?(mm: MmStruct, vma: number): number;
  /** vm_ops->fault for a PTE the driver did not install at mmap (VM_FAULT_*). */
  fault?(mm: MmStruct, vma: number, addr: number, write: boolean): number;
  /** f_op->unlocked_ioctl: `arg` is the user's struct (an object), filled in on return. */
  ioctl?(task: FileTask, file: OpenFile, request: number, arg: unknown): number;
  /** f_op->llseek: the new position or -errno; without it the file is not seekable (ESPIPE). */
  llseek?(file: OpenFile, offset: number, whence: number): number;
  /** f_op->release: the struct file's last reference (descriptor or VMA) went. */
  release?(file: OpenFile, cpu: number): void;
}

/** A file system mounted at `path`: tmpfs (sbinfo), the disk (bdi) or hugetlbfs (hstate). */
export class Mount {
  constructor(
    readonly path: string,
    readonly fstype: 'tmpfs' | 'ext4' | 'hugetlbfs' | 'devtmpfs' | 'dmabuf',
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
  /** A hugetlbfs inode's hugetlb object (vm/hugetlbfs.ts), 0 until it has one. */
  hugetlb_object = 0;
  /**
   * A character device node's (or a pseudo file's) file operations: its driver (i_fop of a
   * S_IFCHR inode, init_special_inode()); null for a regular file.
   */
  i_fop: FileOperations | null = null;
  /** A pseudo file named by its driver (d_dname, e.g. "/dmabuf:"): never shown "(deleted)". */
  pseudo = false;

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
  /** f_op with private_data: the driver object behind a device or dma-buf file, else null. */
  f_op: FileOperations | null = null;

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

/**
 * What Files asks of the vm layer (Vm implements it; an object with methods, not callbacks, so
 * a cloned machine's files call into the clone).
 */
export interface FilesOwner extends ShmemAcct {
  /** Whether any VMA still maps `as` (i_mmap), for an inode that lost its last name and file. */
  i_mmap_mapped(as: AddressSpace): boolean;
  /** super_operations->evict_inode beyond the page cache (hugetlbfs_evict_inode()). */
  evict_inode(inode: Inode, cpu: number): void;
}

/** The machine's files: mounts, names, inodes and open files. */
export class Files {
  readonly mounts: Mount[] = [];
  private readonly names = new Map<string, Inode>();
  /** Device nodes by path (kept apart from the regular files list() shows). */
  private readonly devices = new Map<string, Inode>();
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
  /**
   * devtmpfs, where device nodes live (kept out of `mounts`: other files under /dev stay where
   * they were, and the numbering of the other mounts does not move).
   */
  private dev_mount: Mount | null = null;
  /** dma_buf_mnt: the pseudo file system of dma-buf files. */
  private dmabuf_mount: Mount | null = null;

  constructor(
    readonly mm: MM,
    /** The vm layer (Vm): i_mmap, the commit charge and eviction (FilesOwner). */
    private readonly owner: FilesOwner,
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

  /**
   * kernel: drivers/base/devtmpfs.c devtmpfs_create_node() + fs/inode.c init_special_inode()
   * A character device node at `path` with its owner, group and mode, whose opens get `fops`.
   * Device nodes exist from boot with the rest of /dev, whose dentry and inode objects the model
   * does not count; they cannot be unlinked. EEXIST if the name is taken.
   */
  mknod(path: string, mode: number, uid: number, gid: number, fops: FileOperations): Inode {
    const name = normalize(path);
    if (this.names.has(name) || this.devices.has(name)) fail('EEXIST', `${name} exists`);
    this.dev_mount ??= new Mount('/dev', 'devtmpfs', '00:05', null, null, this.shmem_sb());
    // A device inode's i_data never caches pages: an address_space of its own (a negative id,
    // outside the page cache) only keys the i_mmap of its mappings.
    const as = new AddressSpace(-1 - this.devices.size, null, null);
    const inode = new Inode(this.nextIno++, as, this.dev_mount, name, mode & 0o7777, uid, gid, 0, 0);
    inode.i_fop = fops;
    this.devices.set(name, inode);
    return inode;
  }

  /**
   * kernel: fs/libfs.c alloc_anon_inode() + alloc_file_pseudo() (dma_buf_getfile())
   * An unnamed pseudo file of `size` bytes (maps shows `label`), owned by the caller (mode 0600),
   * with its inode and dentry objects, opened with `flags`; its driver is `fops`.
   */
  alloc_file_pseudo(
    label: string,
    size: number,
    flags: number,
    cred: FileCred,
    cpu: number,
    fops: FileOperations,
  ): OpenFile {
    this.dmabuf_mount ??= new Mount('', 'dmabuf', '00:0c', null, null, this.shmem_sb());
    const inode = this.create(null, this.dmabuf_mount, 0o600, cred, cpu, label);
    inode.mapping.i_size = size;
    inode.pseudo = true;
    inode.i_fop = fops;
    return this.open_file(inode, flags);
  }

  /**
   * kernel: fs/file_table.c alloc_file_clone()
   * Another struct file of `file`'s inode with the same flags and `fops` (a driver gives each
   * mapping its own file this way, then vma_set_file()).
   */
  alloc_file_clone(file: OpenFile, fops: FileOperations): OpenFile {
    const clone = this.open_file(file.inode, file.flags);
    clone.f_op = fops;
    return clone;
  }

  /** The inode named `path`, or undefined. */
  lookup(path: string): Inode | undefined {
    return this.names.get(path) ?? this.devices.get(path);
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
    if (mount.sbinfo) as.acct_blocks = this.owner;
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
    if (this.devices.has(path)) fail('EPERM', `${path} is a device node (not removable in the model)`);
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

  /** Open `inode` with `flags`; returns the new struct file (with the device's f_op, if any). */
  open_file(inode: Inode, flags: number): OpenFile {
    const id = this.freeIds.pop() ?? this.open.length;
    const file = new OpenFile(id, inode, flags);
    file.f_op = inode.i_fop;
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
    // __fput(): the driver's release first (a dma-buf frees its buffer), then the inode.
    file.f_op?.release?.(file, cpu);
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
    if (inode.nlink || inode.nr_files || this.owner.i_mmap_mapped(inode.mapping)) return;
    const as = inode.mapping;
    this.owner.evict_inode(inode, cpu);
    truncate_inode_pages(this.mm, as, 0, cpu);
    if (inode.acct_size) this.owner.shmem_acct(-inode.acct_size); // shmem_unacct_size()
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
