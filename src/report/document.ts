/**
 * A report as a list of blocks, written out as Markdown or as HTML from the same blocks, so the
 * two files say the same thing. Text is plain: each writer escapes what its format would read
 * as markup.
 */

export type Block =
  | { kind: 'heading'; level: 1 | 2 | 3; text: string }
  | { kind: 'paragraph'; text: string }
  | { kind: 'list'; items: string[] }
  | { kind: 'table'; head: string[]; rows: string[][]; numeric?: boolean[] }
  /** Preformatted text: the terminal tables, /proc files. */
  | { kind: 'pre'; text: string }
  | { kind: 'image'; src: string; alt: string };

/**
 * Backslash-escape what Markdown would read as markup. Underscores between letters stay as they
 * are (CommonMark does not read `map_contig` as emphasis), so the source stays readable.
 */
export function mdEscape(s: string): string {
  return s
    .replace(/[\\`*[\]<>|#]/g, '\\$&')
    .replace(/(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])/g, '\\_')
    .replace(/\n/g, ' ');
}

/** A fence longer than any backtick run in `text`. */
function fence(text: string): string {
  const longest = Math.max(2, ...(text.match(/`+/g) ?? []).map((r) => r.length));
  return '`'.repeat(longest + 1);
}

export function toMarkdown(blocks: readonly Block[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case 'heading':
        out.push(`${'#'.repeat(b.level)} ${mdEscape(b.text)}`);
        break;
      case 'paragraph':
        out.push(mdEscape(b.text));
        break;
      case 'list':
        out.push(b.items.map((i) => `- ${mdEscape(i)}`).join('\n'));
        break;
      case 'table': {
        const row = (cells: string[]): string => `| ${cells.map(mdEscape).join(' | ')} |`;
        const rule = b.head.map((_, i) => (b.numeric?.[i] ? '---:' : '---'));
        out.push([row(b.head), `| ${rule.join(' | ')} |`, ...b.rows.map(row)].join('\n'));
        break;
      }
      case 'pre': {
        const f = fence(b.text);
        out.push(`${f}text\n${b.text.replace(/\n$/, '')}\n${f}`);
        break;
      }
      case 'image':
        out.push(`![${mdEscape(b.alt)}](${encodeURI(b.src)})`);
        break;
    }
  }
  return `${out.join('\n\n')}\n`;
}

export function htmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const STYLE = `body { font-family: system-ui, sans-serif; max-width: 72rem; margin: 2rem auto; padding: 0 1rem; line-height: 1.45; color: #222; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.2rem 0.5rem; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
pre { background: #f6f6f6; padding: 0.6rem; overflow-x: auto; line-height: 1.2; }
img { max-width: 100%; height: auto; }`;

/**
 * A standalone HTML page (plots linked relative to the page, as in the Markdown), also
 * well-formed XML apart from its doctype, so it can be checked with an XML parser.
 */
export function toHtml(title: string, blocks: readonly Block[]): string {
  const out: string[] = [];
  for (const b of blocks) {
    switch (b.kind) {
      case 'heading':
        out.push(`<h${b.level}>${htmlEscape(b.text)}</h${b.level}>`);
        break;
      case 'paragraph':
        out.push(`<p>${htmlEscape(b.text)}</p>`);
        break;
      case 'list':
        out.push(`<ul>\n${b.items.map((i) => `<li>${htmlEscape(i)}</li>`).join('\n')}\n</ul>`);
        break;
      case 'table': {
        const head = b.head.map((h) => `<th>${htmlEscape(h)}</th>`).join('');
        const rows = b.rows.map(
          (r) =>
            `<tr>${r.map((c, i) => `<td${b.numeric?.[i] ? ' class="num"' : ''}>${htmlEscape(c)}</td>`).join('')}</tr>`,
        );
        out.push(`<table>\n<thead><tr>${head}</tr></thead>\n<tbody>\n${rows.join('\n')}\n</tbody>\n</table>`);
        break;
      }
      case 'pre':
        out.push(`<pre>${htmlEscape(b.text.replace(/\n$/, ''))}</pre>`);
        break;
      case 'image':
        out.push(`<p><img src="${htmlEscape(encodeURI(b.src))}" alt="${htmlEscape(b.alt)}" /></p>`);
        break;
    }
  }
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1" />
<title>${htmlEscape(title)}</title>
<style>
${STYLE}
</style>
</head>
<body>
${out.join('\n')}
</body>
</html>
`;
}
