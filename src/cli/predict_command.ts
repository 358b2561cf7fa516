/**
 * `mapcontig predict`: import a snapshot of a real machine and answer on it (docs/predict.md).
 */
import { type Command, InvalidArgumentError } from 'commander';
import { renderContig, renderHugepages, renderImport } from '../report/prediction.ts';
import { fromSnapshot } from '../snapshot/import.ts';
import { EXPECTED_ERROR, predictContig, predictHugepages } from '../snapshot/predict.ts';
import { policiesOption, seedOption, sizeOption } from './scenario_commands.ts';

interface PredictOptions {
  snapshot: string;
  size?: number;
  policies?: string[];
  hugepages?: number;
  hugepageSize: number;
  estimate: boolean;
  uid?: number;
  seed: number;
  json: boolean;
}

function countOption(v: string): number {
  if (!/^\d+$/.test(v) || Number(v) > 2 ** 31) throw new InvalidArgumentError('must be a page count');
  return Number(v);
}

function hugepageSizeOption(v: string): number {
  const kb = { '2M': 2048, '2048kB': 2048, '1G': 1048576, '1048576kB': 1048576 }[v];
  if (!kb) throw new InvalidArgumentError('must be 2M or 1G');
  return kb;
}

export function addPredictCommand(program: Command): void {
  program
    .command('predict')
    .description(
      'import a snapshot of a real machine: would a contiguous allocation succeed there now, and after compaction?',
    )
    .requiredOption(
      '--snapshot <dir>',
      "snapshot directory or tar (from `mapcontig snapshot`, or docs/snapshot.md's layout)",
    )
    .option('-s, --size <size>', 'a contiguous buffer to ask for, e.g. 700M', sizeOption)
    .option('-p, --policies <list>', 'contenders for --size, comma-separated (default: all)', policiesOption)
    .option('--hugepages <n>', 'how many hugetlb pages nr_hugepages=N yields', countOption)
    .option('--hugepage-size <size>', '2M or 1G', hugepageSizeOption, 2048)
    .option('--estimate', 'ignore kpageflags: place pages from the /proc counts alone', false)
    .option('--uid <n>', 'user that asks for --size (default 1000)', seedOption)
    .option('--seed <n>', "the model's PRNG seed", seedOption, 1)
    .option('--json', 'print the prediction as JSON', false)
    .addHelpText(
      'after',
      `
Examples:
  $ sudo mapcontig snapshot --out snap && mapcontig predict --snapshot snap --hugepages 512
  $ mapcontig predict --snapshot snap --size 700M --policies rfc,hugetlb,cma
  $ mapcontig predict --snapshot bundle.tar.gz --size 64M --hugepages 100 --json

Each answer runs on its own copy of the imported machine: "now" as the snapshot was, "after" once
compact_memory has run. Exit status 0 with an answer (a failed allocation is an answer), 1 when the
snapshot cannot be read or imported, 2 on bad usage.`,
    )
    .action(async (o: PredictOptions, cmd: Command) => {
      if (o.size === undefined && o.hugepages === undefined)
        cmd.error('error: give --size, --hugepages, or both', { exitCode: 2 });
      const imported = await fromSnapshot(o.snapshot, { seed: o.seed, estimate: o.estimate });
      const expected = EXPECTED_ERROR[imported.report.method];
      const hugepages =
        o.hugepages === undefined
          ? null
          : predictHugepages(imported, { count: o.hugepages, size_kb: o.hugepageSize });
      const contig =
        o.size === undefined
          ? null
          : predictContig(imported, { bytes: o.size, policies: o.policies, uid: o.uid });
      if (o.json) {
        const json = { import: imported.report, hugepages, contig, expected_error: expected };
        process.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
        return;
      }
      const out = [renderImport(imported.report)];
      if (hugepages) out.push(renderHugepages(hugepages, expected.hugepages));
      if (contig) out.push(renderContig(contig, expected.contig));
      process.stdout.write(`${out.join('\n\n')}\n`);
    });
}
