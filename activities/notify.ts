import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { and, desc, eq, sql, type SQL } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client';
import { notices, notifications, subjectFields, subjects } from '../db/schema';
import { NOTIFICATION_TEMPLATES, notificationLocale, renderNotification } from '../domain/notification-templates';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAudit } from './audit';
import { decryptField } from './crypto/field-cipher';
import { dataKeys } from './keys';
import { ChannelError, createChannel, type Channel } from './notify-channels';
import { withSendLock } from './send-lock';

/** What a workflow passes: IDs, a key and a link; the address and the text are read here, never carried. */
export const SendNotification = z
  .object({
    /** Unique per message (workflow ID + step): the outbox row's key and the receiver's de-duplication key. */
    idempotencyKey: z
      .string()
      .min(1)
      .max(200)
      .regex(/^[\x21-\x7e]+$/, 'printable ASCII without spaces'),
    template: z.enum(NOTIFICATION_TEMPLATES),
    subjectId: z.uuid(),
    /** The notice whose title, body and handler the message carries. */
    noticeId: z.uuid(),
    /** The signed consent link, when the message asks for an answer. */
    link: z
      .url({ protocol: /^https?$/ })
      .max(2000)
      .optional(),
  })
  .strict();
export type SendNotification = z.infer<typeof SendNotification>;

export interface NotificationSent {
  id: string;
  /** False when the outbox already held the message as sent: nothing was sent this time. */
  sent: boolean;
  channel: string;
  locale: string;
}

/** Non-retryable failure types, for the callers' activity options. */
export const NOTIFY_NON_RETRYABLE = [
  'InvalidInput',
  'NoRecipient',
  'NoticeNotFound',
  'NotificationRejected',
  'IdempotencyKeyReused',
];

/** The field that holds a subject's mail address (the import's `contact.email`). */
const ADDRESS_FIELD = 'email';

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

export interface NotifyDeps {
  db: Db;
  keyring: Keyring;
  config: Config;
  logger: Logger;
  clock: () => Date;
  /** Replaces the configured channel (tests). */
  channel?: Channel;
}

/**
 * The notifier over the outbox (`notifications`). A row per idempotency key is written before anything
 * is sent and marked sent after; a retry of a sent message returns without sending. A crash between
 * the send and the mark re-sends on retry: exactly-once delivery is impossible, so the key travels with
 * the message (`Idempotency-Key` on webhooks, a Message-ID derived from it on mail) for the receiver to
 * de-duplicate. The row never holds the address or the text: a recipient reference and a body hash.
 */
