import { MockActivityEnvironment } from '@temporalio/testing';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consentActivities } from '../../activities/consents';
import { verifyReceipt } from '../../activities/consent-receipts';
import { auditLog, consentEvents, consents, purposeRestrictions } from '../../db/schema';
import { insertNotice, insertSubject } from '../helpers/notifications';
import { createTestServices, type TestServices } from '../helpers/services';

let s: TestServices;
let acts: ReturnType<typeof consentActivities>;
const env = new MockActivityEnvironment();
/** env.run with the activity's result type. */
const run = <A extends unknown[], R>(activity: (...args: A) => Promise<R>, ...args: A) =>
  env.run(activity, ...args) as Promise<R>;
const by = { actor: 'user:test', method: 'on-behalf' as const };

beforeAll(async () => {
  s = await createTestServices();
  acts = consentActivities({ ...s, db: s.database.db });
});
afterAll(() => s?.close());

const open = async (purpose = 'marketing') => {
  const subjectId = await insertSubject(s.database.db, s.keyring, { locale: 'en', email: 'a@example.com' });
  const noticeId = await insertNotice(s.database.db, { purpose });
  const consentId = crypto.randomUUID();
  const now = Date.now();
  const input = {
    consentId,
    subjectId,
    noticeId,
    purpose,
    channel: 'email' as const,
    requestedBy: 'user:test',
    round: 1,
    requestedAt: now,
    respondBy: now + 60_000,
  };
  const first = await run(acts.recordConsentRequest, input);
  expect(await run(acts.recordConsentRequest, input)).toEqual(first);
  return { ...input, now, sensitive: first.sensitive };
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

  it('record the separate sensitive answer as its own event, in the receipt, once; a withdrawal clears it', async () => {
    expect((await open()).sensitive).toBe(false);
    const c = await open('credit-assessment');
    expect(c.sensitive).toBe(true);
    const decision = {
      consentId: c.consentId,
      round: 1,
      decision: 'grant' as const,
      decidedAt: c.now + 1,
      validUntil: c.now + 10_000,
      sensitive: 'granted' as const,
      by,
    };
    const signed = await run(acts.recordConsentDecision, decision);
    expect(await run(acts.recordConsentDecision, decision)).toEqual(signed);
    expect(verifyReceipt(signed, s.keyring.signing.publicKey).valid).toBe(true);
    expect(signed.receipt.events.map((e) => e.type)).toEqual(['requested', 'given', 'sensitive-given']);
    expect(signed.receipt.events[2]?.validUntil).toBe(new Date(c.now + 10_000).toISOString());
    expect(signed.receipt.purposes[0]).toMatchObject({ sensitive: true, sensitiveCategories: expect.any(Array) });
    const events = await s.database.db.select().from(consentEvents).where(eq(consentEvents.consentId, c.consentId));
    expect(events.map((e) => e.type).sort()).toEqual(['granted', 'requested', 'sensitive-given']);
    const actions = (await s.database.db.select().from(auditLog).where(eq(auditLog.targetId, c.consentId))).map(
      (e) => e.action,
    );
    expect(actions.sort()).toEqual(['consent.granted', 'consent.request-recorded', 'consent.sensitive-given']);
    const row = async () => (await s.database.db.select().from(consents).where(eq(consents.id, c.consentId)))[0];
    expect((await row())?.sensitiveDecision).toBe('granted');

    await env.run(acts.recordConsentWithdrawal, { consentId: c.consentId, round: 1, withdrawnAt: c.now + 2, by });
    expect(await row()).toMatchObject({ status: 'withdrawn', sensitiveDecision: null });
    const [withdrawal] = await s.database.db
      .select()
      .from(auditLog)
      .where(and(eq(auditLog.targetId, c.consentId), eq(auditLog.action, 'consent.withdrawn')));
    expect(withdrawal?.details).toMatchObject({ sensitiveWithdrawn: true });
  });

  it('record a refused sensitive answer beside a grant, and no sensitive event where none was asked', async () => {
    const c = await open('credit-assessment');
    const signed = await run(acts.recordConsentDecision, {
      consentId: c.consentId,
      round: 1,
      decision: 'grant' as const,
      decidedAt: c.now + 1,
      validUntil: c.now + 10_000,
      sensitive: 'refused' as const,
      by,
    });
    expect(signed.receipt.events.map((e) => e.type)).toEqual(['requested', 'given', 'sensitive-refused']);
    const [row] = await s.database.db.select().from(consents).where(eq(consents.id, c.consentId));
    expect(row?.sensitiveDecision).toBe('refused');

    const plain = await open();
    const receipt = await run(acts.recordConsentDecision, {
      consentId: plain.consentId,
      round: 1,
      decision: 'deny' as const,
      decidedAt: plain.now + 1,
      by,
    });
    expect(receipt.receipt.events.map((e) => e.type)).toEqual(['requested', 'refused']);
    const [denied] = await s.database.db.select().from(consents).where(eq(consents.id, plain.consentId));
    expect(denied?.sensitiveDecision).toBeNull();
  });
});
