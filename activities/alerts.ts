import { ApplicationFailure, Context } from '@temporalio/activity';
import { eq, sql } from 'drizzle-orm';
import { z } from 'zod';
import type { Db } from '../db/client';
import { alerts } from '../db/schema';
import type { Config } from '../runtime/config';
import type { Logger } from '../runtime/logger';
import { appendAudit } from './audit';
import { ChannelError, createChannel, type Channel } from './notify-channels';

/**
 * An operator alert (a page): what went wrong, about what, and a reason code. No personal data. Until the
 * incident workflow exists an alert pages the operator through the notifier's channel; the incident issue
 * turns the same call into an incident.
 */
export const RaiseAlert = z
  .object({
    /** What kind of problem: `restore-test-failed`, `backup-stale`, … */
    kind: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/),
    targetType: z.string().regex(/^[a-z][a-z0-9-]{0,62}$/),
    targetId: z.string().min(1).max(200),
    /** A short, data-free reason (codes, IDs, counts). */
    reason: z.string().min(1).max(500),
    /** Codes, counts and IDs that say more (which frame, which table). */
    details: z.record(z.string(), z.unknown()).optional(),
    /** Default: `alert:<kind>:<targetType>:<targetId>:<workflow ID>`, so a retried activity pages once. */
    idempotencyKey: z
      .string()
      .min(1)
      .max(300)
      .regex(/^[\x21-\x7e]+$/)
      .optional(),
  })
  .strict();
export type RaiseAlert = z.infer<typeof RaiseAlert>;

export interface AlertRaised {
  alertId: string;
  /** False when the alert had been sent already under the same key. */
  sent: boolean;
  channel: string;
}

export const ALERT_NON_RETRYABLE = ['InvalidInput', 'AlertRejected'];

export interface AlertDeps {
  db: Db;
  config: Config;
  logger: Logger;
  clock: () => Date;
  /** Replaces the configured channel (tests). */
  channel?: Channel;
}

const workflowExecution = () => {
  try {
    return Context.current().info.workflowExecution;
  } catch {
    return undefined; // called outside an activity (a CLI or a route)
  }
};

/** The message an operator reads. The reason and details are codes and IDs by construction. */
const render = (a: typeof alerts.$inferSelect) => ({
  subject: `[custodian] ${a.kind}: ${a.targetType} ${a.targetId}`,
  text: [
    `Custodian raised an alert.`,
    ``,
    `kind:    ${a.kind}`,
    `target:  ${a.targetType} ${a.targetId}`,
    `reason:  ${a.reason}`,
    ...(Object.keys(a.details).length ? [`details: ${JSON.stringify(a.details)}`] : []),
    ...(a.workflowId ? [`workflow: ${a.workflowId}`] : []),
    `alert:   ${a.id}`,
  ].join('\n'),
});

/**
 * `raiseAlert`: writes the alert once per idempotency key (audited `alert.raised` in the same transaction), then
 * sends it through the notifier's channel and marks it sent (audited `alert.sent`). A retry after the send
 * re-sends with the same idempotency key, which the receiver de-duplicates; a sent alert is not sent again.
 */
export const alertActivities = (d: AlertDeps) => {
  let channel = d.channel;
  const channelFor = () => (channel ??= createChannel(d.config, d.logger));

  return {
    async raiseAlert(input: RaiseAlert): Promise<AlertRaised> {
      const parsed = RaiseAlert.safeParse(input);
      if (!parsed.success)
        throw ApplicationFailure.nonRetryable(
          `invalid alert: ${parsed.error.issues[0]!.path.join('.')}: ${parsed.error.issues[0]!.message}`,
          'InvalidInput',
        );
      const a = parsed.data;
      const execution = workflowExecution();
      const idempotencyKey =
        a.idempotencyKey ?? `alert:${a.kind}:${a.targetType}:${a.targetId}:${execution?.workflowId ?? 'none'}`;
      const send = channelFor();

      const row = await d.db.transaction(async (tx) => {
        const [created] = await tx
          .insert(alerts)
          .values({
            idempotencyKey,
            kind: a.kind,
            targetType: a.targetType,
            targetId: a.targetId,
            reason: a.reason,
            details: a.details ?? {},
            channel: send.name,
            workflowId: execution?.workflowId,
            runId: execution?.runId,
          })
          .onConflictDoNothing({ target: alerts.idempotencyKey })
          .returning();
        if (created) {
          await appendAudit(tx, {
            actor: 'system',
            action: 'alert.raised',
            targetType: a.targetType,
            targetId: a.targetId,
            workflowId: execution?.workflowId,
            runId: execution?.runId,
            details: { alertId: created.id, kind: a.kind, reason: a.reason, ...a.details },
            idempotencyKey: `alert:${created.id}:raised`,
          });
          return created;
        }
        const [existing] = await tx.select().from(alerts).where(eq(alerts.idempotencyKey, idempotencyKey));
        return existing!;
      });
      if (row.kind !== a.kind || row.targetId !== a.targetId)
        throw ApplicationFailure.nonRetryable(
          `alert key ${idempotencyKey} already names another alert`,
          'InvalidInput',
        );
      if (row.status === 'sent') return { alertId: row.id, sent: false, channel: row.channel };

      const audit = (outcome: 'sent' | 'failed', details: Record<string, unknown>) =>
        appendAudit(d.db, {
          actor: 'system',
          action: `alert.${outcome}`,
          targetType: row.targetType,
          targetId: row.targetId,
          workflowId: execution?.workflowId,
          runId: execution?.runId,
          details: { alertId: row.id, kind: row.kind, channel: send.name, ...details },
          idempotencyKey: `alert:${row.id}:${outcome}`,
        });
      const fail = async (code: string, status: 'pending' | 'failed') => {
        await d.db
          .update(alerts)
          .set({ attempts: sql`${alerts.attempts} + 1`, lastError: code.slice(0, 200), status })
          .where(eq(alerts.id, row.id));
        if (status === 'failed') await audit('failed', { code });
      };

      const to = d.config.CUSTODIAN_ALERT_TO;
      if (send.name === 'smtp' && !to) {
        await fail('smtp: no CUSTODIAN_ALERT_TO', 'failed');
        throw ApplicationFailure.nonRetryable(`alert ${row.id}: CUSTODIAN_ALERT_TO is not set`, 'AlertRejected');
      }
      const message = render(row);
      try {
        await send.send({
          idempotencyKey: `alert:${row.id}`,
          template: 'operator-alert',
          locale: 'en',
          recipientRef: 'operator',
          to: to ?? 'operator',
          subject: message.subject,
          text: message.text,
        });
      } catch (err) {
        const code = err instanceof ChannelError ? err.message : `${send.name}: unexpected error`;
        if (err instanceof ChannelError && !err.retryable) {
          await fail(code, 'failed');
          throw ApplicationFailure.nonRetryable(`alert ${row.id}: ${code}`, 'AlertRejected');
        }
        await fail(code, 'pending');
        throw ApplicationFailure.retryable(`alert ${row.id}: ${code}`, 'AlertFailed');
      }
      await audit('sent', {});
      await d.db
        .update(alerts)
        .set({ status: 'sent', attempts: sql`${alerts.attempts} + 1`, lastError: null, sentAt: d.clock() })
        .where(eq(alerts.id, row.id));
      d.logger.warn(
        { alert: { id: row.id, kind: row.kind, targetType: row.targetType, targetId: row.targetId } },
        'alert raised',
      );
      return { alertId: row.id, sent: true, channel: send.name };
    },
  };
};
