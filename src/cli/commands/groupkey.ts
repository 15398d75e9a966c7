/**
 * `keyframe groupkey …`: group keys. `table` recounts the NVR paper's §5.6 Tables 1 and 2 by running its
 * protocol (src/groupkey/paper, faithful and insecure) and prints them beside the published figures, with a note
 * on every cell that differs (docs/group-keys-paper.md §5).
 */
import type { Command } from 'commander';
import { formatPaperTables, paperTables } from '../../groupkey/paper/table.js';
import { println } from '../context.js';
import type { CliContext } from '../context.js';

export function registerGroupKeyCommands(program: Command, ctx: CliContext): void {
  const gk = program.command('groupkey').description('group keys: the NVR paper scheme (faithful, insecure baseline)');

  gk.command('table')
    .description("the paper's Tables 1 and 2 (one join, group sizes 1, 30, 100): E/D and hash counts per role, counted by running the code, beside the paper's figures")
    .option('--json', 'the rows as JSON, with the raw E, D, H and XOR counts and the formulas behind each cell')
    .action((o: { json?: boolean }) => {
      const rows = paperTables();
      if (o.json === true) println(ctx.stdout, JSON.stringify(rows, null, 2));
      else ctx.stdout.write(formatPaperTables(rows));
    });
}
