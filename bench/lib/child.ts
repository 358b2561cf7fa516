/**
 * Child-process entry: `node --import tsx bench/lib/child.ts <file.bench.ts> [--quick]`. Imports
 * the benchmark, runs it, and sends its rows to the runner over the IPC channel (or prints them as
 * JSON when started by hand without one).
 */
import { pathToFileURL } from 'node:url';
import type { Benchmark, Row } from './harness.ts';

/** The message a child sends to the runner. */
export interface ChildMessage {
  title: string;
  rows: Row[];
  seconds: number;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: child.ts <file.bench.ts> [--quick]');
  const quick = process.argv.includes('--quick');
  const mod = (await import(pathToFileURL(file).href)) as { default: Benchmark };
  const t0 = performance.now();
  const rows = await mod.default.run({ quick });
  const msg: ChildMessage = { title: mod.default.title, rows, seconds: (performance.now() - t0) / 1000 };
  if (process.send) {
    // Exit only once the message is flushed, so the parent never sees a half-sent result.
    process.send(msg, () => process.exit(0));
  } else {
    process.stdout.write(`${JSON.stringify(msg, null, 2)}\n`);
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
