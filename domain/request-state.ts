import { DomainError } from './errors';
import { REQUEST_TYPES, type RequestClock, type RequestType } from './request-clocks';
import { clockMarks } from './regulatory-clocks';

/**
 * The data-subject request's state and pure rules, without zod: the workflow bundle imports this module (and
 * not domain/request.ts with its schemas), so each workflow run evaluates no schema library.
 */

export const REQUEST_STATUSES = ['verifying', 'open', 'paused', 'fulfilled', 'refused', 'expired'] as const;
export type RequestStatus = (typeof REQUEST_STATUSES)[number];
export const CLOSED_STATUSES: readonly RequestStatus[] = ['fulfilled', 'refused', 'expired'];
export const isClosed = (s: RequestStatus) => CLOSED_STATUSES.includes(s);

export const OBJECTION_OUTCOMES = ['corrected', 'upheld', 'unresolved'] as const;
export type ObjectionOutcome = (typeof OBJECTION_OUTCOMES)[number];
export const COMPLAINT_OUTCOMES = ['upheld', 'partly-upheld', 'rejected'] as const;
export const EXPORT_DELIVERIES = ['password', 'link'] as const;
export type ExportDelivery = (typeof EXPORT_DELIVERIES)[number];

export { REQUEST_TYPES, type RequestType };

/** Problem codes (409/422) and the workflow's failure types. */
export class RequestConflict extends DomainError {
  override name = 'RequestConflict';
  constructor(code: `request-${string}`, message: string) {
    super('conflict', code, message);
  }
}
export const REQUEST_CONFLICT_PREFIX = 'request-';
/** A refusal without reasons (PIPL Art. 50): 422. */
export const REASON_REQUIRED = 'request-reason-required';
/** Only owners work a request (403). */
export const NOT_OWNER = 'NotOwner';
/** An update the type does not take (a correction without values …): 422. */
export const REQUEST_UNPROCESSABLE = 'RequestUnprocessable';

export const REQUEST_NON_RETRYABLE = [
  'RequestNotFound',
  'RequestUnprocessable',
  'InvalidInput',
  'NoRecipient',
  'NoticeNotFound',
  'NotificationRejected',
  'IdempotencyKeyReused',
  'CryptoError',
];

/** Who works the request: the audit actor, the API key, the role, and how (the API or the subject's link). */
export interface RequestActor {
  actor: string;
  apiKeyId?: string | null;
  role: string;
  method: 'api' | 'page-link' | 'console';
}

/** The workflow's input: IDs, codes and milliseconds. Texts live encrypted in request_texts. */
export interface RequestInput {
  requestId: string;
  type: RequestType;
  subjectId: string;
  channel: string;
  clock: RequestClock;
  fields: string[];
  purposes: string[];
  category?: string;
  detailsTextId?: string;
  /** Verified at intake: the method and the request text holding the reference. */
  verification?: { method: string; referenceTextId: string; by: string };
  filedBy: string;
  /** How long the subject's links (verification, export, status) stay valid. */
  linkTtlMs: number;
  /** The windows an erasure's destruction gets (the deployment's configuration). */
  destruction: { approvalWindowMs: number; graceMs: number };
}

/** What the fulfilment of each type takes (IDs of encrypted texts, codes). */
export interface FulfilArgs {
  delivery?: ExportDelivery;
  valuesTextId?: string;
  outcome?: string;
  statementTextId?: string;
  replyTextId?: string;
}

export interface FulfilResult {
  status: RequestStatus;
  at: number;
  outcome: string;
  exportId?: string;
  sha256?: string;
  destructionId?: string;
  restrictedPurposes?: string[];
}

/** What the workflow holds and its `state` query returns. Times in epoch ms. */
export interface RequestState {
  requestId: string;
  type: RequestType;
  status: RequestStatus;
  receivedAt: number;
  windowMs: number;
  extensionMs: number;
  pausedMs: number;
  pausedSince?: number;
  /** Marks acted on (reminder-50 …, overdue); a superseded one as `<mark>:skipped`. */
  fired: string[];
  late: boolean;
  verifiedAt?: number;
  assignee?: string;
  outcome?: string;
  closedAt?: number;
  events: number;
}

export const REQUEST_STATE_QUERY = 'state';

const refuse = (s: RequestState, doing: string): never => {
  throw new RequestConflict(`request-${s.status}`, `request ${s.requestId} is ${s.status}: it cannot be ${doing}`);
};

/** The current due time: receipt + window + extension + every pause (a running pause up to `now`). */
export const dueAt = (s: RequestState, now: number): number =>
  s.receivedAt + s.windowMs + s.extensionMs + s.pausedMs + (s.pausedSince === undefined ? 0 : now - s.pausedSince);

/** Time left (negative once overdue); frozen while paused. */
export const timeLeft = (s: RequestState, now: number) => dueAt(s, now) - now;

