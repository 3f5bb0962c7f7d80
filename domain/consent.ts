import { z } from 'zod';
import type { Catalog } from './catalog';
import { DomainError } from './errors';
import { notificationLocale, type NotificationLocale } from './notification-templates';

/**
 * The consent process: a request for a purpose, answered (grant or deny) within a window, reminded at an
 * interval, granted for a period and then renewed. Durations are inputs: production passes days, tests seconds.
 */

const UNIT_MS: Record<string, number> = {
  second: 1000,
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
  week: 604_800_000,
};

const ISO = /^P(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$/;

/** Milliseconds of `P30D`/`PT12H`/`P1W` (no years or months: their length varies) or `"30 seconds"`; undefined if neither. */
export const parseDuration = (text: string): number | undefined => {
  const iso = ISO.exec(text);
  if (iso && text !== 'P' && !text.endsWith('T')) {
    const [, w, d, h, m, s] = iso;
    return (
      Number(w ?? 0) * UNIT_MS.week! +
      Number(d ?? 0) * UNIT_MS.day! +
      Number(h ?? 0) * UNIT_MS.hour! +
      Number(m ?? 0) * UNIT_MS.minute! +
      Math.round(Number(s ?? 0) * 1000)
    );
  }
  const words = /^(\d+) ?(second|minute|hour|day|week)s?$/.exec(text.trim());
  return words ? Number(words[1]) * UNIT_MS[words[2]!]! : undefined;
};

/** A duration as ISO 8601 (`P30D`) or words (`"30 seconds"`), parsed to milliseconds; at least a second. */
export const Duration = z
  .string()
  .max(40)
  .transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined || ms < 1000) {
      ctx.addIssue({
        code: 'custom',
        message: 'must be an ISO 8601 duration (P30D, PT12H) or "30 seconds", at least 1 s',
      });
      return z.NEVER;
    }
    return ms;
  });

/** How the request reaches the subject: the notifier's address field (more channels come with the notifier). */
export const CONSENT_CHANNELS = ['email'] as const;
export const ConsentChannel = z.enum(CONSENT_CHANNELS);

export const ConsentRequest = z
  .object({
    subjectId: z.uuid().transform((id) => id.toLowerCase()),
    noticeId: z.uuid().transform((id) => id.toLowerCase()),
    channel: ConsentChannel,
    /** The response window; the link expires with it. */
    respondWithin: Duration,
    remindEvery: Duration,
    maxReminders: z.number().int().min(0).max(20),
    /** How long a grant lasts before a renewal request. */
    validFor: Duration,
  })
  .strict();
export type ConsentRequest = z.infer<typeof ConsentRequest>;

/** The workflow's input: IDs, a purpose code and durations in milliseconds, never a personal value. */
export interface ConsentInput {
  consentId: string;
  subjectId: string;
  noticeId: string;
  purpose: string;
  channel: (typeof CONSENT_CHANNELS)[number];
  respondWithinMs: number;
  remindEveryMs: number;
  maxReminders: number;
  validForMs: number;
  /** `user:<id>` of the owner who asked. */
  requestedBy: string;
  /** 1 for the first request; each renewal (continue-as-new) adds one. */
  round: number;
}

export const CONSENT_STATUSES = ['requested', 'granted', 'denied', 'expired', 'withdrawn'] as const;
export type ConsentStatus = (typeof CONSENT_STATUSES)[number];
export type ConsentDecision = 'grant' | 'deny';

/** The separate answer for sensitive personal information (PIPL Art. 29), stored as `consents.sensitive_decision`. */
export const SENSITIVE_DECISIONS = ['granted', 'refused'] as const;
export type SensitiveDecision = (typeof SENSITIVE_DECISIONS)[number];

/** What the workflow holds and its `state` query returns. Times are epoch milliseconds. */
export interface ConsentState {
  consentId: string;
  round: number;
  status: ConsentStatus;
  reminders: number;
  respondBy: number;
  decidedAt?: number;
  validUntil?: number;
  withdrawnAt?: number;
  /** Whether the purpose touches sensitive catalog fields; known once the request is recorded. */
  sensitive?: boolean;
  /** The separate sensitive answer of a decision on such a purpose; cleared by a withdrawal. */
  sensitiveDecision?: SensitiveDecision;
}

export const CONSENT_STATE_QUERY = 'state';

/** Who decided or withdrew: an actor reference and the API key, IDs only. */
export interface ConsentActor {
  actor: string;
  apiKeyId?: string | null;
  method: 'web-link' | 'on-behalf';
}

/** The argument of the grant and deny updates: who, and the separate answer for sensitive data where asked. */
export interface ConsentDecisionArgs extends ConsentActor {
  sensitive?: boolean;
}

/** An illegal transition. `code` is the API's problem code and the workflow's failure type. */
export class ConsentConflict extends DomainError {
  override name = 'ConsentConflict';
  constructor(code: `consent-${string}`, message: string) {
    super('conflict', code, message);
  }
}

/** Failure types of consent conflicts start with this; the API maps them to 409. */
export const CONSENT_CONFLICT_PREFIX = 'consent-';

const refuseUnlessRequested = (s: ConsentState, at: number) => {
  if (s.status !== 'requested')
    throw new ConsentConflict(`consent-${s.status}`, `consent ${s.consentId} is ${s.status}: it cannot be decided`);
  if (at >= s.respondBy)
    throw new ConsentConflict('consent-expired', `consent ${s.consentId} is expired: the response window closed`);
};

