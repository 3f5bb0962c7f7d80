import { z } from 'zod';
import { Duration } from './consent';
import { DomainError } from './errors';
import { StorableText } from './text';
import type { FrozenPolicy } from './escalation';
import {
  CLOCK_JURISDICTIONS,
  CN_GRADES,
  CN_OPERATOR_TYPES,
  DEADLINE_KINDS,
  type CnGrade,
  type CnOperatorType,
  type Deadline,
  type DeadlineKind,
  type GradeThresholds,
} from './regulatory-clocks';

/**
 * The incident process: paged by an escalation policy until a responder acknowledges, worked through
 * investigation and containment to resolution, closed by its postmortem; regulator clocks run beside it.
 */

export const SEVERITIES = ['sev1', 'sev2', 'sev3', 'sev4'] as const;
export type Severity = (typeof SEVERITIES)[number];

export const INCIDENT_CATEGORIES = [
  'data-breach',
  'security',
  'availability',
  'backup',
  'data-quality',
  'other',
] as const;
export type IncidentCategory = (typeof INCIDENT_CATEGORIES)[number];

/** `unacknowledged`: the chain was exhausted and the owners told; an ack is still taken. */
export const INCIDENT_STATUSES = [
  'triggered',
  'unacknowledged',
  'acknowledged',
  'investigating',
  'contained',
  'resolved',
  'closed',
] as const;
export type IncidentStatus = (typeof INCIDENT_STATUSES)[number];

/** Statuses a responder sets with `status` (resolve and close have their own steps, with a summary and a postmortem). */
export const WORK_STATUSES = ['investigating', 'contained'] as const;
export type WorkStatus = (typeof WORK_STATUSES)[number];

/**
 * Every legal move. `ack` and the system's `exhaust`/`reescalate` are moves too, so the whole machine is here:
 * triggered → acknowledged → investigating ⇄ contained → resolved → closed; triggered → unacknowledged → acknowledged;
 * acknowledged → triggered (re-escalation after silence).
 */
export const TRANSITIONS: Record<IncidentStatus, readonly IncidentStatus[]> = {
  triggered: ['acknowledged', 'unacknowledged'],
  unacknowledged: ['acknowledged'],
  acknowledged: ['investigating', 'contained', 'resolved', 'triggered'],
  investigating: ['contained', 'resolved'],
  contained: ['investigating', 'resolved'],
  resolved: ['closed'],
  closed: [],
};

export const canMove = (from: IncidentStatus, to: IncidentStatus) => TRANSITIONS[from].includes(to);

/** An illegal move; `code` is the API's problem code (409) and the workflow's failure type. */
export class IncidentConflict extends DomainError {
  override name = 'IncidentConflict';
  constructor(code: `incident-${string}`, message: string) {
    super('conflict', code, message);
  }
}
export const INCIDENT_CONFLICT_PREFIX = 'incident-';
/** The failure type of an update by someone who is not a responder (403). */
export const NOT_RESPONDER = 'NotResponder';
/** The failure type of a late regulator notification without reasons (400 naming `reasonsForDelay`). */
export const REASONS_REQUIRED = 'ReasonsRequired';
/** The failure type of a regulator notification for a deadline the incident does not have (400). */
export const UNKNOWN_DEADLINE = 'UnknownDeadline';

const refuse = (id: string, status: IncidentStatus, doing: string): never => {
  throw new IncidentConflict(`incident-${status}`, `incident ${id} is ${status}: it cannot be ${doing}`);
};

/** Who did it: the audit actor (`user:<id>`), the API key, the role, and how (API, the page's link or the console). */
export interface IncidentActor {
  actor: string;
  userId: string;
  apiKeyId?: string | null;
  role: string;
  method: 'api' | 'page-link' | 'console';
}

export interface GradeState {
  suggested: CnGrade;
  confirmed?: CnGrade;
  confirmedBy?: string;
}

/** A deadline as the incident tracks it: the rule's facts plus what fired and when it was met. */
export type DeadlineState = Deadline & {
  /** Marks (reminder-50 …, overdue) already acted on; a superseded reminder is recorded as `<mark>:skipped`. */
  fired: string[];
  notifiedAt?: number;
  late?: boolean;
};

/**
 * The deadlines after a change of facts (a confirmed grade, the resolution): what fired and what was met carries
 * over by kind; a deadline the new facts no longer owe is dropped unless a notification was already recorded.
 */
export const mergeDeadlines = (previous: DeadlineState[], owed: Deadline[]): DeadlineState[] => {
  const byKind = new Map(previous.map((d) => [d.kind, d]));
  const kept = owed.map((d) => {
    const before = byKind.get(d.kind);
    return {
      ...d,
      fired: before?.fired ?? [],
      ...(before?.notifiedAt === undefined ? {} : { notifiedAt: before.notifiedAt, late: before.late }),
    };
  });
  const owedKinds = new Set(owed.map((d) => d.kind));
  return [...kept, ...previous.filter((d) => !owedKinds.has(d.kind) && d.notifiedAt !== undefined)];
};

