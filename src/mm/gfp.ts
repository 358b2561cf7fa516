/**
 * GFP flags (include/linux/gfp_types.h, bit numbers as in 6.x) and the helpers that turn a GFP
 * mask into a zone and a migratetype (include/linux/gfp.h).
 */
import { ZONE_DMA, ZONE_DMA32, ZONE_MOVABLE, ZONE_NORMAL } from './mmzone.ts';

export const __GFP_DMA = 1 << 0;
export const __GFP_HIGHMEM = 1 << 1;
export const __GFP_DMA32 = 1 << 2;
export const __GFP_MOVABLE = 1 << 3;
export const __GFP_RECLAIMABLE = 1 << 4;
export const __GFP_HIGH = 1 << 5;
export const __GFP_IO = 1 << 6;
export const __GFP_FS = 1 << 7;
export const __GFP_ZERO = 1 << 8;
export const __GFP_DIRECT_RECLAIM = 1 << 10;
export const __GFP_KSWAPD_RECLAIM = 1 << 11;
export const __GFP_WRITE = 1 << 12;
export const __GFP_NOWARN = 1 << 13;
export const __GFP_RETRY_MAYFAIL = 1 << 14;
export const __GFP_NOFAIL = 1 << 15;
export const __GFP_NORETRY = 1 << 16;
export const __GFP_MEMALLOC = 1 << 17;
export const __GFP_COMP = 1 << 18;
export const __GFP_NOMEMALLOC = 1 << 19;
export const __GFP_HARDWALL = 1 << 20;
export const __GFP_THISNODE = 1 << 21;
export const __GFP_ACCOUNT = 1 << 22;

export const __GFP_RECLAIM = __GFP_DIRECT_RECLAIM | __GFP_KSWAPD_RECLAIM;
export const GFP_ZONEMASK = __GFP_DMA | __GFP_HIGHMEM | __GFP_DMA32 | __GFP_MOVABLE;
export const GFP_MOVABLE_MASK = __GFP_RECLAIMABLE | __GFP_MOVABLE;
export const GFP_MOVABLE_SHIFT = 3;

export const GFP_ATOMIC = __GFP_HIGH | __GFP_KSWAPD_RECLAIM;
export const GFP_KERNEL = __GFP_RECLAIM | __GFP_IO | __GFP_FS;
export const GFP_KERNEL_ACCOUNT = GFP_KERNEL | __GFP_ACCOUNT;
export const GFP_NOWAIT = __GFP_KSWAPD_RECLAIM | __GFP_NOWARN;
export const GFP_NOIO = __GFP_RECLAIM;
export const GFP_NOFS = __GFP_RECLAIM | __GFP_IO;
export const GFP_USER = __GFP_RECLAIM | __GFP_IO | __GFP_FS | __GFP_HARDWALL;
export const GFP_DMA = __GFP_DMA;
export const GFP_DMA32 = __GFP_DMA32;
export const GFP_HIGHUSER = GFP_USER | __GFP_HIGHMEM;
export const GFP_HIGHUSER_MOVABLE = GFP_HIGHUSER | __GFP_MOVABLE;
export const GFP_TRANSHUGE_LIGHT =
  (GFP_HIGHUSER_MOVABLE | __GFP_COMP | __GFP_NOMEMALLOC | __GFP_NOWARN) & ~__GFP_RECLAIM;
export const GFP_TRANSHUGE = GFP_TRANSHUGE_LIGHT | __GFP_DIRECT_RECLAIM;

/** Every flag above by name, for parsing `GFP_KERNEL|__GFP_ZERO` strings and printing masks. */
export const GFP_FLAG_NAMES: ReadonlyArray<readonly [string, number]> = [
  ['__GFP_DMA', __GFP_DMA],
  ['__GFP_HIGHMEM', __GFP_HIGHMEM],
  ['__GFP_DMA32', __GFP_DMA32],
  ['__GFP_MOVABLE', __GFP_MOVABLE],
  ['__GFP_RECLAIMABLE', __GFP_RECLAIMABLE],
  ['__GFP_HIGH', __GFP_HIGH],
  ['__GFP_IO', __GFP_IO],
  ['__GFP_FS', __GFP_FS],
  ['__GFP_ZERO', __GFP_ZERO],
  ['__GFP_DIRECT_RECLAIM', __GFP_DIRECT_RECLAIM],
  ['__GFP_KSWAPD_RECLAIM', __GFP_KSWAPD_RECLAIM],
  ['__GFP_WRITE', __GFP_WRITE],
  ['__GFP_NOWARN', __GFP_NOWARN],
  ['__GFP_RETRY_MAYFAIL', __GFP_RETRY_MAYFAIL],
  ['__GFP_NOFAIL', __GFP_NOFAIL],
  ['__GFP_NORETRY', __GFP_NORETRY],
  ['__GFP_MEMALLOC', __GFP_MEMALLOC],
  ['__GFP_COMP', __GFP_COMP],
  ['__GFP_NOMEMALLOC', __GFP_NOMEMALLOC],
  ['__GFP_HARDWALL', __GFP_HARDWALL],
  ['__GFP_THISNODE', __GFP_THISNODE],
  ['__GFP_ACCOUNT', __GFP_ACCOUNT],
];

