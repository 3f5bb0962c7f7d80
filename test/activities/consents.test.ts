import { MockActivityEnvironment } from '@temporalio/testing';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentActivities } from '../../activities/consents';
import { verifyReceipt } from '../../activities/consent-receipts';
import { auditLog, consentEvents, consents, purposeRestrictions } from '../../db/schema';
import { insertNotice, insertSubject } from '../helpers/notifications';
import { createTestServices, type TestServices } from '../helpers/services';

let s: TestServices;
let acts: ReturnType<typeof consentActivities>;
const env = new MockActivityEnvironment();
const by = { actor: 'user:test', method: 'on-behalf' as const };

beforeAll(async () => {
  s = await createTestServices();
  acts = consentActivities({ ...s, db: s.database.db });
});
afterAll(() => s?.close());

const open = async () => {
  const subjectId = await insertSubject(s.database.db, s.keyring, { locale: 'en', email: 'a@example.com' });
  const noticeId = await insertNotice(s.database.db);
  const consentId = crypto.randomUUID();
  const now = Date.now();
  const input = {
    consentId,
    subjectId,
    noticeId,
    purpose: 'marketing',
    channel: 'email' as const,
    requestedBy: 'user:test',
    round: 1,
    requestedAt: now,
    respondBy: now + 60_000,
  };
  await env.run(acts.recordConsentRequest, input);
  await env.run(acts.recordConsentRequest, input);
  return { ...input, now };
};
const count = async (consentId: string) => ({
  events: (await s.database.db.select().from(consentEvents).where(eq(consentEvents.consentId, consentId))).length,
  audit: (await s.database.db.select().from(auditLog).where(eq(auditLog.targetId, consentId))).length,
});

describe('consent activities', () => {
  it('are idempotent: a retried decision returns the stored receipt and writes nothing twice', async () => {
    const c = await open();
    expect(await count(c.consentId)).toEqual({ events: 1, audit: 1 });
    const decision = {
      consentId: c.consentId,
      round: 1,
      decision: 'grant' as const,
      decidedAt: c.now + 1,
      validUntil: c.now + 10_000,
      by,
    };
    const first = await env.run(acts.recordConsentDecision, decision);
    const again = await env.run(acts.recordConsentDecision, decision);
    expect(again).toEqual(first);
    expect(verifyReceipt(first, s.keyring.signing.publicKey).valid).toBe(true);
    expect(await count(c.consentId)).toEqual({ events: 2, audit: 2 });
    await expect(env.run(acts.recordConsentDecision, { ...decision, decision: 'deny' as const })).rejects.toMatchObject(
      {
        type: 'consent-granted',
      },
    );

    const withdrawal = { consentId: c.consentId, round: 1, withdrawnAt: c.now + 2, by };
    await env.run(acts.recordConsentWithdrawal, withdrawal);
    await env.run(acts.recordConsentWithdrawal, withdrawal);
    expect(await count(c.consentId)).toEqual({ events: 3, audit: 3 });
    const restricted = await s.database.db
      .select()
      .from(purposeRestrictions)
      .where(eq(purposeRestrictions.subjectId, c.subjectId));
    expect(restricted).toEqual([expect.objectContaining({ purpose: 'marketing', consentId: c.consentId })]);
  });

  it('expire closes only an open round, once', async () => {
    const c = await open();
    await env.run(acts.expireConsent, { consentId: c.consentId, round: 1, at: c.now + 5 });
    await env.run(acts.expireConsent, { consentId: c.consentId, round: 1, at: c.now + 5 });
    const [row] = await s.database.db.select().from(consents).where(eq(consents.id, c.consentId));
    expect(row?.status).toBe('expired');
    expect(await count(c.consentId)).toEqual({ events: 2, audit: 2 });
    await expect(
      env.run(acts.recordConsentDecision, {
        consentId: c.consentId,
        round: 1,
        decision: 'grant' as const,
        decidedAt: c.now + 6,
        by,
      }),
    ).rejects.toMatchObject({ type: 'consent-expired' });
  });
});
