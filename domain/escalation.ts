import { z } from 'zod';
import { StorableText } from './text';
import { Duration } from './consent';

/**
 * Escalation policies: ordered levels, each paging its targets (users, or whoever a schedule has on call at
 * that moment) and waiting before the next level; the whole chain repeats up to 9 times; optionally, an
 * acknowledged incident that sees no update for a while is escalated again from level 1. A policy is frozen
 * into the incident when it is triggered: later edits never change a running escalation.
 */

export const MAX_REPEATS = 9;

const Id = z.uuid().transform((id) => id.toLowerCase());

export const EscalationTarget = z.discriminatedUnion('type', [
  z.object({ type: z.literal('user'), id: Id }).strict(),
  z.object({ type: z.literal('schedule'), id: Id }).strict(),
]);
export type EscalationTarget = z.infer<typeof EscalationTarget>;

export const EscalationPolicyRequest = z
  .object({
    name: StorableText(1, 200),
    levels: z
      .array(
        z
          .object({
            targets: z.array(EscalationTarget).min(1).max(20),
            /** How long this level has to acknowledge before the next is paged. */
            wait: Duration,
          })
          .strict(),
      )
      .min(1)
      .max(10),
    /** Times the whole chain runs again after the first pass (0–9). */
    repeat: z.number().int().min(0).max(MAX_REPEATS).default(0),
    /** Escalate again from level 1 when an acknowledged incident sees no update for this long. */
    reescalateAfter: Duration.optional(),
  })
  .strict();
export type EscalationPolicyRequest = z.infer<typeof EscalationPolicyRequest>;

/** The policy as frozen into an incident (durations in milliseconds); carried in the workflow input. */
export interface FrozenPolicy {
  policyId: string;
  levels: { targets: EscalationTarget[]; waitMs: number }[];
  repeat: number;
  reescalateAfterMs?: number;
}

export const freezePolicy = (policyId: string, p: EscalationPolicyRequest): FrozenPolicy => ({
  policyId,
  levels: p.levels.map((l) => ({ targets: l.targets, waitMs: l.wait })),
  repeat: p.repeat,
  ...(p.reescalateAfter === undefined ? {} : { reescalateAfterMs: p.reescalateAfter }),
});

/** One page of the chain: cycle (1 = the first pass) and level, both counted from 1. */
export interface EscalationStep {
  cycle: number;
  level: number;
  targets: EscalationTarget[];
  waitMs: number;
}

export const firstStep = (p: FrozenPolicy): EscalationStep => ({ cycle: 1, level: 1, ...p.levels[0]! });

/** The step after `at`, or undefined when the chain (with its repeats) is exhausted. */
export const nextStep = (p: FrozenPolicy, at: Pick<EscalationStep, 'cycle' | 'level'>): EscalationStep | undefined => {
  if (at.level < p.levels.length) return { cycle: at.cycle, level: at.level + 1, ...p.levels[at.level]! };
  if (at.cycle <= p.repeat) return { cycle: at.cycle + 1, level: 1, ...p.levels[0]! };
  return undefined;
};

/** Every step in order, with its offset from the start of the round (when it is paged if nobody acknowledges). */
export const escalationSchedule = (p: FrozenPolicy): (EscalationStep & { offsetMs: number })[] => {
  const out: (EscalationStep & { offsetMs: number })[] = [];
  let offsetMs = 0;
  for (let s: EscalationStep | undefined = firstStep(p); s; s = nextStep(p, s)) {
    out.push({ ...s, offsetMs });
    offsetMs += s.waitMs;
  }
  return out;
};

/** When an unacknowledged round is exhausted and the owners are told: the sum of every wait of every pass. */
export const exhaustionOffsetMs = (p: FrozenPolicy): number =>
  p.levels.reduce((sum, l) => sum + l.waitMs, 0) * (p.repeat + 1);