/**
 * gfp_zone(): the highest zone an allocation may use (the GFP_ZONE_TABLE on 64-bit, where
 * __GFP_HIGHMEM means Normal). Returns -1 for the combinations the kernel calls GFP_ZONE_BAD.
 */
export function gfp_zone(gfp: number): number {
  const bits = gfp & GFP_ZONEMASK;
  switch (bits) {
    case 0:
    case __GFP_HIGHMEM:
    case __GFP_MOVABLE:
      return ZONE_NORMAL;
    case __GFP_DMA:
    case __GFP_MOVABLE | __GFP_DMA:
      return ZONE_DMA;
    case __GFP_DMA32:
    case __GFP_MOVABLE | __GFP_DMA32:
      return ZONE_DMA32;
    case __GFP_MOVABLE | __GFP_HIGHMEM:
      return ZONE_MOVABLE;
    default:
      return -1;
  }
}

/** gfp_migratetype(): __GFP_MOVABLE gives MOVABLE, __GFP_RECLAIMABLE gives RECLAIMABLE. */
export function gfp_migratetype(gfp: number): number {
  return (gfp & GFP_MOVABLE_MASK) >>> GFP_MOVABLE_SHIFT;
}

export function gfpflags_allow_blocking(gfp: number): boolean {
  return (gfp & __GFP_DIRECT_RECLAIM) !== 0;
}

/** Parses `GFP_KERNEL|__GFP_ZERO`, a number, or a list of names. Throws on an unknown name. */
export function parse_gfp(text: string): number {
  let mask = 0;
  for (const raw of text.split('|')) {
    const name = raw.trim();
    if (/^(0x[0-9a-f]+|\d+)$/i.test(name)) {
      mask |= Number(name);
      continue;
    }
    const value = GFP_BY_NAME.get(name);
    if (value === undefined) throw new Error(`unknown GFP flag '${name}'`);
    mask |= value;
  }
  return mask;
}

const GFP_BY_NAME = new Map<string, number>([
  ...GFP_FLAG_NAMES,
  ['GFP_ATOMIC', GFP_ATOMIC],
  ['GFP_KERNEL', GFP_KERNEL],
  ['GFP_KERNEL_ACCOUNT', GFP_KERNEL_ACCOUNT],
  ['GFP_NOWAIT', GFP_NOWAIT],
  ['GFP_NOIO', GFP_NOIO],
  ['GFP_NOFS', GFP_NOFS],
  ['GFP_USER', GFP_USER],
  ['GFP_DMA', GFP_DMA],
  ['GFP_DMA32', GFP_DMA32],
  ['GFP_HIGHUSER', GFP_HIGHUSER],
  ['GFP_HIGHUSER_MOVABLE', GFP_HIGHUSER_MOVABLE],
  ['GFP_TRANSHUGE_LIGHT', GFP_TRANSHUGE_LIGHT],
  ['GFP_TRANSHUGE', GFP_TRANSHUGE],
]);

/** Composite masks first, as the kernel's %pGg prints them (include/trace/events/mmflags.h). */
const GFP_PRINT_ORDER: ReadonlyArray<readonly [string, number]> = [
  ['GFP_TRANSHUGE', GFP_TRANSHUGE],
  ['GFP_TRANSHUGE_LIGHT', GFP_TRANSHUGE_LIGHT],
  ['GFP_HIGHUSER_MOVABLE', GFP_HIGHUSER_MOVABLE],
  ['GFP_HIGHUSER', GFP_HIGHUSER],
  ['GFP_USER', GFP_USER],
  ['GFP_KERNEL_ACCOUNT', GFP_KERNEL_ACCOUNT],
  ['GFP_KERNEL', GFP_KERNEL],
  ['GFP_NOFS', GFP_NOFS],
  ['GFP_ATOMIC', GFP_ATOMIC],
  ['GFP_NOIO', GFP_NOIO],
  ['GFP_NOWAIT', GFP_NOWAIT],
  ['GFP_DMA', GFP_DMA],
  ['GFP_DMA32', GFP_DMA32],
  ...GFP_FLAG_NAMES,
];

/** A GFP mask as the kernel prints it with %pGg, e.g. `GFP_KERNEL|__GFP_ZERO`. */
export function gfp_flags_string(gfp: number): string {
  const parts: string[] = [];
  let rest = gfp;
  for (const [name, mask] of GFP_PRINT_ORDER) {
    if (mask !== 0 && (rest & mask) === mask) {
      parts.push(name);
      rest &= ~mask;
    }
  }
  if (rest) parts.push(`0x${rest.toString(16)}`);
  return parts.length ? parts.join('|') : '0';
}