/** The reminders and overdue mark still to act on, in order, against the clock as it stands (none while paused). */
export const pendingMarks = (s: RequestState) => {
  if (isClosed(s.status) || s.pausedSince !== undefined) return [];
  const start = s.receivedAt + s.pausedMs;
  return clockMarks(start, start + s.windowMs + s.extensionMs).filter(
    (m) => !s.fired.some((f) => f.split(':')[0] === m.mark),
  );
};

export const verify = (s: RequestState, at: number): RequestState =>
  s.status === 'verifying' ? { ...s, status: 'open', verifiedAt: at } : refuse(s, 'verified');

export const assign = (s: RequestState, assignee: string): RequestState =>
  isClosed(s.status) ? refuse(s, 'assigned') : { ...s, assignee };

export const addNote = (s: RequestState): RequestState => (isClosed(s.status) ? refuse(s, 'noted') : s);

/**
 * GDPR Art. 12(3): once, by at most the rule's maximum, told within the first period (receipt + window + pauses).
 * A second extension, or one after the first period, is a conflict (409).
 */
export const extend = (s: RequestState, clock: RequestClock, byMs: number, now: number): RequestState => {
  if (isClosed(s.status)) refuse(s, 'extended');
  if (clock.maxExtensionMs === 0)
    throw new RequestConflict(
      'request-not-extendable',
      `a ${clock.kind} deadline (${clock.source}) cannot be extended`,
    );
  if (s.extensionMs > 0)
    throw new RequestConflict('request-already-extended', `request ${s.requestId} was extended once already`);
  const firstPeriodEnds = dueAt(s, now);
  if (now > firstPeriodEnds)
    throw new RequestConflict(
      'request-extension-too-late',
      `the first period ended ${new Date(firstPeriodEnds).toISOString()}: the subject must be told of an extension within it`,
    );
  if (byMs > clock.maxExtensionMs)
    throw new RequestConflict(
      'request-extension-too-long',
      `an extension may add at most ${clock.maxExtensionMs} ms (${clock.source})`,
    );
  return { ...s, extensionMs: byMs };
};

export const pause = (s: RequestState, at: number): RequestState =>
  s.status === 'open' ? { ...s, status: 'paused', pausedSince: at } : refuse(s, 'paused');

export const resume = (s: RequestState, at: number): RequestState =>
  s.status === 'paused'
    ? { ...s, status: 'open', pausedMs: s.pausedMs + (at - s.pausedSince!), pausedSince: undefined }
    : refuse(s, 'resumed');

/** Fulfil and refuse close a verified request (a paused one too: the answer is what the subject waited for). */
export const close = (
  s: RequestState,
  to: 'fulfilled' | 'refused' | 'expired',
  at: number,
  outcome: string,
): RequestState => {
  const allowed = to === 'expired' ? s.status === 'verifying' : s.status === 'open' || s.status === 'paused';
  if (!allowed) refuse(s, to === 'expired' ? 'expired' : to);
  const resumed = s.status === 'paused' ? resume(s, at) : s;
  return { ...resumed, status: to, outcome, closedAt: at };
};

/** What the fulfil body must carry for the type (422 otherwise), checked by the route before the workflow is asked. */
export const fulfilProblem = (type: RequestType, b: { delivery?: string; outcome?: string; values?: unknown }) => {
  switch (type) {
    case 'access':
    case 'portability':
      return b.delivery ? undefined : { path: 'delivery', message: 'an export is sent by password or link' };
    case 'correction':
      return b.values ? undefined : { path: 'values', message: 'a correction names the new values' };
    case 'objection':
      if (!b.outcome || !(OBJECTION_OUTCOMES as readonly string[]).includes(b.outcome))
        return { path: 'outcome', message: `one of ${OBJECTION_OUTCOMES.join(', ')}` };
      return b.outcome === 'corrected' && !b.values
        ? { path: 'values', message: 'a corrected objection names the new values' }
        : undefined;
    case 'complaint':
      return !b.outcome || !(COMPLAINT_OUTCOMES as readonly string[]).includes(b.outcome)
        ? { path: 'outcome', message: `one of ${COMPLAINT_OUTCOMES.join(', ')}` }
        : undefined;
    default:
      return undefined;
  }
};

/**
 * The subject's link tokens: `<id>.<expires, epoch s>.<mac>`, the MAC (HMAC-SHA256, base64url) over the first two
 * parts under a key of the link's own purpose (form: a subject ID; status and verification: a request ID; export:
 * an export ID).
 */
export interface LinkClaims {
  id: string;
  expiresAt: number;
}
export const linkBody = (c: LinkClaims) => `${c.id.toLowerCase()}.${Math.floor(c.expiresAt / 1000)}`;
const LINK = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;
export const splitLink = (token: string): { claims: LinkClaims; body: string; mac: string } | undefined => {
  const m = LINK.exec(token);
  if (!m) return undefined;
  return { claims: { id: m[1]!, expiresAt: Number(m[2]) * 1000 }, body: `${m[1]}.${m[2]}`, mac: m[3]! };
};
