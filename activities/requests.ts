import { createHmac, hkdfSync, randomUUID } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, desc, eq, inArray, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import {
  fieldObjections,
  notices,
  requestEvents,
  requestExports,
  requestRestrictions,
  requests,
  subjectFields,
  subjects,
  users,
} from '../db/schema';
import { catalogPurposes, legalBasisOf, type Catalog } from '../domain/catalog';
import { requestWorkflowId } from '../domain/ids';
import type { FulfilArgs, FulfilResult, RequestInput, RequestStatus } from '../domain/request';
import type { FieldValue } from '../domain/subject-import';
import {
  SUBJECT_NOTICE_TEXTS,
  renderRequestStaffMessage,
  subjectNoticePurpose,
  type RequestStaffMark,
  type SubjectMessageKind,
} from '../domain/request-messages';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAudit, type DbOrTx } from './audit';
import { decryptField } from './crypto/field-cipher';
import { buildSubjectExport, exportDocument } from './export';
import { sealExport, wrapForLink } from './export-crypto';
import { dataKeys } from './keys';
import { createNotice } from './notices';
import { notifyActivities } from './notify';
import type { Channel } from './notify-channels';
import { requestLinkToken, requestLinkUrl, type RequestLinkPurpose } from './request-links';
import { requestTextStore, textSha256 } from './request-texts';
import { staffMessenger } from './staff-messages';
import { encryptFields, pgArray } from './subject-writer';

export interface RequestDeps {
  db: Db;
  keyring: Keyring;
  catalog: Catalog;
  config: Config;
  logger: Logger;
  clock: () => Date;
  channel?: Channel;
}

type Tx = Parameters<Parameters<Db['transaction']>[0]>[0];

/** What an event changes on the request row (times in epoch ms). */
export interface RequestPatch {
  status?: RequestStatus;
  dueAt?: number;
  clock?: Record<string, unknown>;
  verification?: Record<string, unknown>;
  assignee?: string;
  late?: boolean;
  outcome?: string;
  closedAt?: number;
  destructionId?: string;
}

/** One timeline event with its audit entry and the row change, written once under its step key. */
export interface RequestEvent {
  requestId: string;
  /** With the workflow ID, the idempotency key (`event-3`, `fulfilled`, `clock-reminder-50` …). */
  step: string;
  /** `received`, `verified`, `assigned`, `extended`, … (audited as `request.<type>`). */
  type: string;
  at: number;
  by: { actor: string; apiKeyId?: string | null };
  /** Codes, IDs, counts, hashes: never text. */
  details?: Record<string, unknown>;
  textId?: string;
  patch?: RequestPatch;
}

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? null, runId: e?.runId ?? null };
};

const notFound = (id: string) => ApplicationFailure.nonRetryable(`request ${id} was not found`, 'RequestNotFound');
const unprocessable = (message: string) => ApplicationFailure.nonRetryable(message, 'RequestUnprocessable');

const rowPatch = (p: RequestPatch, at: Date) => ({
  ...(p.status ? { status: p.status } : {}),
  ...(p.dueAt !== undefined ? { dueAt: new Date(p.dueAt) } : {}),
  ...(p.clock ? { clock: p.clock } : {}),
  ...(p.verification ? { verification: p.verification } : {}),
  ...(p.assignee ? { assignee: p.assignee } : {}),
  ...(p.late !== undefined ? { late: p.late } : {}),
  ...(p.outcome ? { outcome: p.outcome } : {}),
  ...(p.closedAt !== undefined ? { closedAt: new Date(p.closedAt) } : {}),
  ...(p.destructionId ? { destructionId: p.destructionId } : {}),
  updatedAt: at,
});

/** The timeline row, the audit entry and the row change in the caller's transaction; false if already written. */
const writeEvent = async (tx: DbOrTx, e: RequestEvent): Promise<boolean> => {
  const { workflowId, runId } = execution();
  const idempotencyKey = `${requestWorkflowId(e.requestId)}:${e.step}`;
  const at = new Date(e.at);
  const [written] = await tx
    .insert(requestEvents)
    .values({
      requestId: e.requestId,
      type: e.type,
      at,
      actor: e.by.actor,
      details: e.details ?? {},
      textId: e.textId ?? null,
      idempotencyKey,
      workflowId,
      runId,
    })
    .onConflictDoNothing()
    .returning({ n: requestEvents.n });
  if (!written) return false;
  if (e.patch) await tx.update(requests).set(rowPatch(e.patch, at)).where(eq(requests.id, e.requestId));
  await appendAudit(tx, {
    actor: e.by.actor,
    apiKeyId: e.by.apiKeyId ?? null,
    action: `request.${e.type}`,
    targetType: 'request',
    targetId: e.requestId,
    workflowId,
    runId,
    details: { ...e.details, ...(e.textId ? { textId: e.textId } : {}) },
    idempotencyKey,
  });
  return true;
};

