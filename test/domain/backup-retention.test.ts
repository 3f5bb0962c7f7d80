import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  isoWeekKey,
  selectRetention,
  type RetainedCandidate,
  type RetentionPolicy,
} from '../../domain/backup-retention';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const start = Date.UTC(2025, 11, 1);

/** Backups over about fourteen months, several a day at times, some verified, some failed, some untested. */
const backupsArb = fc
  .uniqueArray(
    fc.record({
      id: fc.uuid(),
      takenAt: fc.integer({ min: start, max: start + 430 * DAY }),
      restoreTest: fc.constantFrom<RetainedCandidate['restoreTest']>('pass', 'fail', null),
    }),
    { selector: (b) => b.id, maxLength: 120 },
  )
  // Several backups on the same days, so buckets hold more than one.
  .chain((backups) =>
    fc
      .array(fc.integer({ min: 0, max: 3 * HOUR }), { minLength: backups.length, maxLength: backups.length })
      .map((offsets) =>
        backups.map((b, i) => (i % 3 === 1 ? { ...b, takenAt: backups[i - 1]!.takenAt + offsets[i]! } : b)),
      ),
  );
const policyArb = fc.record({
  keepDaily: fc.integer({ min: 0, max: 10 }),
  keepWeekly: fc.integer({ min: 0, max: 6 }),
  keepMonthly: fc.integer({ min: 0, max: 14 }),
});

const byNewest = (a: RetainedCandidate, b: RetainedCandidate) =>
  b.takenAt - a.takenAt || (a.id < b.id ? 1 : a.id > b.id ? -1 : 0);
const dayOf = (t: number) => new Date(t).toISOString().slice(0, 10);
const monthOf = (t: number) => new Date(t).toISOString().slice(0, 7);

/** An independent statement of "the newest backup of each of the n most recent buckets". */
const newestPerBucket = (backups: RetainedCandidate[], bucket: (t: number) => string, n: number) => {
  const newest = new Map<string, RetainedCandidate>();
  for (const b of backups) {
    const key = bucket(b.takenAt);
    const seen = newest.get(key);
    if (!seen || byNewest(b, seen) < 0) newest.set(key, b);
  }
  return [...newest.values()]
    .sort(byNewest)
    .slice(0, n)
    .map((b) => b.id);
};

const property = (check: (backups: RetainedCandidate[], policy: RetentionPolicy) => void) =>
  fc.assert(fc.property(backupsArb, policyArb, check), { seed: 9, numRuns: 400 });

