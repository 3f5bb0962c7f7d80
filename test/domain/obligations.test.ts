import { describe, expect, it } from 'vitest';
import {
  DEFAULT_OBLIGATIONS,
  ObligationCompletion,
  addMonths,
  obligationStatus,
  renderObligationMessage,
} from '../../domain/obligations';

const DAY = 86_400_000;

describe('obligations', () => {
  it('seed the calendar the issue names, each with a source', () => {
    expect(DEFAULT_OBLIGATIONS.map((o) => [o.key, o.recurrenceMonths])).toEqual([
      ['pi-compliance-audit', 24],
      ['credit-bureau-compliance-audit', 12],
      ['pia-records-retention', 12],
      ['staff-training', 12],
      ['policy-attestation', 12],
    ]);
    for (const o of DEFAULT_OBLIGATIONS) expect(o.source.length).toBeGreaterThan(10);
  });

  it('recur by calendar months, the day clamped to the month', () => {
    expect(addMonths(new Date('2026-01-31T09:00:00Z'), 1).toISOString()).toBe('2026-02-28T09:00:00.000Z');
    expect(addMonths(new Date('2027-11-30T00:00:00Z'), 24).toISOString()).toBe('2029-11-30T00:00:00.000Z');
    expect(addMonths(new Date('2024-02-29T00:00:00Z'), 12).toISOString()).toBe('2025-02-28T00:00:00.000Z');
  });

  it('are due soon within their reminder lead and overdue from the due date', () => {
    const nextDueAt = new Date('2026-12-31T00:00:00Z');
    const at = (iso: string) => obligationStatus({ nextDueAt, remindBeforeMs: 30 * DAY }, new Date(iso));
    expect(at('2026-11-30T00:00:00Z')).toBe('scheduled');
    expect(at('2026-12-01T00:00:00Z')).toBe('due-soon');
    expect(at('2026-12-31T00:00:00Z')).toBe('overdue');
  });

  it('need evidence to complete: a note, a SHA-256, or both', () => {
    expect(ObligationCompletion.safeParse({}).error?.issues[0]?.path).toEqual(['evidenceNote']);
    expect(ObligationCompletion.parse({ evidenceSha256: 'A'.repeat(64) })).toEqual({ evidenceSha256: 'a'.repeat(64) });
    expect(ObligationCompletion.safeParse({ evidenceNote: 'ok', extra: 1 }).success).toBe(false);
  });

  it('tell owners the title, key and due date', () => {
    const m = {
      obligationId: 'o-1',
      key: 'staff-training',
      title: 'Staff training',
      dueAt: '2027-01-01',
      overdue: true,
    };
    expect(renderObligationMessage('en', m).subject).toBe('Overdue: Staff training');
    expect(renderObligationMessage('zh-CN', { ...m, overdue: false }).subject).toBe('即将到期：Staff training');
  });
});
