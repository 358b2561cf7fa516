/**
 * CSV as RFC 4180 has it: CRLF line ends, a header line, and a field quoted (quotes doubled) only
 * when it holds a comma, a quote, CR or LF. Empty for null; numbers as JavaScript prints them,
 * which round-trips and never depends on the locale.
 */

export type CsvValue = string | number | boolean | null | undefined;

export function csvField(v: CsvValue): string {
  if (v === null || v === undefined) return '';
  const s = String(v);
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** A whole CSV file: the header, then one line per row; every row as long as the header. */
export function toCsv(header: readonly string[], rows: readonly (readonly CsvValue[])[]): string {
  const lines = [header.map(csvField).join(',')];
  for (const [i, row] of rows.entries()) {
    if (row.length !== header.length)
      throw new RangeError(`CSV row ${i} has ${row.length} fields for ${header.length} columns`);
    lines.push(row.map(csvField).join(','));
  }
  return `${lines.join('\r\n')}\r\n`;
}
