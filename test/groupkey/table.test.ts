/** §5.6 Tables 1 and 2 recounted by running the code, beside the paper's figures. */
import { describe, expect, it } from 'vitest';
import { formatPaperTables, measurePhase, paperStyle, paperTables, PAPER_FIGURES, TABLE_COLUMNS } from '../../src/groupkey/paper/table.js';
import type { TableColumn, TableRow } from '../../src/groupkey/paper/table.js';

const rows = paperTables();
const cell = (table: 1 | 2, n: number, col: TableColumn): TableRow['cells'][TableColumn] => {
  const r = rows.find((x) => x.table === table && x.groupSize === n);
  if (r === undefined) throw new Error(`no row ${table}/${n}`);
  return r.cells[col];
};

describe('the op-count tables', () => {
  it('has both tables for group sizes 1, 30, 100, with the paper figures as published', () => {
    expect(rows.map((r) => `${r.table}/${r.groupSize}`)).toEqual(['1/1', '1/30', '1/100', '2/1', '2/30', '2/100']);
    expect(cell(1, 100, 'allCameras').paper).toBe('100E+300H');
    expect(cell(2, 30, 'kms').paper).toBe('32E+2H');
    for (const r of rows) for (const c of TABLE_COLUMNS) expect(r.cells[c].paper).toBe(PAPER_FIGURES[r.table][r.groupSize]?.[c]);
  });

  it('counts, per join into a group of n cameras besides the leader, exactly the formulas run', () => {
    for (const n of [1, 30, 100]) {
      // Scheme 1: the KMS rekeys all n + 2 cameras (members, leader, new camera) and checks n + 2 ACKs
      expect(cell(1, n, 'newCamera').counts).toEqual({ E: 0, D: 1, H: 2, X: 0 });
      expect(cell(1, n, 'allCameras').counts).toEqual({ E: 0, D: n, H: n, X: 0 });
      expect(cell(1, n, 'leader').counts).toEqual({ E: 1, D: 1, H: 2, X: 1 + n + 2 });
      expect(cell(1, n, 'kms').counts).toEqual({ E: n + 2, D: 1, H: 3 + n + 2, X: 1 + n + 2 });
      // Scheme 2: the leader hashes forward, members open Engk and check Hngk, the KMS encrypts for the new camera only
      expect(cell(2, n, 'newCamera').counts).toEqual({ E: 0, D: 1, H: 2, X: 0 });
      expect(cell(2, n, 'allCameras').counts).toEqual({ E: 0, D: n, H: 3 * n, X: 0 });
      expect(cell(2, n, 'leader').counts).toEqual({ E: 2, D: 0, H: 4, X: 1 + n + 2 });
      expect(cell(2, n, 'kms').counts).toEqual({ E: 1, D: 1, H: 3 + n + 2, X: 1 + n + 2 });
    }
    expect(cell(1, 100, 'kms').breakdown).toBe('1 D(Er_G1) + 1 H(MAC_IC) + 1 H(GSK_G1) + 102 E(EGSK_IC) + 1 H(MAC_ICM) + 102 H(ACK_IC)');
    expect(cell(2, 30, 'allCameras').breakdown).toBe('30 D(Engk_GSK) + 30 H(GSK_new) + 30 H(Hngk_GSK) + 30 H(ACK_IC)');
  });

  it('agrees with the paper on the new camera, and explains every other cell', () => {
    for (const r of rows) {
      expect(r.cells.newCamera.matches).toBe(true);
      expect(r.cells.newCamera.ours).toBe('1E+2H');
      for (const c of TABLE_COLUMNS) {
        const x = r.cells[c];
        expect(x.matches).toBe(x.ours === x.paper);
        if (x.matches) expect(x.note).toBeNull();
        else expect(x.note?.length ?? 0).toBeGreaterThan(50);
      }
    }
    expect(rows.flatMap((r) => TABLE_COLUMNS.filter((c) => !r.cells[c].matches))).toHaveLength(18);
  });

  it("shows the captions swapped: each table's 'all cameras' column is exactly our count of the other scheme", () => {
    for (const n of [1, 30, 100]) {
      expect(cell(1, n, 'allCameras').otherScheme).toBe(cell(1, n, 'allCameras').paper);
      expect(cell(2, n, 'allCameras').otherScheme).toBe(cell(2, n, 'allCameras').paper);
      expect(cell(1, n, 'allCameras').note).toMatch(/= our Scheme 2 count/);
    }
  });

  it('renders both tables with the differing cells marked', () => {
    const text = formatPaperTables(rows);
    expect(text).toContain('Table 1: Scheme 1');
    expect(text).toContain('Table 2: Scheme 2');
    expect(text).toMatch(/^100\s+1E\+2H \/ 1E\+2H\s+100E\+100H \/ 100E\+300H ≠/m);
    expect(text).toContain('ours at n = 100: 1 D(Er_G1)');
  });

  it('is deterministic, and measures distribution and leave too', () => {
    expect(paperTables([1])).toEqual(rows.filter((r) => r.groupSize === 1));
    const leave1 = measurePhase(1, 'leave', 30);
    expect(leave1.cameras).toBe(29);
    expect(paperStyle(leave1.columns.kms.counts)).toBe('31E+33H');
    expect(paperStyle(leave1.columns.subject.counts)).toBe('1H');
    const leave2 = measurePhase(2, 'leave', 30);
    expect(paperStyle(leave2.columns.kms.counts)).toBe('1E+33H');
    expect(paperStyle(leave2.columns.allCameras.counts)).toBe('29E+87H');
    const dist = measurePhase(2, 'distribution', 30);
    expect(paperStyle(dist.columns.leader.counts)).toBe('2E+3H');
    expect(paperStyle(dist.columns.subject.counts)).toBe('0');
  });
});
