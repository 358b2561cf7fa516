/**
 * Read values back out of /proc/zoneinfo text, for tests.
 */

/** The record of `zone` on `node` (from its `Node` line to the next). */
export function zoneRecord(text: string, zone: string, node = 0): string {
  const head = `Node ${node}, zone ${zone.padStart(8)}`;
  const start = text.indexOf(`${head}\n`);
  if (start < 0) throw new Error(`no ${head} in zoneinfo`);
  const next = text.indexOf('\nNode ', start + 1);
  return text.slice(start, next < 0 ? undefined : next + 1);
}

/** A `name value` field of the zone (`min`, `managed`, `nr_free_pages`, `high_min` of cpu 0, ...). */
export function zoneField(text: string, zone: string, field: string, node = 0): number {
  const m = new RegExp(`\\n +${field}:? +(\\d+)`).exec(zoneRecord(text, zone, node));
  if (!m) throw new Error(`no ${field} for zone ${zone}`);
  return Number(m[1]);
}

/** The zone's protection: (...) array. */
export function protection(text: string, zone: string, node = 0): number[] {
  const m = /protection: \(([^)]*)\)/.exec(zoneRecord(text, zone, node));
  if (!m) throw new Error(`no protection for zone ${zone}`);
  return m[1].split(', ').map(Number);
}
