import { describe, expect, it } from 'vitest';
import { RestoreTestDifferences, resultFacts } from '../../api/console/evidence';
import type { View } from '../../api/console/layout';
import { CONSOLE_TEXT } from '../../api/console/text';

/** Pure rendering of the evidence components for the reasons a real damaged file cannot easily produce. */
const view = (lang: 'en' | 'zh-CN'): View => ({ lang, t: CONSOLE_TEXT[lang], path: '/console/backups' });
const html = async (lang: 'en' | 'zh-CN', test: Parameters<typeof RestoreTestDifferences>[0]['test']) =>
  String(await RestoreTestDifferences({ v: view(lang), test }));

describe('what a restore test found different', () => {
  const table = (name: string, match: boolean) => ({
    table: name,
    expectedRows: 10,
    restoredRows: match ? 10 : 9,
    expectedSha256: 'a'.repeat(64),
    restoredSha256: match ? 'a'.repeat(64) : 'b'.repeat(64),
    match,
  });

  it('names the table, the stage and the rows or hashes expected and found; a mismatched table without a reason too', async () => {
    const out = await html('en', {
      status: 'fail',
      reasons: [
        { code: 'table-rows-mismatch', table: 'subjects', stage: 'restored', expected: 10, actual: 9 },
        {
          code: 'table-hash-mismatch',
          table: 'alerts',
          stage: 'file',
          expected: 'c'.repeat(64),
          actual: 'd'.repeat(64),
        },
      ],
      tables: [table('subjects', false), table('alerts', false), table('backups', true), table('users', false)],
    });
    expect(out).toContain('1 of 4 tables matched');
    expect(out).toContain('table-rows-mismatch · subjects after restoring · rows: expected 10, found 9');
    expect(out).toContain(
      `table-hash-mismatch · alerts in the backup file · SHA-256: expected ${'c'.repeat(12)}…, found ${'d'.repeat(12)}…`,
    );
    expect(out).toContain('users · rows: expected 10, found 9');
    expect(out).not.toContain('c'.repeat(13));
    expect(
      await html('zh-CN', {
        status: 'fail',
        reasons: [{ code: 'truncated', frame: 2, expectedBytes: 9, actualBytes: 5 }],
        tables: [],
      }),
    ).toContain('truncated · 第 2 帧 · 应为 9 B，实际 5 B');
  });

  it('a pass says nothing differed; a running test says so', async () => {
    expect(await html('en', { status: 'pass', reasons: [], tables: [table('subjects', true)] })).toContain(
      'nothing: every table matched the manifest',
    );
    expect(await html('en', { status: 'running', reasons: [], tables: [] })).toContain('still running');
  });
});

describe("a schedule run's result as facts", () => {
  it('flattens nested objects by dotted name and counts arrays', () => {
    expect(resultFacts({ checkId: 'x', counts: { sent: 2, failed: 0 }, ids: ['a', 'b'], none: null })).toEqual([
      ['checkId', 'x'],
      ['counts.sent', '2'],
      ['counts.failed', '0'],
      ['ids', '[2]'],
      ['none', 'null'],
    ]);
    expect(resultFacts(null)).toEqual([]);
  });
});
