/**
 * Compare the format of two /proc texts while ignoring the values: the line sequence, the labels
 * and the spacing must agree, the numbers need not.
 *
 * Each line is split into literal text and numeric runs, a run being a number together with the
 * spaces before it (`\s*\d+`, digits glued to a letter or `_` as in `DMA32` or `level2` stay
 * literal). The literal text with every run replaced by `#` must be equal. Each pair of runs must
 * then agree in one of two ways, which between them cover every printf field the files use:
 * - the same number of spaces: an unpadded `%lu` after literal spaces (`nr_mlock     %lu` after
 *   `%-12s `, `count:    %i`), whose spaces never depend on the value;
 * - the same total width: a right-aligned `%6lu`, `%8lu`, `%12lu`, whose spaces shrink as the
 *   number grows.
 * A wrong label padding or field width fails both (5 spaces + 1 digit against 4 + 1 in a `%6lu`
 * column). A value too wide for its field (e.g. 7 digits in `%6lu`) would legitimately fail; no
 * field overflows in the fixtures or in our output for the machines compared.
 */

interface Run {
  spaces: number;
  digits: string;
}

/** Spaces then digits, or digits not glued to a word. */
const RUN = / +\d+|(?<![A-Za-z0-9_])\d+/g;

function split(line: string): { shape: string; runs: Run[] } {
  const runs: Run[] = [];
  const shape = line.replace(RUN, (m) => {
    const digits = m.trimStart();
    runs.push({ spaces: m.length - digits.length, digits });
    return '#';
  });
  return { shape, runs };
}

/** Every format difference between `real` and `ours`, one message each; empty when they agree. */
export function formatDiff(real: string, ours: string, max = 20): string[] {
  const a = real.split('\n');
  const b = ours.split('\n');
  const diffs: string[] = [];
  if (a.length !== b.length) diffs.push(`line count: real ${a.length}, ours ${b.length}`);
  for (let i = 0; i < Math.min(a.length, b.length) && diffs.length < max; i++) {
    const x = split(a[i]);
    const y = split(b[i]);
    if (x.shape !== y.shape) {
      diffs.push(`line ${i + 1}: real ${JSON.stringify(a[i])}, ours ${JSON.stringify(b[i])}`);
      continue;
    }
    for (let k = 0; k < x.runs.length; k++) {
      const p = x.runs[k];
      const q = y.runs[k];
      if (p.spaces !== q.spaces && p.spaces + p.digits.length !== q.spaces + q.digits.length) {
        diffs.push(
          `line ${i + 1} field ${k + 1}: real ${JSON.stringify(a[i])}, ours ${JSON.stringify(b[i])}`,
        );
        break;
      }
    }
  }
  return diffs;
}

/** A line's label shape: the line with every numeric run replaced by `#`. */
export function shapeOf(line: string): string {
  return split(line).shape;
}

/** The page allocator's sysctls under /proc/sys/vm, in page_alloc_sysctl_table order. */
export const VM_SYSCTLS = [
  'min_free_kbytes',
  'watermark_scale_factor',
  'watermark_boost_factor',
  'lowmem_reserve_ratio',
  'defrag_mode',
  'percpu_pagelist_high_fraction',
] as const;