export interface EscalationPosition {
  round: number;
  cycle: number;
  level: number;
  pagedAt: number;
}

/** What the workflow holds and its `state` query returns. Times are epoch ms; IDs only. */
export interface IncidentState {
  incidentId: string;
  status: IncidentStatus;
  /** A regulator deadline passed without a notification. */
  late: boolean;
  /** 1, plus one per re-escalation. */
  round: number;
  escalation?: EscalationPosition;
  acknowledgedBy?: string;
  acknowledgedAt?: number;
  /** The last note or status change (what re-escalation measures silence from). */
  lastUpdateAt: number;
  affectedCount: number;
  grade: GradeState;
  deadlines: DeadlineState[];
  resolvedAt?: number;
  postmortemDueAt?: number;
  postmortemFired: string[];
  closedAt?: number;
  /** Timeline events written so far (their sequence numbers key them). */
  events: number;
}

export const acknowledge = (s: IncidentState, by: IncidentActor, at: number): IncidentState => {
  if (s.status === 'closed') refuse(s.incidentId, s.status, 'acknowledged');
  // A second acknowledgement is harmless: the first stands.
  if (!canMove(s.status, 'acknowledged')) return s;
  return { ...s, status: 'acknowledged', acknowledgedBy: by.actor, acknowledgedAt: at, lastUpdateAt: at };
};

export const isAcknowledged = (s: IncidentState) => s.status !== 'triggered' && s.status !== 'unacknowledged';

export const exhaust = (s: IncidentState): IncidentState =>
  canMove(s.status, 'unacknowledged')
    ? { ...s, status: 'unacknowledged' }
    : refuse(s.incidentId, s.status, 'exhausted');

export const reescalate = (s: IncidentState): IncidentState =>
  s.status === 'acknowledged'
    ? { ...s, status: 'triggered', round: s.round + 1, acknowledgedBy: undefined, acknowledgedAt: undefined }
    : refuse(s.incidentId, s.status, 're-escalated');

export const setStatus = (s: IncidentState, to: WorkStatus, at: number): IncidentState => {
  if (s.status === to) throw new IncidentConflict(`incident-${to}`, `incident ${s.incidentId} is already ${to}`);
  return canMove(s.status, to) ? { ...s, status: to, lastUpdateAt: at } : refuse(s.incidentId, s.status, `set ${to}`);
};

export const addNote = (s: IncidentState, at: number): IncidentState =>
  s.status === 'closed' ? refuse(s.incidentId, s.status, 'noted') : { ...s, lastUpdateAt: at };

export const resolve = (s: IncidentState, at: number, postmortemWithinMs: number): IncidentState =>
  canMove(s.status, 'resolved')
    ? { ...s, status: 'resolved', resolvedAt: at, postmortemDueAt: at + postmortemWithinMs, lastUpdateAt: at }
    : refuse(s.incidentId, s.status, 'resolved');

export const close = (s: IncidentState, at: number): IncidentState =>
  canMove(s.status, 'closed')
    ? { ...s, status: 'closed', closedAt: at, lastUpdateAt: at }
    : refuse(s.incidentId, s.status, 'closed by a postmortem');

export const confirmGrade = (s: IncidentState, grade: CnGrade, by: IncidentActor, at: number): IncidentState =>
  s.status === 'closed'
    ? refuse(s.incidentId, s.status, 'graded')
    : { ...s, grade: { ...s.grade, confirmed: grade, confirmedBy: by.actor }, lastUpdateAt: at };

export const effectiveGrade = (g: GradeState): CnGrade => g.confirmed ?? g.suggested;

const Id = z.uuid().transform((id) => id.toLowerCase());

/** Per-incident regulatory options: every figure is overridable (durations as ISO 8601 or words). */
export const RegulatoryOptions = z
  .object({
    cnOperator: z.enum(CN_OPERATOR_TYPES).optional(),
    gradeThresholds: z
      .object({
        'relatively-major': z.number().int().min(1),
        major: z.number().int().min(1),
        'especially-major': z.number().int().min(1),
      })
      .strict()
      .refine((t) => t['relatively-major'] <= t.major && t.major <= t['especially-major'], {
        error: 'thresholds must not decrease with the grade',
      })
      .optional(),
    windows: z.partialRecord(z.enum(DEADLINE_KINDS), Duration).optional(),
  })
  .strict();

