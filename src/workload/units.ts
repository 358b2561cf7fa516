/**
 * The leaf types of scenario files and workload parameters: sizes and durations written as
 * strings ('700M', '24h') and converted, with one message saying what was expected.
 */
import { z } from 'zod';
import { parseDuration } from '../lib/duration.ts';
import { parseSize } from '../lib/size.ts';

/** How a value looks in a message: strings quoted, containers by kind. */
export function shown(v: unknown): string {
  if (typeof v === 'string') return `'${v}'`;
  if (v === null || v === undefined) return 'nothing';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return String(v);
}

/** `parse(v)`, its error message as the zod issue. */
function converted<T>(v: T, parse: (v: T) => number, ctx: z.RefinementCtx): number {
  try {
    return parse(v);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: (e as Error).message });
    return z.NEVER;
  }
}

/** A size: '700M', '1G' or a whole number of bytes. */
export const size = z.unknown().transform((v, ctx) => {
  if (v === undefined) {
    ctx.addIssue({ code: 'custom', message: 'is required' });
    return z.NEVER;
  }
  if (typeof v !== 'string' && typeof v !== 'number') {
    ctx.addIssue({ code: 'custom', message: `expected a size such as 700M or 1G, got ${shown(v)}` });
    return z.NEVER;
  }
  return converted(v, (x) => parseSize(x), ctx);
});

/**
 * A duration: '500ms', '24h' (or 0). A bare number other than 0 is refused: `24` could mean
 * hours to a reader and nanoseconds to the parser.
 */
export const duration = z.unknown().transform((v, ctx) => {
  if (v === 0) return 0;
  if (v === undefined) {
    ctx.addIssue({ code: 'custom', message: 'is required' });
    return z.NEVER;
  }
  if (typeof v === 'number') {
    ctx.addIssue({ code: 'custom', message: `${v} has no unit (expected e.g. 500ms, 1.5s, 24h)` });
    return z.NEVER;
  }
  if (typeof v !== 'string') {
    ctx.addIssue({ code: 'custom', message: `expected a duration such as 500ms or 24h, got ${shown(v)}` });
    return z.NEVER;
  }
  return converted(v, parseDuration, ctx);
});