export const notifyActivities = (d: NotifyDeps) => {
  const channel = d.channel ?? createChannel(d.config, d.logger);
  const keys = dataKeys(d);

  const recordFailure = async (id: string, message: string, status: 'pending' | 'failed') => {
    await d.db
      .update(notifications)
      .set({ attempts: sql`${notifications.attempts} + 1`, lastError: message.slice(0, 200), status })
      .where(eq(notifications.id, id));
  };

  /** The subject's address in clear, or undefined when it has none or cannot be read any more (destroyed). */
  const readAddress = async (subjectId: string): Promise<string | undefined> => {
    const [row] = await d.db
      .select()
      .from(subjectFields)
      .where(and(eq(subjectFields.subjectId, subjectId), eq(subjectFields.field, ADDRESS_FIELD)));
    if (!row) return undefined;
    if (row.plainValue !== null) return row.plainValue;
    const key = await keys.loadDataKey(subjectId);
    if (!key || !row.ciphertext || row.keyVersion !== key.keyVersion) return undefined;
    return decryptField(key.dek, { subjectId, field: row.field, keyVersion: row.keyVersion }, row.ciphertext);
  };

  return {
    async sendNotification(input: SendNotification): Promise<NotificationSent> {
      const parsed = SendNotification.safeParse(input);
      if (!parsed.success)
        throw ApplicationFailure.nonRetryable(
          `invalid notification request: ${parsed.error.issues[0]!.message}`,
          'InvalidInput',
        );
      const m = parsed.data;
      const execution = Context.current().info.workflowExecution;

      const [subject] = await d.db
        .select({ locale: subjects.locale, status: subjects.status })
        .from(subjects)
        .where(eq(subjects.id, m.subjectId));
      const locale = notificationLocale(subject?.locale);

      await d.db
        .insert(notifications)
        .values({
          idempotencyKey: m.idempotencyKey,
          channel: channel.name,
          template: m.template,
          locale,
          subjectId: m.subjectId,
          recipientRef: `subject:${m.subjectId}`,
          workflowId: execution?.workflowId,
          runId: execution?.runId,
        })
        .onConflictDoNothing({ target: notifications.idempotencyKey });
      const [row] = await d.db.select().from(notifications).where(eq(notifications.idempotencyKey, m.idempotencyKey));
      if (!row) throw new Error(`outbox row ${m.idempotencyKey} vanished right after it was written`);
      if (row.template !== m.template || row.subjectId !== m.subjectId)
        throw ApplicationFailure.nonRetryable(
          `idempotency key ${m.idempotencyKey} already names another message`,
          'IdempotencyKeyReused',
        );
      if (row.status === 'sent') return { id: row.id, sent: false, channel: row.channel, locale: row.locale };
      return withSendLock(d.db, m.idempotencyKey, async () => {
        // Another attempt may have sent it while this one waited for the lock.
        const [current] = await d.db
          .select({ status: notifications.status })
          .from(notifications)
          .where(eq(notifications.id, row.id));
        if (current?.status === 'sent') return { id: row.id, sent: false, channel: row.channel, locale: row.locale };

        const audit = (outcome: 'sent' | 'failed', details: Record<string, unknown>) =>
          appendAudit(d.db, {
            actor: 'system',
            action: `notification.${outcome}`,
            targetType: 'subject',
            targetId: m.subjectId,
            workflowId: execution?.workflowId,
            runId: execution?.runId,
            details: {
              notificationId: row.id,
              template: m.template,
              channel: channel.name,
              noticeId: m.noticeId,
              ...details,
            },
            idempotencyKey: `notification:${row.id}:${outcome}`,
          });
        const refuse = async (type: string, message: string): Promise<never> => {
          await recordFailure(row.id, `${type}: ${message}`, 'failed');
          await audit('failed', { code: type });
          throw ApplicationFailure.nonRetryable(`notification ${row.id}: ${message}`, type);
        };
        if (!subject || subject.status === 'destroyed') return refuse('NoRecipient', 'the subject is gone');
        const [notice] = await d.db.select().from(notices).where(eq(notices.id, m.noticeId));
        if (!notice) return refuse('NoticeNotFound', `notice ${m.noticeId} was not found`);
        const text = notice.texts[locale] ?? notice.texts.en ?? Object.values(notice.texts)[0];
        if (!text) return refuse('NoticeNotFound', `notice ${m.noticeId} has no text`);
        const to = await readAddress(m.subjectId);
        if (!to) return refuse('NoRecipient', 'the subject has no readable address');

        const rendered = renderNotification(m.template, locale, {
          title: text.title,
          body: text.body,
          handler: notice.handler,
          previousHandler: notice.previousHandler ?? undefined,
          link: m.link,
        });
        try {
          await channel.send({
            idempotencyKey: m.idempotencyKey,
            template: m.template,
            locale: rendered.locale,
            recipientRef: row.recipientRef,
            to,
            subject: rendered.subject,
            text: rendered.text,
          });
        } catch (err) {
          // Only a channel's own code is recorded: a receiver's text may quote the address.
          const code = err instanceof ChannelError ? err.message : `${channel.name}: unexpected error`;
          if (err instanceof ChannelError && !err.retryable) {
            await recordFailure(row.id, code, 'failed');
            await audit('failed', { code });
            throw ApplicationFailure.nonRetryable(`notification ${row.id}: ${code}`, 'NotificationRejected');
          }
          await recordFailure(row.id, code, 'pending');
          throw ApplicationFailure.retryable(`notification ${row.id}: ${code}`, 'NotificationFailed');
        }
        const bodySha256 = sha256(`${rendered.subject}\n\n${rendered.text}`);
        // Audited before the row is marked: a crash between the two re-sends, and the audit key dedupes.
        await audit('sent', { locale, bodySha256 });
        await d.db
          .update(notifications)
          .set({
            status: 'sent',
            // What was actually used: the channel or the subject's locale may have changed since the row was written.
            channel: channel.name,
            locale,
            attempts: sql`${notifications.attempts} + 1`,
            sentAt: d.clock(),
            lastError: null,
            bodySha256,
          })
          .where(eq(notifications.id, row.id));
        return { id: row.id, sent: true, channel: channel.name, locale };
      });
    },
  };
};

export interface NotificationQuery {
  status?: 'pending' | 'sent' | 'failed';
  template?: string;
  subjectId?: string;
  /** An opaque cursor from the previous page. */
  after?: string;
  limit: number;
}

export type NotificationRecord = Omit<typeof notifications.$inferSelect, 'createdAt' | 'sentAt'> & {
  createdAt: string;
  sentAt: string | null;
};

/** The cursor: the row's creation time in whole microseconds (a JS Date keeps only milliseconds) and its ID. */
const encodeCursor = (micros: string, id: string) => Buffer.from(`${micros}.${id}`, 'utf8').toString('base64url');
export const decodeNotificationCursor = (cursor: string): { micros: string; id: string } | undefined => {
  const m = /^(\d{1,18})\.([0-9a-f-]{36})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  return m ? { micros: m[1]!, id: m[2]! } : undefined;
};

/** The outbox, newest first, keyset-paged on (created_at, id). */
export const listNotifications = async (
  db: Db,
  q: NotificationQuery,
): Promise<{ notifications: NotificationRecord[]; next: string | null }> => {
  const micros = sql<string>`(extract(epoch from ${notifications.createdAt}) * 1000000)::bigint::text`;
  const cursor = q.after === undefined ? undefined : decodeNotificationCursor(q.after);
  const filters: SQL[] = [];
  if (q.status) filters.push(eq(notifications.status, q.status));
  if (q.template) filters.push(eq(notifications.template, q.template));
  if (q.subjectId) filters.push(eq(notifications.subjectId, q.subjectId));
  if (cursor)
    filters.push(
      sql`(${notifications.createdAt}, ${notifications.id}) < (timestamptz 'epoch' + ${cursor.micros}::bigint * interval '1 microsecond', ${cursor.id}::uuid)`,
    );
  const rows = await db
    .select({ row: notifications, micros })
    .from(notifications)
    .where(and(...filters))
    .orderBy(desc(notifications.createdAt), desc(notifications.id))
    .limit(q.limit);
  const last = rows.at(-1);
  return {
    notifications: rows.map(({ row }) => ({
      ...row,
      createdAt: row.createdAt.toISOString(),
      sentAt: row.sentAt?.toISOString() ?? null,
    })),
    next: rows.length === q.limit && last ? encodeCursor(last.micros, last.row.id) : null,
  };
};