export const IncidentRequest = z
  .object({
    title: StorableText(3, 300),
    severity: z.enum(SEVERITIES),
    category: z.enum(INCIDENT_CATEGORIES),
    /** When the organisation became aware (regulator clocks count from here); defaults to now. */
    awareAt: z.iso.datetime({ offset: true }).optional(),
    personalData: z.boolean().default(false),
    jurisdictions: z
      .array(z.enum(CLOCK_JURISDICTIONS))
      .max(CLOCK_JURISDICTIONS.length)
      .default([])
      .refine((j) => new Set(j).size === j.length, { error: 'must not repeat a jurisdiction' }),
    affected: z
      .object({
        subjectIds: z.array(Id).max(1000).default([]),
        /** Every subject of an import. */
        importId: Id.optional(),
        /** People affected outside the registry, or an estimate: the grade suggestion takes the larger count. */
        estimatedCount: z.number().int().min(0).max(10_000_000_000).optional(),
      })
      .strict()
      .default({ subjectIds: [] }),
    escalationPolicyId: Id,
    regulatory: RegulatoryOptions.default({}),
    /** How long after resolution the postmortem is due; default 5 days. */
    postmortemWithin: Duration.default(5 * 86_400_000),
  })
  .strict();
export type IncidentRequest = z.infer<typeof IncidentRequest>;

/** The workflow's input: IDs, codes, counts and milliseconds — the title and every text stay in Postgres. */
export interface IncidentInput {
  incidentId: string;
  /** The incident_texts row holding the title (written by whoever opened it). */
  titleTextId: string;
  severity: Severity;
  category: IncidentCategory;
  awareAt: number;
  personalData: boolean;
  jurisdictions: string[];
  affected: { subjectIds: string[]; importId?: string; estimatedCount?: number };
  policy: FrozenPolicy;
  cnOperator: CnOperatorType;
  gradeThresholds: GradeThresholds;
  windows: Partial<Record<DeadlineKind, number>>;
  postmortemWithinMs: number;
  /** `user:<id>`, or `system:<process>` when another workflow opened it. */
  openedBy: string;
  /** How long an acknowledgement link in a page stays valid. */
  ackLinkTtlMs: number;
}

export const INCIDENT_STATE_QUERY = 'state';

/** An incident another process opens: what failed, about what, how bad. Codes and IDs only. */
export interface SystemIncidentSpec {
  /** `restore-test-failed`, `backup-stale`, … */
  kind: string;
  targetType: string;
  targetId: string;
  severity: Severity;
  category: IncidentCategory;
  /** A short, data-free reason (codes, counts). */
  reason?: string;
}

/** Non-retryable failure types of the incident activities (the notifier's included). */
export const INCIDENT_NON_RETRYABLE = [
  'IncidentNotFound',
  'InvalidInput',
  'NoRecipient',
  'NotificationRejected',
  'IdempotencyKeyReused',
  'CryptoError',
];

export const NoteRequest = z.object({ text: StorableText(1, 20_000) }).strict();
export const StatusRequest = z
  .object({ status: z.enum(WORK_STATUSES), note: StorableText(1, 20_000).optional() })
  .strict();
export const GradeRequest = z.object({ grade: z.enum(CN_GRADES) }).strict();
export const ResolveRequest = z.object({ summary: StorableText(3, 20_000) }).strict();
export const PostmortemRequest = z
  .object({
    impact: StorableText(1, 50_000),
    timeline: StorableText(1, 50_000),
    rootCause: StorableText(1, 50_000),
    actions: StorableText(1, 50_000),
  })
  .strict();
export const RegulatorNotificationRequest = z
  .object({
    deadline: z.enum(DEADLINE_KINDS),
    authority: StorableText(2, 200),
    /** The authority's reference (case or filing number). */
    reference: StorableText(1, 200),
    notifiedAt: z.iso.datetime({ offset: true }).optional(),
    /** Required when the notification is later than the deadline (GDPR Art. 33(1)). */
    reasonsForDelay: StorableText(3, 20_000).optional(),
  })
  .strict();

/**
 * The acknowledgement link token: `<pageId>.<expires, epoch s>.<mac>`, the MAC (HMAC-SHA256, base64url) over
 * the first two parts. The page row names the incident and the paged responder and records the link's use.
 */
export interface AckTokenClaims {
  pageId: string;
  expiresAt: number;
}

export const ackTokenBody = (c: AckTokenClaims) => `${c.pageId.toLowerCase()}.${Math.floor(c.expiresAt / 1000)}`;

const ACK_TOKEN = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

export const splitAckToken = (token: string): { claims: AckTokenClaims; body: string; mac: string } | undefined => {
  const m = ACK_TOKEN.exec(token);
  if (!m) return undefined;
  return { claims: { pageId: m[1]!, expiresAt: Number(m[2]) * 1000 }, body: `${m[1]}.${m[2]}`, mac: m[3]! };
};