/** Purposes an erasure turned restriction leaves open: those the law requires (the hold or retention is one). */
const restrictablePurposes = (catalog: Catalog, named: string[]) =>
  named.length > 0
    ? named
    : [...catalogPurposes(catalog)].filter((p) => legalBasisOf(catalog, p) !== 'legal-obligation').sort();

export const requestActivities = (d: RequestDeps) => {
  const texts = requestTextStore(d);
  const keys = dataKeys(d);
  const notify = notifyActivities(d);
  const staff = staffMessenger(d);
  /** Value hashes in the audit are keyed: a plain SHA-256 of a phone number is a dictionary lookup away. */
  const valueHashKey = Buffer.from(
    hkdfSync('sha256', d.keyring.blindIndexKey, Buffer.alloc(0), 'custodian/request-value-hash/v1', 32),
  );
  const valueHash = (field: string, value: string | null) =>
    value === null ? null : createHmac('sha256', valueHashKey).update(`${field}\u0000${value}`).digest('hex');

  const loadRequest = async (id: string) => {
    const [row] = await d.db.select().from(requests).where(eq(requests.id, id));
    if (!row) throw notFound(id);
    return row;
  };

  /** New values of named fields, re-encrypted under the subject's key; old and new keyed hashes per field. */
  const correct = async (tx: Tx, subjectId: string, values: Record<string, FieldValue>) => {
    const key = (await keys.loadDataKey(subjectId)) ?? (await keys.createDataKey(subjectId));
    const names = Object.keys(values);
    const old = await tx
      .select()
      .from(subjectFields)
      .where(and(eq(subjectFields.subjectId, subjectId), inArray(subjectFields.field, names)));
    const oldText = new Map(
      old.map((r) => [
        r.field,
        r.plainValue ??
          (r.ciphertext && r.keyVersion === key.keyVersion
            ? decryptField(key.dek, { subjectId, field: r.field, keyVersion: r.keyVersion }, r.ciphertext)
            : null),
      ]),
    );
    const rows = encryptFields(d.catalog, d.keyring, subjectId, key, new Map(Object.entries(values)));
    for (const row of rows)
      await tx
        .insert(subjectFields)
        .values({ ...row, subjectId })
        .onConflictDoUpdate({
          target: [subjectFields.subjectId, subjectFields.field],
          set: { ...row, updatedAt: d.clock() },
        });
    await tx.update(subjects).set({ updatedAt: d.clock() }).where(eq(subjects.id, subjectId));
    return names.sort().map((field) => ({
      field,
      oldHash: valueHash(field, oldText.get(field) ?? null),
      newHash: valueHash(field, String(values[field])),
    }));
  };

  const restrict = async (tx: Tx, subjectId: string, requestId: string, purposes: string[], reason: string) => {
    if (purposes.length)
      await tx
        .insert(requestRestrictions)
        .values(purposes.map((purpose) => ({ subjectId, purpose, requestId, reason })))
        .onConflictDoNothing();
    await tx.update(subjects).set({ status: 'restricted', updatedAt: d.clock() }).where(eq(subjects.id, subjectId));
  };

  /** The organisation's name and contact: the newest notice's handler (every notice names it). */
  const handler = async () => {
    const [latest] = await d.db
      .select({ handler: notices.handler })
      .from(notices)
      .orderBy(desc(notices.createdAt))
      .limit(1);
    return latest?.handler ?? { name: 'Custodian', contact: d.config.CUSTODIAN_PUBLIC_URL };
  };

  const noticeFor = async (kind: SubjectMessageKind): Promise<string> => {
    const purpose = subjectNoticePurpose(kind);
    const [found] = await d.db
      .select({ id: notices.id })
      .from(notices)
      .where(eq(notices.purpose, purpose))
      .orderBy(desc(notices.version))
      .limit(1);
    if (found) return found.id;
    const created = await createNotice(
      d.db,
      { purpose, texts: SUBJECT_NOTICE_TEXTS[kind], handler: await handler() },
      { actor: 'system:requests' },
    );
    return created.id;
  };

  const link = (purpose: RequestLinkPurpose, id: string, ttlMs: number) =>
    requestLinkUrl(
      d.config.CUSTODIAN_PUBLIC_URL,
      purpose,
      requestLinkToken(d.keyring, purpose, { id, expiresAt: d.clock().getTime() + ttlMs }),
    );

  return {
    /** Writes the request row, its `received` event and, for an objection, the fields' marks — at once, in one transaction. */
    async openRequest(input: RequestInput & { openedAt: number }): Promise<{ opened: boolean }> {
      const { workflowId, runId } = execution();
      const at = new Date(input.openedAt);
      const c = input.clock;
      return d.db.transaction(async (tx) => {
        const [row] = await tx
          .insert(requests)
          .values({
            id: input.requestId,
            type: input.type,
            subjectId: input.subjectId,
            channel: input.channel,
            jurisdiction: c.jurisdiction,
            status: input.verification ? 'open' : 'verifying',
            receivedAt: new Date(c.receivedAt),
            dueAt: new Date(c.receivedAt + c.windowMs),
            clock: { ...c, extensionMs: 0, pausedMs: 0, fired: [] },
            verification: input.verification
              ? {
                  method: input.verification.method,
                  by: input.verification.by,
                  at: at.toISOString(),
                  referenceTextId: input.verification.referenceTextId,
                }
              : null,
            // Arrays as literals: postgres.js cannot serialise a JS array on a transaction's fresh connection.
            fields: sql`${pgArray(input.fields)}::text[]`,
            purposes: sql`${pgArray(input.purposes)}::text[]`,
            category: input.category ?? null,
            filedBy: input.filedBy,
            workflowId,
            runId,
          })
          .onConflictDoNothing()
          .returning({ id: requests.id });
        if (!row) return { opened: false };
        await writeEvent(tx, {
          requestId: input.requestId,
          step: 'received',
          type: 'received',
          at: input.openedAt,
          by: { actor: input.filedBy },
          details: {
            type: input.type,
            subjectId: input.subjectId,
            channel: input.channel,
            clock: c.kind,
            source: c.source,
            dueAt: new Date(c.receivedAt + c.windowMs).toISOString(),
            fields: input.fields,
            purposes: input.purposes,
            ...(input.category ? { category: input.category } : {}),
          },
          ...(input.detailsTextId ? { textId: input.detailsTextId } : {}),
        });
        if (input.verification)
          await writeEvent(tx, {
            requestId: input.requestId,
            step: 'verified',
            type: 'verified',
            at: input.openedAt,
            by: { actor: input.verification.by },
            details: { method: input.verification.method, atIntake: true },
            textId: input.verification.referenceTextId,
          });
        if (input.type === 'objection') {
          await tx
            .insert(fieldObjections)
            .values(
              input.fields.map((field) => ({
                requestId: input.requestId,
                subjectId: input.subjectId,
                field,
                status: 'under-objection' as const,
                markedAt: at,
              })),
            )
            .onConflictDoNothing();
          await appendAudit(tx, {
            actor: input.filedBy,
            action: 'subject.objection-marked',
            targetType: 'subject',
            targetId: input.subjectId,
            workflowId,
            runId,
            details: { requestId: input.requestId, fields: input.fields },
            idempotencyKey: `${requestWorkflowId(input.requestId)}:objection-marked`,
          });
        }
        return { opened: true };
      });
    },

    async recordRequestEvent(e: RequestEvent): Promise<{ written: boolean }> {
      return { written: await d.db.transaction((tx) => writeEvent(tx, e)) };
    },

    /**
     * The type's fulfilment and the `fulfilled` event in one transaction, recognised on retry by the event's key
     * (the stored result is returned). An erasure of a subject without a hold or a retention obligation returns
     * `destruction-required` and closes nothing: the workflow opens the destruction and records it.
     */
    async fulfilRequest(i: {
      requestId: string;
      step: string;
      at: number;
      by: { actor: string; apiKeyId?: string | null };
      args: FulfilArgs;
      linkTtlMs: number;
    }): Promise<FulfilResult> {
      const key = `${requestWorkflowId(i.requestId)}:${i.step}`;
      const [done] = await d.db.select().from(requestEvents).where(eq(requestEvents.idempotencyKey, key));
      if (done) return done.details.result as FulfilResult;
      const r = await loadRequest(i.requestId);
      const [subject] = await d.db.select().from(subjects).where(eq(subjects.id, r.subjectId));
      if (!subject) throw unprocessable(`subject ${r.subjectId} of request ${r.id} is gone`);
      const close = (outcome: string, extra: Partial<FulfilResult> = {}): FulfilResult => ({
        status: 'fulfilled',
        at: i.at,
        outcome,
        ...extra,
      });
      const finish = (tx: Tx, result: FulfilResult, details: Record<string, unknown> = {}, textId?: string) =>
        writeEvent(tx, {
          requestId: r.id,
          step: i.step,
          type: 'fulfilled',
          at: i.at,
          by: i.by,
          details: { ...details, outcome: result.outcome, result },
          ...(textId ? { textId } : {}),
          patch: { status: 'fulfilled', outcome: result.outcome, closedAt: i.at },
        });
      const valuesOf = async (textId: string | undefined): Promise<Record<string, FieldValue>> => {
        const t = textId ? (await texts.read([textId])).get(textId) : undefined;
        if (!t) throw unprocessable(`request ${r.id}: the new values could not be read`);
        return JSON.parse(t.body) as Record<string, FieldValue>;
      };

      switch (r.type) {
        case 'access':
        case 'portability': {
          const delivery = i.args.delivery ?? 'password';
          const exported = await buildSubjectExport(d, r.subjectId, r.id, d.clock());
          if (!exported) throw unprocessable(`subject ${r.subjectId} is gone`);
          const document = exportDocument(exported);
          const exportId = randomUUID();
          const { contentKey, sealed } = sealExport(exportId, document);
          const sha256 = textSha256(document);
          const recipient = delivery === 'link' ? `subject:${r.subjectId}` : `password:${i.by.actor}`;
          const result = close('exported', { exportId, sha256 });
          await d.db.transaction(async (tx) => {
            await tx.insert(requestExports).values({
              id: exportId,
              requestId: r.id,
              subjectId: r.subjectId,
              delivery,
              sha256,
              bytes: Buffer.byteLength(document),
              recipient,
              sealed,
              wrappedKey: wrapForLink(d.keyring, exportId, contentKey),
              linkExpiresAt: delivery === 'link' ? new Date(d.clock().getTime() + i.linkTtlMs) : null,
              idempotencyKey: key,
            });
            await finish(tx, result, { exportId, sha256, delivery, recipient, fields: exported.fields.length });
          });
          return result;
        }
        case 'correction': {
          const values = await valuesOf(i.args.valuesTextId);
          return d.db.transaction(async (tx) => {
            const changes = await correct(tx, r.subjectId, values);
            const result = close('corrected');
            await appendAudit(tx, {
              actor: i.by.actor,
              apiKeyId: i.by.apiKeyId ?? null,
              action: 'subject.corrected',
              targetType: 'subject',
              targetId: r.subjectId,
              ...execution(),
              details: { requestId: r.id, changes },
              idempotencyKey: `${key}:corrected`,
            });
            await finish(tx, result, { fields: changes.map((c) => c.field) }, i.args.valuesTextId);
            return result;
          });
        }
        case 'restriction':
        case 'erasure': {
          const today = d.clock().toISOString().slice(0, 10);
          const reason =
            r.type === 'restriction'
              ? 'subject-request'
              : subject.legalHold
                ? 'legal-hold'
                : subject.retentionUntil && subject.retentionUntil > today
                  ? 'retention-obligation'
                  : undefined;
          if (!reason) return { status: 'open', at: i.at, outcome: 'destruction-required' };
          const purposes = restrictablePurposes(d.catalog, r.type === 'restriction' ? r.purposes : []);
          const result = close(r.type === 'restriction' ? 'restricted' : `restricted:${reason}`, {
            restrictedPurposes: purposes,
          });
          await d.db.transaction(async (tx) => {
            await restrict(tx, r.subjectId, r.id, purposes, reason);
            await appendAudit(tx, {
              actor: i.by.actor,
              apiKeyId: i.by.apiKeyId ?? null,
              action: 'subject.restricted',
              targetType: 'subject',
              targetId: r.subjectId,
              ...execution(),
              details: {
                requestId: r.id,
                reason,
                purposes,
                ...(reason === 'retention-obligation' ? { retentionUntil: subject.retentionUntil } : {}),
              },
              idempotencyKey: `${key}:restricted`,
            });
            await finish(tx, result, { reason, purposes });
          });
          return result;
        }
        case 'objection': {
          const outcome = i.args.outcome as 'corrected' | 'upheld' | 'unresolved';
          const values = outcome === 'corrected' ? await valuesOf(i.args.valuesTextId) : undefined;
          const statementTextId = i.args.statementTextId;
          return d.db.transaction(async (tx) => {
            const changes = values ? await correct(tx, r.subjectId, values) : [];
            await tx
              .update(fieldObjections)
              .set({ status: outcome, resolvedAt: new Date(i.at), statementTextId: statementTextId ?? null })
              .where(eq(fieldObjections.requestId, r.id));
            await appendAudit(tx, {
              actor: i.by.actor,
              apiKeyId: i.by.apiKeyId ?? null,
              action: 'subject.objection-resolved',
              targetType: 'subject',
              targetId: r.subjectId,
              ...execution(),
              details: {
                requestId: r.id,
                outcome,
                fields: r.fields,
                changes,
                statementTextId: statementTextId ?? null,
              },
              idempotencyKey: `${key}:objection-resolved`,
            });
            const result = close(outcome);
            await finish(tx, result, { fields: r.fields }, statementTextId);
            return result;
          });
        }
        case 'complaint': {
          const result = close(i.args.outcome ?? 'answered');
          await d.db.transaction((tx) => finish(tx, result, { category: r.category }, i.args.replyTextId));
          return result;
        }
      }
    },

    /**
     * A message to the subject through the notifier: the kind's notice and a link (status, verification or
     * export). A subject who cannot be reached is recorded, not retried: the request goes on.
     */
    async messageRequestSubject(i: {
      requestId: string;
      step: string;
      kind: SubjectMessageKind;
      linkTtlMs: number;
      exportId?: string;
    }): Promise<{ sent: boolean; code?: string }> {
      const r = await loadRequest(i.requestId);
      const url =
        i.kind === 'verify'
          ? link('verify', r.id, i.linkTtlMs)
          : i.kind === 'export-ready' && i.exportId
            ? link('export', i.exportId, i.linkTtlMs)
            : link('status', r.id, i.linkTtlMs);
      try {
        const sent = await notify.sendNotification({
          idempotencyKey: `${requestWorkflowId(r.id)}:${i.step}`,
          template: 'request-update',
          subjectId: r.subjectId,
          noticeId: await noticeFor(i.kind),
          link: url,
        });
        return { sent: sent.sent };
      } catch (err) {
        const type = err instanceof ApplicationFailure ? err.type : undefined;
        if (type === 'NoRecipient' || type === 'NotificationRejected') return { sent: false, code: type };
        throw err;
      }
    },

    /** A reminder to the assignee (the owners when nobody is assigned), or the overdue escalation to the owners and the assignee. */
    async messageRequestStaff(i: {
      requestId: string;
      step: string;
      mark: RequestStaffMark;
      percent: number;
      dueAt: number;
    }): Promise<{ sent: number; failed: number }> {
      const r = await loadRequest(i.requestId);
      const owners = async () =>
        (await d.db.select({ id: users.id, disabledAt: users.disabledAt }).from(users).where(eq(users.role, 'owner')))
          .filter((u) => !u.disabledAt)
          .map((u) => u.id);
      const assignee = r.assignee?.startsWith('user:') ? r.assignee.slice(5) : undefined;
      const recipients = new Set(
        i.mark === 'overdue'
          ? [...(await owners()), ...(assignee ? [assignee] : [])]
          : assignee
            ? [assignee]
            : await owners(),
      );
      const clock = r.clock as { source?: string };
      let sent = 0;
      let failed = 0;
      for (const userId of recipients) {
        const outcome = await staff({
          idempotencyKey: `${requestWorkflowId(r.id)}:${i.step}:${userId}`,
          template: i.mark === 'overdue' ? 'request-overdue' : 'request-reminder',
          userId,
          about: { type: 'request', id: r.id },
          render: (locale) =>
            renderRequestStaffMessage(locale, {
              requestId: r.id,
              type: r.type,
              mark: i.mark,
              percent: i.percent,
              dueAt: new Date(i.dueAt).toISOString(),
              source: clock.source ?? '',
            }),
        });
        if (outcome.status === 'failed') failed++;
        else sent++;
      }
      return { sent, failed };
    },
  };
};
