import { MockActivityEnvironment } from '@temporalio/testing';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { alertActivities, type RaiseAlert } from '../../activities/alerts';
import { listAudit } from '../../activities/audit';
import { ChannelError, type Channel, type OutgoingMessage } from '../../activities/notify-channels';
import { alerts } from '../../db/schema';
import { createTestServices, type TestServices } from '../helpers/services';

let s: TestServices;
const env = new MockActivityEnvironment();
/** env.run with the activity's result type. */
const run = <A extends unknown[], R>(activity: (...args: A) => Promise<R>, ...args: A) =>
  env.run(activity, ...args) as Promise<R>;

beforeAll(async () => {
  s = await createTestServices();
});
afterAll(() => s?.close());

/** A channel that records what it is asked to send, failing the first `failures` sends. */
const recordingChannel = (failures = 0, retryable = true) => {
  const sent: OutgoingMessage[] = [];
  let left = failures;
  const channel: Channel = {
    name: 'webhook',
    async send(m) {
      if (left-- > 0) throw new ChannelError('webhook: HTTP 503', retryable);
      sent.push(m);
    },
  };
  return { channel, sent };
};

const alert = (o: Partial<RaiseAlert> = {}): RaiseAlert => ({
  kind: 'restore-test-failed',
  targetType: 'backup',
  targetId: crypto.randomUUID(),
  reason: 'frame-authentication-failed frame 2',
  details: { restoreTestId: crypto.randomUUID(), frame: 2 },
  ...o,
});

describe('raiseAlert', () => {
  it('pages once per key through the channel, audited raised and sent, without personal data', async () => {
    const { channel, sent } = recordingChannel();
    const { raiseAlert } = alertActivities({ ...s, db: s.database.db, channel });
    const input = alert();
    const first = await run(raiseAlert, input);
    const again = await run(raiseAlert, input);
    expect(first).toMatchObject({ sent: true, channel: 'webhook' });
    expect(again).toEqual({ alertId: first.alertId, sent: false, channel: 'webhook' });
    expect(sent).toHaveLength(1);
    expect(sent[0]).toMatchObject({
      idempotencyKey: `alert:${first.alertId}`,
      template: 'operator-alert',
      recipientRef: 'operator',
      subject: `[custodian] restore-test-failed: backup ${input.targetId}`,
    });
    expect(sent[0]!.text).toContain('frame-authentication-failed frame 2');

    const [row] = await s.database.db.select().from(alerts).where(eq(alerts.id, first.alertId));
    expect(row).toMatchObject({ status: 'sent', attempts: 1, kind: 'restore-test-failed', targetId: input.targetId });
    const audit = await listAudit(s.database.db, { targetType: 'backup', targetId: input.targetId, limit: 10 });
    expect(audit.map((e) => e.action)).toEqual(['alert.raised', 'alert.sent']);
    expect(audit[0]!.details).toMatchObject({ alertId: first.alertId, kind: 'restore-test-failed', frame: 2 });
  });

  it('a failed send stays pending and retries with the same key; a refusal fails it for good', async () => {
    const flaky = recordingChannel(1);
    const acts = alertActivities({ ...s, db: s.database.db, channel: flaky.channel });
    const input = alert();
    await expect(run(acts.raiseAlert, input)).rejects.toMatchObject({ type: 'AlertFailed' });
    const [pending] = await s.database.db.select().from(alerts).where(eq(alerts.targetId, input.targetId));
    expect(pending).toMatchObject({ status: 'pending', attempts: 1, lastError: 'webhook: HTTP 503' });
    expect((await run(acts.raiseAlert, input)).sent).toBe(true);
    expect(flaky.sent).toHaveLength(1);

    const refusing = alertActivities({ ...s, db: s.database.db, channel: recordingChannel(1, false).channel });
    const refused = alert();
    await expect(run(refusing.raiseAlert, refused)).rejects.toMatchObject({ type: 'AlertRejected' });
    const [failed] = await s.database.db.select().from(alerts).where(eq(alerts.targetId, refused.targetId));
    expect(failed).toMatchObject({ status: 'failed' });
    const audit = await listAudit(s.database.db, { targetType: 'backup', targetId: refused.targetId, limit: 10 });
    expect(audit.map((e) => e.action)).toEqual(['alert.raised', 'alert.failed']);
  });

  it('refuses malformed input and an smtp page without CUSTODIAN_ALERT_TO', async () => {
    const { raiseAlert } = alertActivities({ ...s, db: s.database.db, channel: recordingChannel().channel });
    await expect(run(raiseAlert, alert({ kind: 'Not A Kind' }))).rejects.toMatchObject({ type: 'InvalidInput' });
    const smtp: Channel = { name: 'smtp', send: async () => {} };
    const mail = alertActivities({ ...s, db: s.database.db, channel: smtp });
    await expect(run(mail.raiseAlert, alert())).rejects.toMatchObject({ type: 'AlertRejected' });
  });
});
