import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  clockMarks,
  deadlinesFor,
  DEFAULT_GRADE_THRESHOLDS,
  isLate,
  suggestGrade,
  type ClockFacts,
} from '../../domain/regulatory-clocks';

const HOUR = 3_600_000;
const awareAt = Date.parse('2025-11-03T08:00:00Z');
const facts = (o: Partial<ClockFacts> = {}): ClockFacts => ({
  personalData: true,
  jurisdictions: ['EU', 'CN'],
  awareAt,
  grade: 'general',
  cnOperator: 'other',
  ...o,
});
const byKind = (f: ClockFacts) => Object.fromEntries(deadlinesFor(f).map((d) => [d.kind, d]));

describe('regulatory clocks', () => {
  it('GDPR: 72 h from awareness, reasons if later (Art. 33(1))', () => {
    const gdpr = byKind(facts({ jurisdictions: ['EU'] }))['gdpr-art33']!;
    expect(gdpr).toMatchObject({
      dueAt: awareAt + 72 * HOUR,
      lateNeedsReasons: true,
      source: 'GDPR Art. 33(1)',
      sourceStatus: 'checked',
    });
    expect(isLate(gdpr, awareAt + 72 * HOUR)).toBe(false);
    expect(isLate(gdpr, awareAt + 72 * HOUR + 1)).toBe(true);
  });

  it('PIPL Art. 57: "immediately", with no figure to be late against and no reminders', () => {
    const pipl = byKind(facts({ jurisdictions: ['CN'] }))['pipl-art57']!;
    expect(pipl).toMatchObject({ immediate: true, windowMs: null, dueAt: awareAt, sourceStatus: 'secondary' });
    expect(isLate(pipl, awareAt + 1000 * HOUR)).toBe(false);
    expect(clockMarks(pipl.startsAt, pipl.dueAt, pipl.immediate)).toEqual([]);
    // An operator's own figure turns it into a clock.
    const own = byKind(facts({ jurisdictions: ['CN'], windows: { 'pipl-art57': 24 * HOUR } }))['pipl-art57']!;
    expect(own).toMatchObject({ immediate: false, dueAt: awareAt + 24 * HOUR, overridden: true });
  });

  it('CN CAC: 1 h for CII, 4 h for other operators, only from 较大; the summary 30 days after resolution', () => {
    expect(byKind(facts({ grade: 'general' }))['cn-cac-report']).toBeUndefined();
    expect(byKind(facts({ grade: 'relatively-major', cnOperator: 'cii' }))['cn-cac-report']!.dueAt).toBe(
      awareAt + HOUR,
    );
    expect(byKind(facts({ grade: 'major', cnOperator: 'other' }))['cn-cac-report']!.dueAt).toBe(awareAt + 4 * HOUR);
    // Not only for personal data: the measures cover every network security incident.
    expect(byKind(facts({ grade: 'major', personalData: false }))['cn-cac-report']).toBeDefined();
    expect(byKind(facts({ grade: 'major' }))['cn-cac-summary']).toBeUndefined();
    const resolvedAt = awareAt + 10 * HOUR;
    expect(byKind(facts({ grade: 'major', resolvedAt }))['cn-cac-summary']!.dueAt).toBe(resolvedAt + 30 * 24 * HOUR);
  });

  it('no personal data: no GDPR or PIPL clock; a jurisdiction not listed has none', () => {
    expect(deadlinesFor(facts({ personalData: false }))).toEqual([]);
    expect(Object.keys(byKind(facts({ jurisdictions: ['EU'] })))).toEqual(['gdpr-art33']);
  });

  it('suggests the grade from the affected count at the configured thresholds', () => {
    expect(suggestGrade(999_999)).toBe('general');
    expect(suggestGrade(1_000_000)).toBe('relatively-major');
    expect(suggestGrade(10_000_000)).toBe('major');
    expect(suggestGrade(100_000_000)).toBe('especially-major');
    expect(suggestGrade(5, { 'relatively-major': 5, major: 10, 'especially-major': 20 })).toBe('relatively-major');
    fc.assert(
      fc.property(fc.nat(), fc.nat(), (a, b) => {
        const order = ['general', 'relatively-major', 'major', 'especially-major'];
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(order.indexOf(suggestGrade(lo, DEFAULT_GRADE_THRESHOLDS))).toBeLessThanOrEqual(
          order.indexOf(suggestGrade(hi)),
        );
      }),
    );
  });

  it('reminds at 50, 75 and 90 % of the window, in order, then is overdue at the deadline', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2e12 }), fc.integer({ min: 4, max: 1e10 }), (start, window) => {
        const marks = clockMarks(start, start + window);
        expect(marks.map((m) => m.mark)).toEqual(['reminder-50', 'reminder-75', 'reminder-90', 'overdue']);
        for (let i = 1; i < marks.length; i++) expect(marks[i]!.at).toBeGreaterThanOrEqual(marks[i - 1]!.at);
        expect(marks[0]!.at).toBe(start + Math.round(window / 2));
        expect(marks.at(-1)!.at).toBe(start + window);
      }),
    );
  });
});
