import { createHmac, hkdfSync, randomUUID, timingSafeEqual } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { consentEvents, consents, purposeRestrictions, subjects } from '../db/schema';
import type { Catalog } from '../domain/catalog';
import {
  sensitiveCategories,
  splitToken,
  subjectLanguage,
  tokenBody,
  type ConsentActor,
  type ConsentDecision,
  type ConsentInput,
  type ConsentTokenClaims,
  type SensitiveDecision,
} from '../domain/consent';
import { buildReceipt, type ConsentEventType, type SignedReceipt } from '../domain/consent-receipt';
import { consentWorkflowId } from '../domain/ids';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAudit } from './audit';
import { signReceipt } from './consent-receipts';
import { getNotice } from './notices';
import { notifyActivities, type NotificationSent } from './notify';
import { openWithdrawalDestruction } from './withdrawal-destruction';

/** The link key: HKDF-SHA256 of the blind-index key under its own label, so neither key reveals the other. */
const linkKey = (keyring: Keyring): Buffer =>
  Buffer.from(hkdfSync('sha256', keyring.blindIndexKey, Buffer.alloc(0), 'custodian/consent-link/v1', 32));

const mac = (keyring: Keyring, body: string) => createHmac('sha256', linkKey(keyring)).update(body).digest();

/** A link token scoped to one consent round, expiring with its response window. */
export const consentToken = (keyring: Keyring, claims: ConsentTokenClaims): string => {
  const body = tokenBody(claims);
  return `${body}.${mac(keyring, body).toString('base64url')}`;
};

export type TokenVerdict =
  | { valid: true; claims: ConsentTokenClaims }
  | { valid: false; reason: 'malformed' | 'signature' }
  /** Signed by us but past its window: the claims are authentic (the page still lets a grant be withdrawn). */
  | { valid: false; reason: 'expired'; claims: ConsentTokenClaims };

/** Checks the MAC in constant time, then the expiry. The claims are trusted only when the MAC matched. */
export const verifyConsentToken = (keyring: Keyring, token: string, now: Date): TokenVerdict => {
  const parts = splitToken(token);
  if (!parts) return { valid: false, reason: 'malformed' };
  // The text, not the decoded bytes: base64url's last character carries two unused bits, and a decoder ignores them.
  const presented = Buffer.from(parts.mac, 'utf8');
  const expected = Buffer.from(mac(keyring, parts.body).toString('base64url'), 'utf8');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
    return { valid: false, reason: 'signature' };
  if (now.getTime() >= parts.claims.expiresAt) return { valid: false, reason: 'expired', claims: parts.claims };
  return { valid: true, claims: parts.claims };
};

export interface ConsentDeps {
  db: Db;
  keyring: Keyring;
  catalog: Catalog;
  config: Config;
  logger: Logger;
  clock: () => Date;
}

export type RecordRequestInput = Omit<
  ConsentInput,
  'respondWithinMs' | 'remindEveryMs' | 'maxReminders' | 'validForMs'
> & {
  requestedAt: number;
  respondBy: number;
};

export interface SendConsentMessageInput {
  consentId: string;
  subjectId: string;
  noticeId: string;
  round: number;
  template: 'consent-request' | 'consent-reminder';
  /** `request` or `reminder-<n>`: with the workflow ID and round, the message's idempotency key. */
  step: string;
  /** The end of the response window (epoch ms): the link expires with it. */
  expiresAt: number;
}

export interface RecordDecisionInput {
  consentId: string;
  round: number;
  decision: ConsentDecision;
  decidedAt: number;
  validUntil?: number;
  /** The separate answer for sensitive data, where the purpose touches it (PIPL Art. 29). */
  sensitive?: SensitiveDecision;
  by: ConsentActor;
}

export interface RecordWithdrawalInput {
  consentId: string;
  round: number;
  withdrawnAt: number;
  by: ConsentActor;
}

