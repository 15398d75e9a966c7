/** `keyframe groupkey table`: the paper's §5.6 tables recounted, as text and as JSON; usage errors exit 2. */
import { describe, expect, it } from 'vitest';
import { runCli } from '../helpers/cli.js';

describe('keyframe groupkey table', () => {
  it('prints both tables, ours beside the paper, differing cells marked and explained', async () => {
    const r = await runCli(['groupkey', 'table']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toContain('Table 1: Scheme 1');
    expect(r.stdout).toContain('Table 2: Scheme 2');
    expect(r.stdout).toMatch(/^30\s+1E\+2H \/ 1E\+2H\s+30E\+30H \/ 30E\+90H ≠\s+2E\+2H \/ 2E\+3H ≠\s+33E\+35H \/ 1E\+3H ≠$/m);
    expect(r.stdout).toMatch(/^100\s+1E\+2H \/ 1E\+2H\s+100E\+300H \/ 100E\+100H ≠\s+2E\+4H \/ 2E ≠\s+2E\+105H \/ 102E\+2H ≠$/m);
    expect(r.stdout).toContain('swapped captions');
  });

  it('--json gives the rows with raw counts and notes', async () => {
    const r = await runCli(['groupkey', 'table', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const rows = JSON.parse(r.stdout) as { table: number; groupSize: number; cells: Record<string, { ours: string; paper: string; counts: { E: number; D: number; H: number }; note: string | null }> }[];
    expect(rows).toHaveLength(6);
    const kms = rows.find((x) => x.table === 1 && x.groupSize === 100)?.cells['kms'];
    expect(kms?.counts).toMatchObject({ E: 102, D: 1, H: 105 });
    expect(kms?.paper).toBe('1E+3H');
    expect(kms?.note).toMatch(/swapped captions/);
  });

  it('an unknown option is a usage error on one line', async () => {
    const r = await runCli(['groupkey', 'table', '--nope']);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^keyframe: unknown option '--nope'/);
  });
});
