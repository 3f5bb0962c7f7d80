import { createHash } from 'node:crypto';
import { ApplicationFailure, Context } from '@temporalio/activity';
import { eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { notifications } from '../db/schema';
import { renderIncidentMessage, type IncidentMessageParams, type IncidentTemplate } from '../domain/incident-templates';
import type { NotificationLocale } from '../domain/notification-templates';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAuditWith, type WithEntries } from './audit';
import { ChannelError, createChannel, type Channel } from './notify-channels';
import { withSendLock } from './send-lock';
import { readUserContact } from './user-contacts';

export interface StaffMessageDeps {
  db: Db;
  keyring: Keyring;
  config: Config;
  logger: Logger;
  clock: () => Date;
  channel?: Channel;
}

interface StaffMessageBase {
  /** Unique per message: workflow ID + step + user. */
  idempotencyKey: string;
  userId: string;
  /** What the audit entry names as the message's subject matter (`incident`, its ID). */
  about: { type: string; id: string };
  /**
   * The caller's own record of the outcome (a page row), committed with the outbox row's change and its audit
   * entry. Not called when the outbox already had the message settled: the caller records that itself.
   */
  within?: (tx: Parameters<WithEntries>[0], outcome: StaffMessageOutcome) => Promise<void>;
}

/** An incident template with its parameters, or another process's template rendered by that process per locale. */
export type StaffMessage = StaffMessageBase &
  (
    | { template: IncidentTemplate; params: IncidentMessageParams }
    | { template: string; render: (locale: NotificationLocale) => { subject: string; text: string } }
  );

/** `sent`: delivered now; `already`: the outbox had it as sent; `failed`: refused for good (code says why). */
export type StaffMessageOutcome =
  { status: 'sent' | 'already'; notificationId: string } | { status: 'failed'; notificationId: string; code: string };

type Outbox = typeof notifications.$inferInsert;

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

/**
 * Messages to users (responders, owners) through the notifier's outbox and channel: the same protocol as
 * activities/notify.ts for subjects — a `notifications` row per key before the send (recipient `user:<id>`,
 * no address, a body hash), one sender per key under the same advisory lock, audited `notification.sent` /
 * `notification.failed` against the user. A user without a readable contact is a final `NoRecipient`, returned
 * (not thrown) so one unreachable responder does not hold up the others; a channel outage throws retryably.
 */
export const staffMessenger = (d: StaffMessageDeps) => {
  let channel = d.channel;
  const channelFor = () => (channel ??= createChannel(d.config, d.logger));
  return async (m: StaffMessage): Promise<StaffMessageOutcome> => {
    const send = channelFor();
    const execution = Context.current().info.workflowExecution;
    const contact = await readUserContact(d.db, d.keyring, m.userId);
    const locale = contact?.locale ?? 'en';
    // The lock first: the row is then read once, after any other attempt's send has committed.
    return withSendLock(d.db, m.idempotencyKey, async () => {
      const [created] = await d.db
        .insert(notifications)
        .values({
          idempotencyKey: m.idempotencyKey,
          channel: send.name,
          template: m.template,
          locale,
          recipientRef: `user:${m.userId}`,
          workflowId: execution?.workflowId,
          runId: execution?.runId,
        })
        .onConflictDoNothing({ target: notifications.idempotencyKey })
        .returning();
      const [row] = created
        ? [created]
        : await d.db.select().from(notifications).where(eq(notifications.idempotencyKey, m.idempotencyKey));
      if (!row) throw new Error(`outbox row ${m.idempotencyKey} vanished right after it was written`);
      if (row.template !== m.template || row.recipientRef !== `user:${m.userId}`)
        throw ApplicationFailure.nonRetryable(
          `idempotency key ${m.idempotencyKey} already names another message`,
          'IdempotencyKeyReused',
        );
      if (row.status === 'sent') return { status: 'already' as const, notificationId: row.id };
      if (row.status === 'failed')
        return { status: 'failed' as const, notificationId: row.id, code: row.lastError ?? 'failed' };

      /** The outbox row's change and its audit entry commit together, in the chain's group transaction. */
      const record = (outcome: StaffMessageOutcome, details: Record<string, unknown>, change: Partial<Outbox>) =>
        appendAuditWith(
          d.db,
          [
            {
              actor: 'system',
              action: `notification.${outcome.status}`,
              targetType: 'user',
              targetId: m.userId,
              workflowId: execution?.workflowId,
              runId: execution?.runId,
              details: {
                notificationId: row.id,
                template: m.template,
                channel: send.name,
                [`${m.about.type}Id`]: m.about.id,
                ...details,
              },
              idempotencyKey: `notification:${row.id}:${outcome.status}`,
            },
          ],
          async (tx) => {
            await tx
              .update(notifications)
              .set({ ...change, attempts: sql`${notifications.attempts} + 1` })
              .where(eq(notifications.id, row.id));
            await m.within?.(tx, outcome);
          },
        ).then(() => outcome);
      const failed = (code: string) => ({ lastError: code.slice(0, 200), status: 'failed' as const });
      if (!contact) {
        return record(
          { status: 'failed', notificationId: row.id, code: 'NoRecipient' },
          { code: 'NoRecipient' },
          failed('NoRecipient: the user has no readable contact'),
        );
      }
      const rendered = 'render' in m ? m.render(locale) : renderIncidentMessage(m.template, locale, m.params);
      try {
        await send.send({
          idempotencyKey: m.idempotencyKey,
          template: m.template,
          locale,
          recipientRef: row.recipientRef,
          to: contact.address,
          subject: rendered.subject,
          text: rendered.text,
        });
      } catch (err) {
        const code = err instanceof ChannelError ? err.message : `${send.name}: unexpected error`;
        if (err instanceof ChannelError && !err.retryable) {
          return record(
            { status: 'failed', notificationId: row.id, code: 'NotificationRejected' },
            { code },
            failed(code),
          );
        }
        await d.db
          .update(notifications)
          .set({ attempts: sql`${notifications.attempts} + 1`, lastError: code.slice(0, 200), status: 'pending' })
          .where(eq(notifications.id, row.id));
        throw ApplicationFailure.retryable(`notification ${row.id}: ${code}`, 'NotificationFailed');
      }
      const bodySha256 = sha256(`${rendered.subject}\n\n${rendered.text}`);
      return record(
        { status: 'sent', notificationId: row.id },
        { locale, bodySha256 },
        { status: 'sent', channel: send.name, locale, sentAt: d.clock(), lastError: null, bodySha256 },
      );
    });
  };
};
