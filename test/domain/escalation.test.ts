import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  EscalationPolicyRequest,
  escalationSchedule,
  exhaustionOffsetMs,
  firstStep,
  freezePolicy,
  nextStep,
  type FrozenPolicy,
} from '../../domain/escalation';

const user = (n: number) => ({
  type: 'user' as const,
  id: `${String(n).padStart(8, '0')}-0000-4000-8000-000000000000`,
});

const arbPolicy: fc.Arbitrary<FrozenPolicy> = fc.record({
  policyId: fc.uuid(),
  levels: fc.array(fc.record({ targets: fc.constant([user(1)]), waitMs: fc.integer({ min: 1000, max: 3_600_000 }) }), {
    minLength: 1,
    maxLength: 10,
  }),
  repeat: fc.integer({ min: 0, max: 9 }),
});

describe('escalation policy', () => {
  it('parses levels with durations, defaults repeat to 0 and refuses more than 9 repeats', () => {
    const parsed = EscalationPolicyRequest.parse({
      name: 'db',
      levels: [
        { targets: [user(1)], wait: '5 minutes' },
        { targets: [user(2)], wait: 'PT10M' },
      ],
      reescalateAfter: 'PT1H',
    });
    expect(freezePolicy('p', parsed)).toEqual({
      policyId: 'p',
      levels: [
        { targets: [user(1)], waitMs: 300_000 },
        { targets: [user(2)], waitMs: 600_000 },
      ],
      repeat: 0,
      reescalateAfterMs: 3_600_000,
    });
    const tooMany = EscalationPolicyRequest.safeParse({
      name: 'x',
      levels: [{ targets: [user(1)], wait: '1 second' }],
      repeat: 10,
    });
    expect(tooMany.success).toBe(false);
    expect(EscalationPolicyRequest.safeParse({ name: 'x', levels: [] }).success).toBe(false);
    expect(
      EscalationPolicyRequest.safeParse({
        name: 'x',
        levels: [{ targets: [{ type: 'team', id: user(1).id }], wait: '1 second' }],
      }).success,
    ).toBe(false);
  });

  it('walks every level of every pass in order, then is exhausted', () => {
    fc.assert(
      fc.property(arbPolicy, (p) => {
        const steps = escalationSchedule(p);
        expect(steps).toHaveLength(p.levels.length * (p.repeat + 1));
        steps.forEach((s, i) => {
          expect(s.cycle).toBe(Math.floor(i / p.levels.length) + 1);
          expect(s.level).toBe((i % p.levels.length) + 1);
          expect(s.waitMs).toBe(p.levels[s.level - 1]!.waitMs);
        });
        expect(steps[0]).toMatchObject(firstStep(p));
        expect(nextStep(p, steps.at(-1)!)).toBeUndefined();
      }),
    );
  });

  it('each page falls at the sum of the waits before it; the owners are told after every wait of every pass', () => {
    fc.assert(
      fc.property(arbPolicy, (p) => {
        const steps = escalationSchedule(p);
        let at = 0;
        for (const s of steps) {
          expect(s.offsetMs).toBe(at);
          at += s.waitMs;
        }
        expect(exhaustionOffsetMs(p)).toBe(at);
        // Level 2 (or the next pass) is paged exactly at level 1's timeout.
        if (steps.length > 1) expect(steps[1]!.offsetMs).toBe(p.levels[0]!.waitMs);
      }),
    );
  });
});