const notFound = (id: string) => ApplicationFailure.nonRetryable(`consent ${id} was not found`, 'ConsentNotFound');
const conflict = (id: string, status: string, doing: string) =>
  ApplicationFailure.nonRetryable(`consent ${id} is ${status}: it cannot be ${doing}`, `consent-${status}`);

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? null, runId: e?.runId ?? null };
};

type Tx = Parameters<Parameters<ConsentDeps['db']['transaction']>[0]>[0];

interface ConsentEvent {
  consentId: string;
  round: number;
  type: string;
  at: Date;
  /** Who: the audit actor and, through the API, the key used. */
  by: { actor: string; apiKeyId?: string | null };
  action: string;
  details: Record<string, unknown>;
  idempotencyKey: string;
}

/** The consent's event row and its audit entry, in the caller's transaction, under one idempotency key. */
const recordEvent = async (tx: Tx, e: ConsentEvent): Promise<void> => {
  const { workflowId, runId } = execution();
  await tx
    .insert(consentEvents)
    .values({
      consentId: e.consentId,
      round: e.round,
      type: e.type,
      at: e.at,
      actor: e.by.actor,
      idempotencyKey: e.idempotencyKey,
      workflowId,
      runId,
    })
    .onConflictDoNothing();
  await appendAudit(tx, {
    actor: e.by.actor,
    apiKeyId: e.by.apiKeyId ?? null,
    action: e.action,
    targetType: 'consent',
    targetId: e.consentId,
    workflowId,
    runId,
    details: e.details,
    idempotencyKey: e.idempotencyKey,
  });
};

/**
 * The consent process's effects. Each is idempotent (the row's status and round decide whether it is done;
 * events and audit entries are keyed by workflow ID + round + step) and audited in the same transaction.
 */
