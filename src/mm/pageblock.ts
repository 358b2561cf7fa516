/**
 * Pageblock flags (include/linux/pageblock-flags.h): one byte per pageblock holding the 3-bit
 * migratetype, the compaction skip hint and the isolate bit. Isolation keeps the underlying type:
 * get_pfnblock_migratetype() reports MIGRATE_ISOLATE while the bit is set, and clearing the bit
 * restores the old type.
 */
import type { MM } from './mm.ts';
import { MIGRATE_ISOLATE, pageblock_order } from './mmzone.ts';

export const PB_migratetype_mask = 0x07;
export const PB_compact_skip = 0x08;
export const PB_migrate_isolate = 0x10;

/** get_pfnblock_migratetype() */
export function get_pfnblock_migratetype(mm: MM, pfn: number): number {
  const f = mm.pb_flags[pfn >>> pageblock_order];
  return f & PB_migrate_isolate ? MIGRATE_ISOLATE : f & PB_migratetype_mask;
}

/** The stored type, ignoring the isolate bit (what undo_isolate_page_range restores). */
export function get_pageblock_migratetype_raw(mm: MM, pfn: number): number {
  return mm.pb_flags[pfn >>> pageblock_order] & PB_migratetype_mask;
}

/**
 * set_pageblock_migratetype(): writes the type and clears the isolate bit; with mobility
 * grouping disabled every pcp type is stored as UNMOVABLE. Setting MIGRATE_ISOLATE this way does
 * nothing (the kernel warns); isolation has its own bit.
 */
export function set_pageblock_migratetype(mm: MM, pfn: number, mt: number): void {
  if (mt === MIGRATE_ISOLATE) return;
  if (mm.page_group_by_mobility_disabled && mt < 3) mt = 0;
  const i = pfn >>> pageblock_order;
  mm.pb_flags[i] = (mm.pb_flags[i] & ~(PB_migratetype_mask | PB_migrate_isolate)) | mt;
}

export function get_pageblock_isolate(mm: MM, pfn: number): boolean {
  return (mm.pb_flags[pfn >>> pageblock_order] & PB_migrate_isolate) !== 0;
}
export function set_pageblock_isolate(mm: MM, pfn: number, on: boolean): void {
  const i = pfn >>> pageblock_order;
  mm.pb_flags[i] = on ? mm.pb_flags[i] | PB_migrate_isolate : mm.pb_flags[i] & ~PB_migrate_isolate;
}

export function get_pageblock_skip(mm: MM, pfn: number): boolean {
  return (mm.pb_flags[pfn >>> pageblock_order] & PB_compact_skip) !== 0;
}
export function set_pageblock_skip(mm: MM, pfn: number, on: boolean): void {
  const i = pfn >>> pageblock_order;
  mm.pb_flags[i] = on ? mm.pb_flags[i] | PB_compact_skip : mm.pb_flags[i] & ~PB_compact_skip;
}