export const grant = (s: ConsentState, at: number, validForMs: number): ConsentState => {
  refuseUnlessRequested(s, at);
  return { ...s, status: 'granted', decidedAt: at, validUntil: at + validForMs };
};

export const deny = (s: ConsentState, at: number): ConsentState => {
  refuseUnlessRequested(s, at);
  return { ...s, status: 'denied', decidedAt: at };
};

export const decide = (s: ConsentState, decision: ConsentDecision, at: number, validForMs: number) =>
  decision === 'grant' ? grant(s, at, validForMs) : deny(s, at);

/** A withdrawal withdraws the sensitive answer with the rest. */
export const withdraw = (s: ConsentState, at: number): ConsentState => {
  if (s.status !== 'granted')
    throw new ConsentConflict(
      s.status === 'withdrawn' ? 'consent-withdrawn' : 'consent-not-granted',
      `consent ${s.consentId} is ${s.status}: only a granted consent can be withdrawn`,
    );
  return { ...s, status: 'withdrawn', withdrawnAt: at, sensitiveDecision: undefined };
};

/** The sensitive catalog fields a purpose touches (PIPL Art. 28): a separate consent is asked for them. */
export const sensitiveCategories = (catalog: Catalog, purpose: string): string[] =>
  Object.entries(catalog.fields)
    .filter(([, e]) => e.classification === 'sensitive' && e.purposes.includes(purpose))
    .map(([name]) => name)
    .sort();

/** The workflow's failure type for a refused `sensitive` answer (not `consent-…`: it is a 400, not a 409). */
export const SENSITIVE_CHOICE_FAILURE = 'sensitive-choice';

/** A `sensitive` answer that does not fit the decision or the purpose; the API answers 400 naming `sensitive`. */
export class SensitiveChoiceInvalid extends DomainError {
  override name = 'SensitiveChoiceInvalid';
  constructor(message: string) {
    super('invalid', SENSITIVE_CHOICE_FAILURE, message);
  }
}

/** The stored sensitive answer of a decision: only a grant with an explicit `true` grants it (PIPL Art. 29). */
export const settleSensitive = (
  touches: boolean | undefined,
  decision: ConsentDecision,
  choice: boolean | undefined,
): SensitiveDecision | undefined =>
  touches ? (decision === 'grant' && choice === true ? 'granted' : 'refused') : undefined;

/**
 * Checks a decision's `sensitive` answer against the purpose and returns what it records. A purpose that touches
 * sensitive data needs an explicit answer with a grant; one that touches none takes no answer; a refusal cannot
 * grant it. `touches` is undefined before the request is recorded: then only the contradiction is refused.
 */
export const sensitiveAnswer = (
  touches: boolean | undefined,
  decision: ConsentDecision,
  choice: boolean | undefined,
): SensitiveDecision | undefined => {
  if (decision === 'deny' && choice === true)
    throw new SensitiveChoiceInvalid(
      'a refused consent cannot grant sensitive processing: omit sensitive or send false',
    );
  if (touches === false && choice !== undefined)
    throw new SensitiveChoiceInvalid(
      'the notice’s purpose touches no sensitive personal information: sensitive must be omitted',
    );
  if (touches === true && decision === 'grant' && choice === undefined)
    throw new SensitiveChoiceInvalid(
      'the notice’s purpose touches sensitive personal information, which needs its own answer: send sensitive true or false',
    );
  return settleSensitive(touches, decision, choice);
};

/** The language a subject is addressed in: their locale (zh-CN or en), zh-CN when they have none. */
export const subjectLanguage = (locale: string | null | undefined): NotificationLocale =>
  locale?.trim() ? notificationLocale(locale) : 'zh-CN';

export const expire = (s: ConsentState): ConsentState => {
  if (s.status !== 'requested')
    throw new ConsentConflict(`consent-${s.status}`, `consent ${s.consentId} is ${s.status}: it cannot expire`);
  return { ...s, status: 'expired' };
};

/** Non-retryable failure types of the consent activities (the notifier's included). */
export const CONSENT_NON_RETRYABLE = [
  'ConsentNotFound',
  'NoticeNotFound',
  'InvalidInput',
  'NoRecipient',
  'NotificationRejected',
  'IdempotencyKeyReused',
  'CryptoError',
];

/**
 * The link token: `<consentId>.<round>.<expires, epoch seconds>.<mac>`, the MAC (HMAC-SHA256, base64url)
 * over the first three parts. Pure format helpers here; the key and the MAC are in activities/consents.ts.
 */
export interface ConsentTokenClaims {
  consentId: string;
  round: number;
  expiresAt: number;
}

export const tokenBody = (c: ConsentTokenClaims): string =>
  `${c.consentId.toLowerCase()}.${c.round}.${Math.floor(c.expiresAt / 1000)}`;

const TOKEN =
  /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.([1-9]\d{0,5})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** The parts of a well-formed token (not yet verified), or undefined. */
export const splitToken = (token: string): { claims: ConsentTokenClaims; body: string; mac: string } | undefined => {
  const m = TOKEN.exec(token);
  if (!m) return undefined;
  const claims = { consentId: m[1]!, round: Number(m[2]), expiresAt: Number(m[3]) * 1000 };
  return { claims, body: `${m[1]}.${m[2]}.${m[3]}`, mac: m[4]! };
};
