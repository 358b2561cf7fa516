/**
 * The user-space ABI of the memory syscalls (include/uapi/asm-generic/mman-common.h, mman.h and
 * the x86 values), exported by name.
 */
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
/** Accepted by mprotect() (arch_validate_prot) and ignored: no VMA flag corresponds to it. */
export const PROT_SEM = 0x8;
export const PROT_GROWSDOWN = 0x01000000;
export const PROT_GROWSUP = 0x02000000;

export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_SHARED_VALIDATE = 0x03;
export const MAP_TYPE = 0x0f;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_GROWSDOWN = 0x0100;
export const MAP_DENYWRITE = 0x0800;
export const MAP_EXECUTABLE = 0x1000;
export const MAP_LOCKED = 0x2000;
export const MAP_NORESERVE = 0x4000;
export const MAP_POPULATE = 0x8000;
export const MAP_NONBLOCK = 0x10000;
export const MAP_STACK = 0x20000;
export const MAP_HUGETLB = 0x40000;
export const MAP_SYNC = 0x80000;
/**
 * MAP_CONTIG (the 2017 RFC, never merged): physically contiguous backing. The RFC's 0x80000 has
 * been MAP_SYNC since v4.15; 0x200000 is unused in 6.18. What it does depends on the machine's
 * `map_contig` policy (src/contig/); plain 6.18 ignores it like any unknown flag.
 */
export const MAP_CONTIG = 0x200000;
/**
 * MAP_CONTIG_BEST_EFFORT (with MAP_CONTIG; mapcontig's, like Mellanox's PREFER_CONTIG): never
 * fail for fragmentation, take the fewest, largest contiguous runs to be had. 0x400000 is unused
 * in 6.18 too. Only the `rfc` and `bounded` policies know it.
 */
export const MAP_CONTIG_BEST_EFFORT = 0x400000;
export const MAP_FIXED_NOREPLACE = 0x100000;
export const MAP_UNINITIALIZED = 0x4000000;
/** MAP_HUGE_SHIFT: the log2 of the huge page size sits in bits 26..31 of the flags. */
export const MAP_HUGE_SHIFT = 26;
export const MAP_HUGE_MASK = 0x3f;
export const MAP_HUGE_2MB = 21 << MAP_HUGE_SHIFT;
export const MAP_HUGE_1GB = 30 << MAP_HUGE_SHIFT;

/** Every flag an mmap() caller may pass (LEGACY_MAP_MASK and the newer ones, mm/mmap.c). */
export const MAP_KNOWN_FLAGS =
  MAP_TYPE |
  MAP_FIXED |
  MAP_ANONYMOUS |
  MAP_GROWSDOWN |
  MAP_DENYWRITE |
  MAP_EXECUTABLE |
  MAP_LOCKED |
  MAP_NORESERVE |
  MAP_POPULATE |
  MAP_NONBLOCK |
  MAP_STACK |
  MAP_HUGETLB |
  MAP_SYNC |
  MAP_FIXED_NOREPLACE |
  MAP_UNINITIALIZED |
  (MAP_HUGE_MASK << MAP_HUGE_SHIFT);

// madvise() advice (include/uapi/asm-generic/mman-common.h)
export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;
export const MADV_FREE = 8;
export const MADV_REMOVE = 9;
export const MADV_DONTFORK = 10;
export const MADV_DOFORK = 11;
export const MADV_MERGEABLE = 12;
export const MADV_UNMERGEABLE = 13;
export const MADV_HUGEPAGE = 14;
export const MADV_NOHUGEPAGE = 15;
export const MADV_DONTDUMP = 16;
export const MADV_DODUMP = 17;
export const MADV_WIPEONFORK = 18;
export const MADV_KEEPONFORK = 19;
export const MADV_COLD = 20;
export const MADV_PAGEOUT = 21;
export const MADV_POPULATE_READ = 22;
export const MADV_POPULATE_WRITE = 23;
export const MADV_DONTNEED_LOCKED = 24;
export const MADV_COLLAPSE = 25;
export const MADV_HWPOISON = 100;
export const MADV_SOFT_OFFLINE = 101;
export const MADV_GUARD_INSTALL = 102;
export const MADV_GUARD_REMOVE = 103;

// mlock2() and mlockall() flags (include/uapi/asm-generic/mman-common.h, mman.h)
export const MLOCK_ONFAULT = 0x01;
export const MCL_CURRENT = 1;
export const MCL_FUTURE = 2;
export const MCL_ONFAULT = 4;

// mremap() flags (include/uapi/linux/mman.h)
export const MREMAP_MAYMOVE = 1;
export const MREMAP_FIXED = 2;
export const MREMAP_DONTUNMAP = 4;

// getrlimit()/setrlimit() resources (include/uapi/asm-generic/resource.h)
export const RLIMIT_CPU = 0;
export const RLIMIT_FSIZE = 1;
export const RLIMIT_DATA = 2;
export const RLIMIT_STACK = 3;
export const RLIMIT_CORE = 4;
export const RLIMIT_RSS = 5;
export const RLIMIT_NPROC = 6;
export const RLIMIT_NOFILE = 7;
export const RLIMIT_MEMLOCK = 8;
export const RLIMIT_AS = 9;
export const RLIMIT_LOCKS = 10;
export const RLIMIT_SIGPENDING = 11;
export const RLIMIT_MSGQUEUE = 12;
export const RLIMIT_NICE = 13;
export const RLIMIT_RTPRIO = 14;
export const RLIMIT_RTTIME = 15;
/** Resources are 0 .. RLIM_NLIMITS - 1; anything else is EINVAL. */
export const RLIM_NLIMITS = 16;