describe('GFS retention selection', () => {
  it('splits the backups into kept and removed, each exactly once', () =>
    property((backups, policy) => {
      const { keep, remove } = selectRetention(backups, policy);
      const ids = [...keep.map((k) => k.id), ...remove];
      expect(new Set(ids).size).toBe(ids.length);
      expect(new Set(ids)).toEqual(new Set(backups.map((b) => b.id)));
    }));

  it('never removes the newest backup whose restore test passed', () =>
    property((backups, policy) => {
      const newestVerified = [...backups].sort(byNewest).find((b) => b.restoreTest === 'pass');
      const selection = selectRetention(backups, policy);
      expect(selection.pinned).toBe(newestVerified?.id ?? null);
      if (newestVerified) expect(selection.remove).not.toContain(newestVerified.id);
    }));

  it('keeps the newest backup of each of the most recent days, ISO weeks and months', () =>
    property((backups, policy) => {
      const eligible = backups.filter((b) => b.restoreTest !== 'fail');
      const kept = new Set(selectRetention(backups, policy).keep.map((k) => k.id));
      for (const id of [
        ...newestPerBucket(eligible, dayOf, policy.keepDaily),
        ...newestPerBucket(eligible, isoWeekKey, policy.keepWeekly),
        ...newestPerBucket(eligible, monthOf, policy.keepMonthly),
      ])
        expect(kept.has(id)).toBe(true);
    }));

  it('keeps no more than asked for, beyond the pinned backup', () =>
    property((backups, policy) => {
      const { keep, pinned } = selectRetention(backups, policy);
      const unpinned = keep.filter((k) => k.id !== pinned);
      expect(unpinned.length).toBeLessThanOrEqual(policy.keepDaily + policy.keepWeekly + policy.keepMonthly);
      for (const reason of ['daily', 'weekly', 'monthly'] as const) {
        const limit = { daily: policy.keepDaily, weekly: policy.keepWeekly, monthly: policy.keepMonthly }[reason];
        expect(keep.filter((k) => k.reasons.includes(reason)).length).toBeLessThanOrEqual(limit);
      }
    }));

  it('keeps nothing whose latest restore test failed', () =>
    property((backups, policy) => {
      const failed = new Set(backups.filter((b) => b.restoreTest === 'fail').map((b) => b.id));
      for (const k of selectRetention(backups, policy).keep) expect(failed.has(k.id)).toBe(false);
    }));

  it('is idempotent: applied to what it keeps, it removes nothing', () =>
    property((backups, policy) => {
      const first = selectRetention(backups, policy);
      const kept = new Set(first.keep.map((k) => k.id));
      const second = selectRetention(
        backups.filter((b) => kept.has(b.id)),
        policy,
      );
      expect(second.remove).toEqual([]);
      expect(second.keep).toEqual(first.keep);
    }));

  it('does not depend on the order of its input', () =>
    fc.assert(
      fc.property(backupsArb, policyArb, fc.nat(), (backups, policy, seed) => {
        const shuffled = [...backups].sort((a, b) => ((a.takenAt * 31 + seed) % 97) - ((b.takenAt * 31 + seed) % 97));
        expect(selectRetention(shuffled, policy)).toEqual(selectRetention(backups, policy));
      }),
      { seed: 11, numRuns: 200 },
    ));

  it('with a zero policy keeps only the newest verified backup', () =>
    property((backups) => {
      const { keep, pinned } = selectRetention(backups, { keepDaily: 0, keepWeekly: 0, keepMonthly: 0 });
      expect(keep.map((k) => k.id)).toEqual(pinned ? [pinned] : []);
    }));

  it('buckets by UTC day, ISO week (Monday first, across the year end) and month', () => {
    const at = (iso: string) => Date.parse(iso);
    expect(isoWeekKey(at('2026-01-01T12:00:00Z'))).toBe('2026-W01'); // a Thursday
    expect(isoWeekKey(at('2025-12-29T00:00:00Z'))).toBe('2026-W01'); // the Monday before it
    expect(isoWeekKey(at('2025-12-28T23:59:59Z'))).toBe('2025-W52'); // a Sunday
    expect(isoWeekKey(at('2027-01-01T00:00:00Z'))).toBe('2026-W53'); // a Friday of a 53-week year
    const backups: RetainedCandidate[] = [
      { id: 'sun-late', takenAt: at('2025-12-28T23:00:00Z'), restoreTest: 'pass' },
      { id: 'sun-early', takenAt: at('2025-12-28T01:00:00Z'), restoreTest: 'pass' },
      { id: 'mon', takenAt: at('2025-12-29T02:00:00Z'), restoreTest: null },
      { id: 'tue-failed', takenAt: at('2025-12-30T02:00:00Z'), restoreTest: 'fail' },
      { id: 'nov', takenAt: at('2025-11-15T02:00:00Z'), restoreTest: 'pass' },
    ];
    const selection = selectRetention(backups, { keepDaily: 2, keepWeekly: 2, keepMonthly: 2 });
    expect(selection).toEqual({
      keep: [
        { id: 'mon', reasons: ['daily', 'weekly', 'monthly'] },
        { id: 'sun-late', reasons: ['pinned', 'daily', 'weekly'] },
        { id: 'nov', reasons: ['monthly'] },
      ],
      remove: ['tue-failed', 'sun-early'],
      pinned: 'sun-late',
    });
  });
});
