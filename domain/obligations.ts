import { z } from 'zod';
import { Duration } from './consent';
import type { NotificationLocale } from './notification-templates';
import { StorableText } from './text';

/**
 * The compliance calendar's obligations: duties that are not workflows but have a source, an owner, a next due
 * date, a recurrence and reminders; completing one records evidence and moves the due date on by the recurrence.
 * A daily check (`obligations-check-{id}`) reminds the owners before the due date and tells them once it is overdue.
 */

const DAY = 86_400_000;

export interface ObligationDefault {
  key: string;
  title: string;
  source: string;
  recurrenceMonths: number;
  remindBeforeMs: number;
}

/** Seeded on first use, each with its source (../shared/REGULATIONS.md); operators edit owners and dates. */
export const DEFAULT_OBLIGATIONS: readonly ObligationDefault[] = [
  {
    key: 'pi-compliance-audit',
    title: 'Personal-information protection compliance audit (handlers of more than 10 million individuals)',
    source:
      '个人信息保护合规审计管理办法 (effective 2025-05-01): at least every 2 years above 10 M individuals; one auditor at most 3 times in a row (checked)',
    recurrenceMonths: 24,
    remindBeforeMs: 90 * DAY,
  },
  {
    key: 'credit-bureau-compliance-audit',
    title: 'Yearly compliance audit of the personal credit bureau',
    source:
      'Issue 12 (yearly compliance audit of a personal credit bureau); not in REGULATIONS.md: the regulatory text is not checked, confirm the source',
    recurrenceMonths: 12,
    remindBeforeMs: 60 * DAY,
  },
  {
    key: 'pia-records-retention',
    title: 'Impact-assessment reports and processing records kept at least 3 years: yearly check',
    source:
      'PIPL Art. 55–56: assessment before sensitive processing, provision to others, cross-border transfer; records kept ≥ 3 years (secondary)',
    recurrenceMonths: 12,
    remindBeforeMs: 30 * DAY,
  },
  {
    key: 'staff-training',
    title: 'Staff training on personal-information protection',
    source: 'PIPL Art. 51: regular security education and training of staff (secondary)',
    recurrenceMonths: 12,
    remindBeforeMs: 30 * DAY,
  },
  {
    key: 'policy-attestation',
    title: 'Staff attestation of the personal-information handling policies',
    source:
      'PIPL Art. 51: internal management rules and operating procedures (secondary); attestation is this deployment’s practice',
    recurrenceMonths: 12,
    remindBeforeMs: 30 * DAY,
  },
];

/** `date` plus whole months in UTC, the day clamped to the month's last (31 Jan + 1 month = 28/29 Feb). */
export const addMonths = (date: Date, months: number): Date => {
  const y = date.getUTCFullYear();
  const m = date.getUTCMonth() + months;
  const last = new Date(Date.UTC(y, m + 1, 0)).getUTCDate();
  return new Date(
    Date.UTC(
      y,
      m,
      Math.min(date.getUTCDate(), last),
      date.getUTCHours(),
      date.getUTCMinutes(),
      date.getUTCSeconds(),
      date.getUTCMilliseconds(),
    ),
  );
};

export const ObligationKey = z
  .string()
  .regex(/^[a-z][a-z0-9-]{1,63}$/, { error: 'must be 2-64 characters of [a-z0-9-], starting with a letter' });

export const ObligationRequest = z
  .object({
    key: ObligationKey,
    title: StorableText(3, 300),
    source: StorableText(3, 1000),
    ownerId: z
      .uuid()
      .transform((id) => id.toLowerCase())
      .optional(),
    recurrenceMonths: z.number().int().min(1).max(120),
    nextDueAt: z.iso.datetime({ offset: true }),
    remindBefore: Duration.optional(),
  })
  .strict();
export type ObligationRequest = z.infer<typeof ObligationRequest>;

/** `PATCH /v1/obligations/{id}`: name or clear the owner, move the due date, change the recurrence or reminder lead. */
export const ObligationPatch = z
  .object({
    ownerId: z
      .uuid()
      .transform((id) => id.toLowerCase())
      .nullable()
      .optional(),
    nextDueAt: z.iso.datetime({ offset: true }).optional(),
    recurrenceMonths: z.number().int().min(1).max(120).optional(),
    remindBefore: Duration.optional(),
  })
  .strict()
  .refine((p) => Object.keys(p).length > 0, {
    error: 'give at least one of ownerId, nextDueAt, recurrenceMonths, remindBefore',
  });
export type ObligationPatch = z.infer<typeof ObligationPatch>;

const Sha256 = z
  .string()
  .regex(/^[0-9a-fA-F]{64}$/, { error: 'must be a SHA-256 in hex (64 characters)' })
  .transform((h) => h.toLowerCase());

export const ObligationCompletion = z
  .object({ evidenceNote: StorableText(3, 2000).optional(), evidenceSha256: Sha256.optional() })
  .strict()
  .refine((c) => c.evidenceNote !== undefined || c.evidenceSha256 !== undefined, {
    error: 'give an evidence note, a file hash or both',
    path: ['evidenceNote'],
  });
export type ObligationCompletion = z.infer<typeof ObligationCompletion>;

export type ObligationStatus = 'scheduled' | 'due-soon' | 'overdue';

/** Where an obligation stands at `now`: overdue from the due date, due soon within its reminder lead. */
export const obligationStatus = (o: { nextDueAt: Date; remindBeforeMs: number }, now: Date): ObligationStatus =>
  now.getTime() >= o.nextDueAt.getTime()
    ? 'overdue'
    : now.getTime() >= o.nextDueAt.getTime() - o.remindBeforeMs
      ? 'due-soon'
      : 'scheduled';

/** What names an obligation wherever it is shown (the API's view, the console's rows): the rule, the owner, how often. */
export interface ObligationSummary {
  id: string;
  key: string;
  title: string;
  source: string;
  ownerId: string | null;
  recurrenceMonths: number;
}

export const obligationSummary = (o: ObligationSummary): ObligationSummary => ({
  id: o.id,
  key: o.key,
  title: o.title,
  source: o.source,
  ownerId: o.ownerId,
  recurrenceMonths: o.recurrenceMonths,
});

export interface ObligationCheckInput {
  checkId: string;
  requestedBy: string;
}

export interface ObligationCheckResult {
  checkId: string;
  obligations: number;
  reminded: number;
  overdue: number;
  sent: number;
  failed: number;
}

export interface ObligationMessage {
  obligationId: string;
  key: string;
  title: string;
  dueAt: string;
  overdue: boolean;
}

/** The owners' reminder and overdue notice: the obligation's title (not personal data), key and due date. */
export const renderObligationMessage = (
  locale: NotificationLocale,
  m: ObligationMessage,
): { subject: string; text: string } =>
  locale === 'zh-CN'
    ? {
        subject: `${m.overdue ? '已逾期' : '即将到期'}：${m.title}`,
        text: `合规义务 ${m.key}（${m.obligationId}）${m.overdue ? '已于' : '将于'} ${m.dueAt} 到期。完成后请通过 POST /v1/obligations/${m.obligationId}/complete 提交证据。`,
      }
    : {
        subject: `${m.overdue ? 'Overdue' : 'Due soon'}: ${m.title}`,
        text: `Compliance obligation ${m.key} (${m.obligationId}) ${m.overdue ? 'was' : 'is'} due ${m.dueAt}. Record its evidence through POST /v1/obligations/${m.obligationId}/complete once done.`,
      };
