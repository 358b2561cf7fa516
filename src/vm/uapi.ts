/**
 * The user-space ABI of the memory syscalls (include/uapi/asm-generic/mman-common.h, mman.h and
 * the x86 values), exported by name.
 */
export const PROT_NONE = 0x0;
export const PROT_READ = 0x1;
export const PROT_WRITE = 0x2;
export const PROT_EXEC = 0x4;
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
