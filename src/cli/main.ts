#!/usr/bin/env node
/**
 * The `mapcontig` command line.
 */
import { Command, InvalidArgumentError } from 'commander';
import { runDemo } from './demo.ts';

function int(name: string, min: number) {
  return (v: string): number => {
    if (!/^\d+$/.test(v) || Number(v) < min)
      throw new InvalidArgumentError(`${name} must be a whole number >= ${min}`);
    return Number(v);
  };
}

export function main(argv: string[]): void {
  const program = new Command();
  program
    .name('mapcontig')
    .description(
      'Can a program get physically contiguous memory, what does it cost, and who pays? A model of Linux 6.18 memory management.',
    );
  program
    .command('demo')
    .description('the MAP_CONTIG story in under a minute: boot, fragment, and look for contiguous memory')
    .option('--memory <size>', 'RAM of the simulated machine', '8G')
    .option('--cpus <n>', 'CPUs', int('--cpus', 1), 4)
    .option('--seed <n>', 'PRNG seed', int('--seed', 0), 1)
    .option('-v, --verbose', 'also print /proc/pagetypeinfo', false)
    .action((o: { memory: string; cpus: number; seed: number; verbose: boolean }) => {
      runDemo({ ...o, out: (line) => process.stdout.write(`${line}\n`) });
    });
  program.parseAsync(argv).catch((e: unknown) => {
    process.stderr.write(`mapcontig: ${(e as Error).message}\n`);
    process.exitCode = 1;
  });
}

main(process.argv);