/** open(2) flags (include/uapi/asm-generic/fcntl.h). */
export const O_RDONLY = 0o0;
export const O_WRONLY = 0o1;
export const O_RDWR = 0o2;
export const O_ACCMODE = 0o3;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NOCTTY = 0o400;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_DSYNC = 0o10000;
export const O_DIRECT = 0o40000;
export const O_LARGEFILE = 0o100000;
export const O_DIRECTORY = 0o200000;
export const O_NOFOLLOW = 0o400000;
export const O_NOATIME = 0o1000000;
export const O_CLOEXEC = 0o2000000;
export const O_SYNC = 0o4010000;
export const O_PATH = 0o10000000;
export const O_TMPFILE = 0o20200000;

/** lseek(2) whence. */
export const SEEK_SET = 0;
export const SEEK_CUR = 1;
export const SEEK_END = 2;
export const SEEK_DATA = 3;
export const SEEK_HOLE = 4;

/** posix_fadvise(2) advice. */
export const POSIX_FADV_NORMAL = 0;
export const POSIX_FADV_RANDOM = 1;
export const POSIX_FADV_SEQUENTIAL = 2;
export const POSIX_FADV_WILLNEED = 3;
export const POSIX_FADV_DONTNEED = 4;
export const POSIX_FADV_NOREUSE = 5;

/** memfd_create(2) flags. */
export const MFD_CLOEXEC = 0x1;
export const MFD_ALLOW_SEALING = 0x2;
export const MFD_HUGETLB = 0x4;
export const MFD_NOEXEC_SEAL = 0x8;
export const MFD_EXEC = 0x10;
/** MFD_HUGE_SHIFT: with MFD_HUGETLB, log2 of the huge page size in bits 26..31 (as MAP_HUGE_*). */
export const MFD_HUGE_SHIFT = 26;
export const MFD_HUGE_MASK = 0x3f;
export const MFD_HUGE_2MB = 21 << MFD_HUGE_SHIFT;
export const MFD_HUGE_1GB = 30 << MFD_HUGE_SHIFT;

/** Capability numbers (include/uapi/linux/capability.h) the memory code consults. */
export const CAP_DAC_OVERRIDE = 1;
export const CAP_FOWNER = 3;
export const CAP_IPC_LOCK = 14;
export const CAP_SYS_RAWIO = 17;
export const CAP_SYS_PTRACE = 19;
export const CAP_SYS_ADMIN = 21;
export const CAP_SYS_RESOURCE = 24;

// ioctl request numbers (include/uapi/asm-generic/ioctl.h): dir << 30 | size << 16 | type << 8 | nr.
export const _IOC_NONE = 0;
export const _IOC_WRITE = 1;
export const _IOC_READ = 2;

/** _IOC(dir, type, nr, size), as an unsigned 32-bit number. */
export function _IOC(dir: number, type: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (type << 8) | nr) >>> 0;
}

/** _IOWR(type, nr, size): the caller passes a struct in and gets it back filled. */
export function _IOWR(type: string, nr: number, size: number): number {
  return _IOC(_IOC_READ | _IOC_WRITE, type.charCodeAt(0), nr, size);
}

/** _IOC_NR(): the request's number within its type. */
export function _IOC_NR(request: number): number {
  return request & 0xff;
}

/** _IOC_TYPE(): the request's type (the driver's magic character). */
export function _IOC_TYPE(request: number): number {
  return (request >>> 8) & 0xff;
}

/** sizeof(struct dma_heap_allocation_data): __u64 len, __u32 fd, __u32 fd_flags, __u64 heap_flags. */
export const DMA_HEAP_ALLOCATION_DATA_SIZE = 24;
/** include/uapi/linux/dma-heap.h DMA_HEAP_IOC_MAGIC */
export const DMA_HEAP_IOC_MAGIC = 'H';
/** DMA_HEAP_IOCTL_ALLOC = _IOWR('H', 0x0, struct dma_heap_allocation_data) = 0xc0184800. */
export const DMA_HEAP_IOCTL_ALLOC = _IOWR(DMA_HEAP_IOC_MAGIC, 0x0, DMA_HEAP_ALLOCATION_DATA_SIZE);
/** DMA_HEAP_VALID_FD_FLAGS: O_CLOEXEC | O_ACCMODE. */
export const DMA_HEAP_VALID_FD_FLAGS = O_CLOEXEC | O_ACCMODE;
/** DMA_HEAP_VALID_HEAP_FLAGS: no heap flags are defined. */
export const DMA_HEAP_VALID_HEAP_FLAGS = 0;

/** struct dma_heap_allocation_data: `fd` must be 0 on the way in and holds the dma-buf on return. */
export interface DmaHeapAllocationData {
  len: number;
  fd: number;
  fd_flags: number;
  heap_flags: number;
}

/**
 * include/uapi/linux/dma-buf.h struct dma_buf_sync and DMA_BUF_IOCTL_SYNC = _IOW('b', 0, __u64):
 * bracket CPU access to a buffer a device also uses (cache maintenance, a no-op in the model).
 */
export const DMA_BUF_SYNC_READ = 1;
export const DMA_BUF_SYNC_WRITE = 2;
export const DMA_BUF_SYNC_RW = 3;
export const DMA_BUF_SYNC_START = 0;
export const DMA_BUF_SYNC_END = 4;
export const DMA_BUF_SYNC_VALID_FLAGS_MASK = DMA_BUF_SYNC_RW | DMA_BUF_SYNC_END;
export const DMA_BUF_IOCTL_SYNC = _IOC(_IOC_WRITE, 'b'.charCodeAt(0), 0, 8);