export const consentActivities = (d: ConsentDeps) => {
  let notifier: ReturnType<typeof notifyActivities> | undefined;
  const notify = () => (notifier ??= notifyActivities(d));
  const key = (consentId: string, round: number, step: string) =>
    `${consentWorkflowId(consentId)}:round-${round}:${step}`;

  return {
    /**
     * Opens a round: inserts the consent (round 1) or reopens it for a renewal (a later round). Says whether the
     * purpose touches sensitive catalog fields, so the workflow asks for that answer separately.
     */
    async recordConsentRequest(input: RecordRequestInput): Promise<{ sensitive: boolean }> {
      const at = new Date(input.requestedAt);
      const respondBy = new Date(input.respondBy);
      const sensitive = sensitiveCategories(d.catalog, input.purpose).length > 0;
      await d.db.transaction(async (tx) => {
        const [row] = await tx.select().from(consents).where(eq(consents.id, input.consentId)).for('update');
        if (row && row.round >= input.round) return;
        if (!row) {
          await tx.insert(consents).values({
            id: input.consentId,
            subjectId: input.subjectId,
            noticeId: input.noticeId,
            purpose: input.purpose,
            channel: input.channel,
            round: input.round,
            requestedBy: input.requestedBy,
            requestedAt: at,
            respondBy,
          });
        } else {
          await tx
            .update(consents)
            .set({
              status: 'requested',
              round: input.round,
              requestedAt: at,
              respondBy,
              decidedAt: null,
              validUntil: null,
              withdrawnAt: null,
              sensitiveDecision: null,
              updatedAt: at,
            })
            .where(eq(consents.id, input.consentId));
        }
        const type = input.round === 1 ? 'requested' : 'renewed';
        const idempotencyKey = key(input.consentId, input.round, type);
        await recordEvent(tx, {
          consentId: input.consentId,
          round: input.round,
          type,
          at,
          by: { actor: input.requestedBy },
          action: input.round === 1 ? 'consent.request-recorded' : 'consent.renewal-requested',
          details: {
            round: input.round,
            subjectId: input.subjectId,
            noticeId: input.noticeId,
            purpose: input.purpose,
            sensitive,
          },
          idempotencyKey,
        });
      });
      return { sensitive };
    },

    /** Sends the request or a reminder with a fresh link; the token is made here and never enters history. */
    async sendConsentMessage(input: SendConsentMessageInput): Promise<NotificationSent> {
      const token = consentToken(d.keyring, {
        consentId: input.consentId,
        round: input.round,
        expiresAt: input.expiresAt,
      });
      return notify().sendNotification({
        idempotencyKey: key(input.consentId, input.round, input.step),
        template: input.template,
        subjectId: input.subjectId,
        noticeId: input.noticeId,
        link: `${d.config.CUSTODIAN_PUBLIC_URL.replace(/\/$/, '')}/consent/${token}`,
      });
    },

    /** Records a grant or a refusal and returns its signed receipt (the stored one on a retry). */
    async recordConsentDecision(input: RecordDecisionInput): Promise<SignedReceipt> {
      const status = input.decision === 'grant' ? 'granted' : 'denied';
      return d.db.transaction(async (tx) => {
        const [row] = await tx.select().from(consents).where(eq(consents.id, input.consentId)).for('update');
        if (!row) throw notFound(input.consentId);
        if (row.round === input.round && row.status === status && row.receipt) return row.receipt as SignedReceipt;
        if (row.round !== input.round || row.status !== 'requested')
          throw conflict(input.consentId, row.status, 'decided');
        const notice = await getNotice(d.db, row.noticeId).catch(() => {
          throw ApplicationFailure.nonRetryable(`notice ${row.noticeId} was not found`, 'NoticeNotFound');
        });
        const [subject] = await tx
          .select({ jurisdiction: subjects.jurisdiction, locale: subjects.locale })
          .from(subjects)
          .where(eq(subjects.id, row.subjectId));
        const decidedAt = new Date(input.decidedAt);
        const validUntil = input.validUntil === undefined ? undefined : new Date(input.validUntil);
        const valid = validUntil ? { validUntil } : {};
        const events: { type: ConsentEventType; at: Date; validUntil?: Date }[] = [
          { type: row.round === 1 ? 'requested' : 'renewed', at: row.requestedAt },
          { type: status === 'granted' ? 'given' : 'refused', at: decidedAt, ...valid },
          ...(input.sensitive === 'granted' ? [{ type: 'sensitive-given' as const, at: decidedAt, ...valid }] : []),
          ...(input.sensitive === 'refused' ? [{ type: 'sensitive-refused' as const, at: decidedAt }] : []),
        ];
        const language = subjectLanguage(subject?.locale);
        const receipt = signReceipt(
          d.keyring,
          buildReceipt(d.catalog, {
            receiptId: randomUUID(),
            consentId: row.id,
            subjectId: row.subjectId,
            jurisdiction: subject?.jurisdiction ?? 'CN',
            issuedAt: d.clock(),
            notice,
            language,
            storageLocation: 'CN',
            collectionMethod: input.by.method,
            withdrawalUri: `${d.config.CUSTODIAN_PUBLIC_URL.replace(/\/$/, '')}/consent`,
            events,
          }),
        );
        await tx
          .update(consents)
          .set({
            status,
            decidedAt,
            validUntil: validUntil ?? null,
            sensitiveDecision: input.sensitive ?? null,
            receipt,
            updatedAt: decidedAt,
          })
          .where(eq(consents.id, row.id));
        // A new grant for the purpose lifts a restriction an earlier withdrawal left.
        if (status === 'granted')
          await tx
            .delete(purposeRestrictions)
            .where(and(eq(purposeRestrictions.subjectId, row.subjectId), eq(purposeRestrictions.purpose, row.purpose)));
        const idempotencyKey = key(row.id, row.round, status);
        await recordEvent(tx, {
          consentId: row.id,
          round: row.round,
          type: status,
          at: decidedAt,
          by: input.by,
          action: `consent.${status}`,
          details: {
            round: row.round,
            subjectId: row.subjectId,
            purpose: row.purpose,
            method: input.by.method,
            receiptId: receipt.receipt.receiptId,
            keyId: receipt.keyId,
            ...(input.sensitive ? { sensitive: input.sensitive } : {}),
          },
          idempotencyKey,
        });
        // The separate answer for sensitive data is its own event (PIPL Art. 29), under its own key.
        if (input.sensitive) {
          const type = input.sensitive === 'granted' ? 'sensitive-given' : 'sensitive-refused';
          await recordEvent(tx, {
            consentId: row.id,
            round: row.round,
            type,
            at: decidedAt,
            by: input.by,
            action: `consent.${type}`,
            details: {
              round: row.round,
              subjectId: row.subjectId,
              purpose: row.purpose,
              method: input.by.method,
              sensitiveCategories: sensitiveCategories(d.catalog, row.purpose),
              receiptId: receipt.receipt.receiptId,
            },
            idempotencyKey: key(row.id, row.round, type),
          });
        }
        return receipt;
      });
    },

    /**
     * Ends a grant: the purpose is restricted for the subject, in the same transaction as the audit entry; then, when
     * the consent was the only legal basis for some of the subject's data, a destruction request is opened for it.
     */
    async recordConsentWithdrawal(input: RecordWithdrawalInput): Promise<void> {
      await d.db.transaction(async (tx) => {
        const [row] = await tx.select().from(consents).where(eq(consents.id, input.consentId)).for('update');
        if (!row) throw notFound(input.consentId);
        if (row.round === input.round && row.status === 'withdrawn') return;
        if (row.round !== input.round || row.status !== 'granted')
          throw conflict(input.consentId, row.status, 'withdrawn');
        const at = new Date(input.withdrawnAt);
        await tx
          .update(consents)
          .set({ status: 'withdrawn', withdrawnAt: at, sensitiveDecision: null, updatedAt: at })
          .where(eq(consents.id, row.id));
        await tx
          .insert(purposeRestrictions)
          .values({ subjectId: row.subjectId, purpose: row.purpose, consentId: row.id, reason: 'consent-withdrawn' })
          .onConflictDoUpdate({
            target: [purposeRestrictions.subjectId, purposeRestrictions.purpose],
            set: { consentId: row.id, reason: 'consent-withdrawn' },
          });
        const idempotencyKey = key(row.id, row.round, 'withdrawn');
        await recordEvent(tx, {
          consentId: row.id,
          round: row.round,
          type: 'withdrawn',
          at: at,
          by: input.by,
          action: 'consent.withdrawn',
          details: {
            round: row.round,
            subjectId: row.subjectId,
            purpose: row.purpose,
            method: input.by.method,
            restricted: true,
            // A withdrawal withdraws the separate sensitive answer too.
            ...(row.sensitiveDecision === 'granted' ? { sensitiveWithdrawn: true } : {}),
          },
          idempotencyKey,
        });
      });
      // After the commit, and again on a retry that found the withdrawal recorded: one request per withdrawal.
      await openWithdrawalDestruction(d, { consentId: input.consentId, round: input.round });
    },

    /** Closes an unanswered round at the end of its window. */
    async expireConsent(input: { consentId: string; round: number; at: number }): Promise<void> {
      await d.db.transaction(async (tx) => {
        const [row] = await tx.select().from(consents).where(eq(consents.id, input.consentId)).for('update');
        if (!row) throw notFound(input.consentId);
        if (row.round === input.round && row.status === 'expired') return;
        if (row.round !== input.round || row.status !== 'requested')
          throw conflict(input.consentId, row.status, 'expired');
        const at = new Date(input.at);
        await tx.update(consents).set({ status: 'expired', updatedAt: at }).where(eq(consents.id, row.id));
        const idempotencyKey = key(row.id, row.round, 'expired');
        await recordEvent(tx, {
          consentId: row.id,
          round: row.round,
          type: 'expired',
          at: at,
          by: { actor: 'system' },
          action: 'consent.expired',
          details: { round: row.round, subjectId: row.subjectId, purpose: row.purpose },
          idempotencyKey,
        });
      });
    },
  };
};
