import { z } from 'zod';
import { Duration } from './consent';
import { Jurisdiction } from './subject-import';

/**
 * The transfer-notice campaign (PIPL Art. 22): every subject in scope is told who the new handler is, or,
 * where the purpose changed, asked for consent again. Durations and rates are inputs.
 */

export const CAMPAIGN_DEFAULTS = {
  batchSize: 500,
  /** Batches per workflow run before it continues as new, bounding the history. */
  batchesPerRun: 100,
  /** Sends in flight inside one batch (further capped by the worker's pool: each send holds a connection). */
  sendConcurrency: 8,
  batchHeartbeatTimeout: '30 seconds',
} as const;

export const CampaignFilter = z
  .object({
    jurisdiction: Jurisdiction.optional(),
    /** Only the subjects this import created. */
    importId: z
      .uuid()
      .transform((id) => id.toLowerCase())
      .optional(),
  })
  .strict();
export type CampaignFilter = z.infer<typeof CampaignFilter> & {
  /**
   * A breach-notice campaign: the subjects the incident affected (its `incident_affected_subjects` and the
   * subjects of the import it names). Set only by POST /v1/incidents/{id}/subject-notices, never by a request
   * to POST /v1/campaigns (the schema above does not admit it).
   */
  incidentId?: string;
};

/** The outbox template a campaign's notices use: its kind follows from its scope. */
export const campaignTemplate = (filter: CampaignFilter): 'breach-notice' | 'transfer-notice' =>
  filter.incidentId ? 'breach-notice' : 'transfer-notice';

const CONSENT_TERMS = ['respondWithin', 'remindEvery', 'maxReminders', 'validFor'] as const;

export const CampaignRequestFields = z
  .object({
    noticeId: z.uuid().transform((id) => id.toLowerCase()),
    /** True when the purpose or method of processing changed: consent is asked again (a consent workflow each). */
    purposeChanged: z.boolean(),
    filter: CampaignFilter.optional(),
    /** Subjects per second; absent, as fast as the worker sends. */
    ratePerSecond: z.number().positive().max(100_000).optional(),
    batchSize: z.number().int().min(1).max(5_000).default(CAMPAIGN_DEFAULTS.batchSize),
    /** Re-consent only, as in POST /v1/consents. */
    respondWithin: Duration.optional(),
    remindEvery: Duration.optional(),
    maxReminders: z.number().int().min(0).max(20).optional(),
    validFor: Duration.optional(),
  })
  .strict();

/** The consent terms are required for a re-consent campaign and refused for a notice-only one, each by name. */
export const checkConsentTerms = (
  r: Pick<z.infer<typeof CampaignRequestFields>, 'purposeChanged' | (typeof CONSENT_TERMS)[number]>,
  ctx: z.RefinementCtx,
) => {
  for (const field of CONSENT_TERMS) {
    if (r.purposeChanged && r[field] === undefined)
      ctx.addIssue({ code: 'custom', path: [field], message: 'required when purposeChanged is true' });
    if (!r.purposeChanged && r[field] !== undefined)
      ctx.addIssue({ code: 'custom', path: [field], message: 'only for a re-consent campaign (purposeChanged)' });
  }
};

export const CampaignRequest = CampaignRequestFields.superRefine(checkConsentTerms);
export type CampaignRequest = z.infer<typeof CampaignRequest>;

/** What each consent workflow of a re-consent campaign gets, in milliseconds. */
export interface CampaignConsentTerms {
  respondWithinMs: number;
  remindEveryMs: number;
  maxReminders: number;
  validForMs: number;
}

export interface CampaignCounts {
  /** Subjects reached: notified + consentsRequested + failed. */
  targeted: number;
  notified: number;
  consentsRequested: number;
  failed: number;
}
export const zeroCampaignCounts = (): CampaignCounts => ({ targeted: 0, notified: 0, consentsRequested: 0, failed: 0 });
export const addCampaignCounts = (a: CampaignCounts, b: CampaignCounts): CampaignCounts => ({
  targeted: a.targeted + b.targeted,
  notified: a.notified + b.notified,
  consentsRequested: a.consentsRequested + b.consentsRequested,
  failed: a.failed + b.failed,
});

