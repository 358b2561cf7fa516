/**
 * A program with only the snapshot command, for cli.test.ts (src/cli/main.ts wires the same
 * function into `mapcontig`).
 */
import { Command } from 'commander';
import { addSnapshotCommand } from '../../src/cli/snapshot_command.ts';

const program = new Command().name('mapcontig').exitOverride();
addSnapshotCommand(program);
program.parseAsync(process.argv).catch((e: { exitCode?: number; code?: string; message: string }) => {
  if (e.code === 'commander.helpDisplayed') return;
  process.stderr.write(`mapcontig: ${e.message}\n`);
  process.exitCode = e.exitCode ?? 1;
});
