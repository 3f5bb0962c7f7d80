import { describe, expect, it } from 'vitest';
import { dueAt, extend, pause, pendingMarks, resume, type RequestState } from '../../domain/request';
import { addMonths, requestClock, requestClockRule } from '../../domain/request-clocks';

const DAY = 86_400_000;
const at = (iso: string) => Date.parse(iso);

describe('request clocks', () => {
  it('picks the rule by jurisdiction and type, with its source', () => {
    expect(requestClockRule('DE', 'objection')).toMatchObject({ kind: 'gdpr-art12', source: 'GDPR Art. 12(3)' });
    expect(requestClockRule('CN', 'objection')).toMatchObject({ window: 20 * DAY, source: '征信业管理条例 Art. 25' });
    expect(requestClockRule('CN', 'complaint')).toMatchObject({ window: 30 * DAY, source: '征信业管理条例 Art. 26' });
    expect(requestClockRule('CN', 'access')).toMatchObject({ kind: 'cn-request', window: null, extendable: false });
  });

  it('counts a calendar month from receipt, clamped at month end, and allows two further months in the EU', () => {
    expect(new Date(addMonths(at('2026-01-31T10:00:00Z'), 1)).toISOString()).toBe('2026-02-28T10:00:00.000Z');
    expect(new Date(addMonths(at('2024-01-31T10:00:00Z'), 1)).toISOString()).toBe('2024-02-29T10:00:00.000Z');
    const eu = requestClock('EU', 'access', at('2026-03-15T00:00:00Z'), { cnDefaultMs: 30 * DAY });
    expect(eu.windowMs).toBe(31 * DAY);
    expect(eu.maxExtensionMs).toBe(61 * DAY);
    expect(eu.verifyWithinMs).toBe(15.5 * DAY);
    const cn = requestClock('CN', 'erasure', 0, { cnDefaultMs: 15 * DAY });
    expect(cn).toMatchObject({ windowMs: 15 * DAY, maxExtensionMs: 0, kind: 'cn-request' });
  });

  it('extends once, within the first period; a pause moves the due time and the reminders', () => {
    const clock = requestClock('EU', 'access', 0, { windowMs: 100_000, cnDefaultMs: 1 });
    const s: RequestState = {
      requestId: 'r',
      type: 'access',
      status: 'open',
      receivedAt: 0,
      windowMs: 100_000,
      extensionMs: 0,
      pausedMs: 0,
      fired: [],
      late: false,
      events: 0,
    };
    expect(() => extend(s, clock, 1_000, 100_001)).toThrow(/first period ended/);
    expect(() => extend(s, clock, 200_001, 10)).toThrow(/at most/);
    const extended = extend(s, clock, 50_000, 99_000);
    expect(dueAt(extended, 0)).toBe(150_000);
    expect(() => extend(extended, clock, 1_000, 99_500)).toThrow(/extended once already/);
    const paused = pause(s, 10_000);
    expect(pendingMarks(paused)).toEqual([]);
    expect(dueAt(paused, 30_000)).toBe(120_000);
    const resumed = resume(paused, 30_000);
    expect(dueAt(resumed, 30_000)).toBe(120_000);
    expect(pendingMarks(resumed).map((m) => [m.mark, m.at])).toEqual([
      ['reminder-50', 70_000],
      ['reminder-75', 95_000],
      ['reminder-90', 110_000],
      ['overdue', 120_000],
    ]);
  });
});