/** Where a continued run picks up: the last subject done, the counters, and the clock of the campaign. */
export interface CampaignResume {
  /** The subject ID the next page starts after; '' before the first. */
  cursor: string;
  counts: CampaignCounts;
  batches: number;
  total: number;
  purpose: string;
  startedAt: number;
  pausedMs: number;
}

/** The workflow's input: IDs, codes, counts and durations, never a personal value. */
export interface CampaignInput {
  campaignId: string;
  noticeId: string;
  purposeChanged: boolean;
  filter: CampaignFilter;
  ratePerSecond?: number;
  batchSize: number;
  /** Re-consent only. */
  consent?: CampaignConsentTerms;
  /** `user:<id>` of the owner who asked. */
  requestedBy: string;
  batchesPerRun?: number;
  sendConcurrency?: number;
  batchHeartbeatTimeout?: string;
  resume?: CampaignResume;
}

export const CAMPAIGN_STATUSES = ['running', 'paused', 'cancelling', 'completed', 'cancelled', 'failed'] as const;
export type CampaignStatus = (typeof CAMPAIGN_STATUSES)[number];
export type CampaignFinalStatus = Extract<CampaignStatus, 'completed' | 'cancelled' | 'failed'>;

/** The progress query's answer. Times are epoch milliseconds. */
export interface CampaignProgress {
  campaignId: string;
  status: CampaignStatus;
  total: number;
  counts: CampaignCounts;
  batches: number;
  cursor: string;
  ratePerSecond: number | null;
  /** Subjects per second while not paused, so far. */
  observedPerSecond: number;
  startedAt: number;
}

/** What is stored and audited when a campaign ends. */
export interface CampaignReport extends CampaignCounts {
  campaignId: string;
  status: CampaignFinalStatus;
  purposeChanged: boolean;
  total: number;
  batches: number;
  ratePerSecond: number | null;
  observedPerSecond: number;
  startedAt: string;
  finishedAt: string;
  /** A failure type when failed, never a message. */
  error: string | null;
}

export const CAMPAIGN_PROGRESS_QUERY = 'progress';

/** Failure types of refused campaign updates start with this; the API maps them to 409. */
export const CAMPAIGN_CONFLICT_PREFIX = 'campaign-';

/** Subjects per second over the time the campaign was not paused. */
export const observedRate = (targeted: number, activeMs: number): number =>
  activeMs > 0 ? Math.round((targeted * 1000 * 100) / activeMs) / 100 : 0;

/**
 * How long to wait after a batch so that `subjects` took at least `subjects / ratePerSecond`; the batch's
 * own time counts towards it. No limit, no wait.
 */
export const paceMs = (subjects: number, ratePerSecond: number | undefined, elapsedMs: number): number =>
  ratePerSecond === undefined ? 0 : Math.max(0, Math.ceil((subjects * 1000) / ratePerSecond - elapsedMs));

/** The namespace of campaign consent IDs (RFC 9562 name-based UUIDs): fixed, so a retry derives the same ID. */
export const CAMPAIGN_CONSENT_NAMESPACE = 'b615319a-d6a8-4ede-917e-7427c8f3b8d6';

const uuidBytes = (uuid: string): Uint8Array => {
  const hex = uuid.replace(/-/g, '');
  return Uint8Array.from({ length: 16 }, (_, i) => parseInt(hex.slice(i * 2, i * 2 + 2), 16));
};

/**
 * What is hashed for the consent a campaign asks of a subject: the namespace's 16 bytes, then
 * `<campaignId>:<subjectId>` in UTF-8 (RFC 9562 §5.8 and appendix B.2). The caller hashes it with SHA-256.
 */
export const campaignConsentName = (campaignId: string, subjectId: string): Uint8Array => {
  const name = new TextEncoder().encode(`${campaignId.toLowerCase()}:${subjectId.toLowerCase()}`);
  const bytes = new Uint8Array(16 + name.length);
  bytes.set(uuidBytes(CAMPAIGN_CONSENT_NAMESPACE));
  bytes.set(name, 16);
  return bytes;
};

/** A version-8 (name-based, SHA-256) UUID from the first 128 bits of a SHA-256 digest. */
export const uuidFromSha256 = (digest: Uint8Array): string => {
  if (digest.length < 16) throw new RangeError('a SHA-256 digest has 32 bytes');
  const b = Uint8Array.from(digest.subarray(0, 16));
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
};
