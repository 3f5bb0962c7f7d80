import { describe, expect, it } from 'vitest';
import { AccessGrantRequest, grantCovers, purposeTouchesSensitive } from '../../domain/access-grants';
import {
  AccessReviewRequest,
  renderAccessReviewMessage,
  reminderTimes,
  reviewPeriod,
} from '../../domain/access-review';
import { defaultCatalog } from '../../domain/catalog';

const grant = {
  userId: '0b7c8f3e-1d2a-4c5b-9e8f-7a6b5c4d3e2f',
  reviewerId: '1c8d9a4f-2e3b-4d6c-8f9a-8b7c6d5e4f3a',
  capability: 'reveal',
  expiresAt: '2027-01-01T00:00:00Z',
};

describe('access grants', () => {
  it('cover their classification and purpose; null covers any', () => {
    expect(grantCovers({ classification: 'sensitive', purpose: null }, 'sensitive', 'debt-collection')).toBe(true);
    expect(
      grantCovers({ classification: 'sensitive', purpose: 'credit-assessment' }, 'sensitive', 'debt-collection'),
    ).toBe(false);
    expect(grantCovers({ classification: null, purpose: 'credit-assessment' }, 'sensitive', 'credit-assessment')).toBe(
      true,
    );
    expect(grantCovers({ classification: 'personal', purpose: null }, 'sensitive', 'credit-assessment')).toBe(false);
  });

  it('are needed for purposes that reach a sensitive catalog field only', () => {
    expect(purposeTouchesSensitive(defaultCatalog, 'credit-assessment')).toBe(true);
    expect(purposeTouchesSensitive(defaultCatalog, 'debt-collection')).toBe(true);
    expect(purposeTouchesSensitive(defaultCatalog, 'customer-service')).toBe(false);
    expect(purposeTouchesSensitive(defaultCatalog, 'marketing')).toBe(false);
  });

  it('refuse a grant without scope, or reviewed by its own holder, naming the field', () => {
    const paths = (input: unknown) => AccessGrantRequest.safeParse(input).error?.issues.map((i) => i.path.join('.'));
    expect(AccessGrantRequest.parse({ ...grant, classification: 'sensitive' }).purpose).toBeUndefined();
    expect(paths(grant)).toEqual(['classification']);
    expect(paths({ ...grant, purpose: 'marketing', reviewerId: grant.userId })).toEqual(['reviewerId']);
    expect(paths({ ...grant, purpose: 'Not A Purpose' })).toEqual(['purpose']);
  });
});

describe('access reviews', () => {
  it('name the calendar quarter in UTC', () => {
    expect(reviewPeriod(new Date('2026-01-01T00:00:00Z'))).toBe('2026-Q1');
    expect(reviewPeriod(new Date('2026-06-30T23:59:59Z'))).toBe('2026-Q2');
    expect(reviewPeriod(new Date('2026-11-30T03:00:00Z'))).toBe('2026-Q4');
  });

  it('remind at each interval strictly before the deadline', () => {
    expect(reminderTimes(0, 10, 3)).toEqual([3, 6, 9]);
    expect(reminderTimes(0, 9, 3)).toEqual([3, 6]);
    expect(reminderTimes(0, 3, 5)).toEqual([]);
  });

  it('take durations as inputs, a reminder shorter than the deadline', () => {
    expect(AccessReviewRequest.parse({ deadline: 'P14D', reminderEvery: 'P3D' })).toEqual({
      deadline: 14 * 86_400_000,
      reminderEvery: 3 * 86_400_000,
    });
    expect(
      AccessReviewRequest.safeParse({ deadline: '10 seconds', reminderEvery: '10 seconds' }).error?.issues[0]?.path,
    ).toEqual(['reminderEvery']);
  });

  it('tell reviewers counts, IDs and the deadline in their locale', () => {
    const m = {
      reviewId: 'r-1',
      period: '2026-Q4',
      pending: 3,
      deadlineAt: '2026-12-14T03:00:00.000Z',
      reminder: true,
    };
    expect(renderAccessReviewMessage('en', m).subject).toBe(
      'Reminder: access review 2026-Q4: 3 grant(s) await your decision',
    );
    expect(renderAccessReviewMessage('zh-CN', m).text).toContain('3 项授权');
  });
});
