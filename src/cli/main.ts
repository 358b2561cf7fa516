#!/usr/bin/env node
/**
 * The `mapcontig` command line. Exit codes: 0 done (a request that failed is an answer, not an
 * error), 1 bad input or a failure (one line on stderr: `mapcontig: <why>`), 2 bad usage (an
 * unknown command or option, a missing or bad argument: commander's message and a hint).
 */
import { Command, CommanderError, InvalidArgumentError } from 'commander';
import { runDemo } from './demo.ts';
import { addPredictCommand } from './predict_command.ts';
import { addScenarioCommands, seedOption } from './scenario_commands.ts';
import { addSnapshotCommand } from './snapshot_command.ts';
import { addSweepCommands } from './sweep_command.ts';

function int(name: string, min: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min)
      throw new InvalidArgumentError(`${name} must be a whole number >= ${min}`);
    return Number(v);
  };
}

export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;

export function main(argv: string[]): void {
  const program = new Command();
  program
    .name('mapcontig')
    .description(
      'Can a program get physically contiguous memory, what does it cost, and who pays? A model of Linux 6.18 memory management.',
    )
    .showHelpAfterError('(add --help for usage and examples)')
    .exitOverride();
  program
    .command('demo')
    .description('the MAP_CONTIG story in under a minute: boot, fragment, and look for contiguous memory')
    .option('--memory <size>', 'RAM of the simulated machine', '8G')
    .option('--cpus <n>', 'CPUs', int('--cpus', 1), 4)
    .option('--seed <n>', 'PRNG seed', seedOption, 1)
    .option('-v, --verbose', 'also print /proc/pagetypeinfo', false)
    .addHelpText(
      'after',
      '\nExamples:\n  $ mapcontig demo\n  $ mapcontig demo --memory 64G --cpus 8 --seed 7 -v',
    )
    .action((o: { memory: string; cpus: number; seed: number; verbose: boolean }) => {
      runDemo({ ...o, out: (line) => process.stdout.write(`${line}\n`) });
    });
  addScenarioCommands(program);
  addSweepCommands(program);
  addSnapshotCommand(program);
  addPredictCommand(program);
  for (const c of program.commands) c.exitOverride();
  program.parseAsync(argv).catch((e: unknown) => {
    if (e instanceof CommanderError) {
      // Help and version print and end well; everything else commander refuses is usage.
      process.exitCode = e.exitCode === 0 ? 0 : EXIT_USAGE;
      return;
    }
    process.stderr.write(`mapcontig: ${(e as Error).message}\n`);
    process.exitCode = EXIT_FAILURE;
  });
}

main(process.argv);
