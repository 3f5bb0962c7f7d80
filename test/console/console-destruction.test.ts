import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditLog, subjects } from '../../db/schema';
import { bearer, readJson, seedPrincipal } from '../helpers/api';
import { seedSubjects } from '../helpers/backups';
import { startTestApp } from '../helpers/running-app';
import type { TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { request, signIn } from './session';

/** The Destruction pages through app.request: roles, CSRF, the requester's forged POST, actions taking effect. */
let api: TestApp;
let stop: () => Promise<void>;
type Principal = Awaited<ReturnType<typeof seedPrincipal>>;
let owner: Principal;
let approverA: Principal;
let approverB: Principal;
let auditor: Principal;
let responder: Principal;

beforeAll(async () => {
  ({ api, stop } = await startTestApp());
  const { db } = api.database;
  owner = await seedPrincipal(db, 'owner');
  approverA = await seedPrincipal(db, 'approver', 'approver A');
  approverB = await seedPrincipal(db, 'approver', 'approver B');
  auditor = await seedPrincipal(db, 'auditor');
  responder = await seedPrincipal(db, 'responder');
}, 120_000);
afterAll(() => stop?.());

interface Destruction {
  status: string;
  approvals: { actor: string; decision: string; comment: string | null }[];
  cancelReason: string | null;
  certificate: { id: string } | null;
}
const detail = async (id: string) =>
  readJson<Destruction>(await api.app.request(`/v1/destructions/${id}`, { headers: bearer(auditor.key) }));

/** Three subjects, one of them under legal hold; an owner asks for their destruction through the API. */
const requestDestruction = async (o: { grace: string }) => {
  const seeded = await seedSubjects(api.database, api.keyring, 3);
  await api.database.db.update(subjects).set({ legalHold: true }).where(eq(subjects.id, seeded.ids[2]!));
  const res = await api.app.request('/v1/destructions', {
    method: 'POST',
    headers: bearer(owner.key),
    body: JSON.stringify({
      scope: { kind: 'subjects', subjectIds: seeded.ids },
      reason: 'customer file closed, retention over',
      approvalWindow: '10 minutes',
      graceWindow: o.grace,
    }),
  });
  expect(res.status).toBe(202);
  const { id } = await readJson<{ id: string }>(res);
  await waitFor(async () => ((await detail(id)).status === 'awaiting-approval' ? true : undefined), 'recorded');
  return id;
};

describe('console: destruction pages', () => {
  it('an approver approves with a comment in the console; the requester sees no button and a forged POST is 403', async () => {
    const id = await requestDestruction({ grace: '600 seconds' });

    // The requester (owner) sees the scope and the reason, no Approve button, and is refused (403) when forging.
    const o = await signIn(api, owner.key);
    let html = await (await request(api, o.jar, `/console/destructions/${id}`)).text();
    expect(html).toContain('customer file closed, retention over');
    expect(html).toMatch(/id="scope-matched">3</);
    expect(html).toMatch(/id="scope-held">1</);
    expect(html).toMatch(/id="scope-targeted">2</);
    expect(html).not.toContain('>Approve<');
    expect(html).toContain('You requested this destruction');
    const forged = await request(api, o.jar, `/console/destructions/${id}/approvals`, {
      form: { _csrf: o.csrf, decision: 'approve', comment: 'my own request' },
    });
    expect(forged.status).toBe(403);
    expect((await detail(id)).approvals).toEqual([]);

    // A responder may not even read it (the API route's roles).
    const r = await signIn(api, responder.key);
    expect((await request(api, r.jar, `/console/destructions/${id}`)).status).toBe(403);

    // Approver A: the list (and Today) link to it; approving without the CSRF token does nothing.
    const a = await signIn(api, approverA.key);
    const today = await (await request(api, a.jar, '/console')).text();
    expect(today).toContain('Destructions waiting for approval');
    expect(today).toContain(`/console/destructions/${id}`);
    expect(await (await request(api, a.jar, '/console/destructions')).text()).toContain(`/console/destructions/${id}`);
    html = await (await request(api, a.jar, `/console/destructions/${id}`)).text();
    expect(html).toContain('>Approve<');
    expect(html).toContain('>Reject<');
    const noToken = await request(api, a.jar, `/console/destructions/${id}/approvals`, {
      form: { decision: 'approve', comment: 'looks right' },
    });
    expect(noToken.status).toBe(403);
    const missing = await request(api, a.jar, `/console/destructions/${id}/approvals`, {
      form: { _csrf: a.csrf, decision: 'approve', comment: '' },
    });
    expect(missing.status).toBe(400);
    expect(await missing.text()).toContain('comment');
    expect((await detail(id)).approvals).toEqual([]);

    const approved = await request(api, a.jar, `/console/destructions/${id}/approvals`, {
      form: { _csrf: a.csrf, decision: 'approve', comment: 'scope checked against the closure list' },
    });
    expect(approved.status).toBe(303);
    expect(approved.headers.get('location')).toBe(`/console/destructions/${id}?done=approved`);
    const after = await detail(id);
    expect(after.approvals).toEqual([
      expect.objectContaining({
        decision: 'approve',
        actor: `user:${approverA.userId}`,
        comment: 'scope checked against the closure list',
      }),
    ]);
    html = await (await request(api, a.jar, `/console/destructions/${id}?done=approved`)).text();
    expect(html).toContain('Approval recorded.');
    expect(html).toContain('scope checked against the closure list');
    expect(html).not.toContain('>Approve<');

    // The second approval (approver B, in Chinese): the grace window starts and counts down; the owner cancels it.
    const b = await signIn(api, approverB.key);
    html = await (await request(api, b.jar, `/console/destructions/${id}?lang=zh-CN`)).text();
    expect(html).toContain('<html lang="zh-CN">');
    expect(html).toContain('>批准<');
    expect(
      (
        await request(api, b.jar, `/console/destructions/${id}/approvals`, {
          form: { _csrf: b.csrf, decision: 'approve', comment: '同意' },
        })
      ).status,
    ).toBe(303);
    await waitFor(async () => ((await detail(id)).status === 'grace' ? true : undefined), 'grace window');
    html = await (await request(api, o.jar, `/console/destructions/${id}`)).text();
    expect(html).toMatch(/Destruction starts in (9m|10m)/);
    expect(html).toContain('Cancel the destruction');
    const cancelled = await request(api, o.jar, `/console/destructions/${id}/cancel`, {
      form: { _csrf: o.csrf, reason: 'the customer reopened the account' },
    });
    expect(cancelled.status).toBe(303);
    await waitFor(async () => ((await detail(id)).status === 'cancelled' ? true : undefined), 'cancelled');
    expect((await detail(id)).cancelReason).toBe('the customer reopened the account');
    html = await (await request(api, o.jar, `/console/destructions/${id}`)).text();
    expect(html).toContain('the customer reopened the account');
    expect(html).not.toContain('Cancel the destruction');

    // Every change is in the chain with the workflow and run IDs; the texts are not in the audit details.
    const trail = await api.database.db.select().from(auditLog).where(eq(auditLog.targetId, id));
    const given = trail.filter((e) => e.action === 'destruction.approval-given');
    expect(given).toHaveLength(2);
    for (const e of [...given, ...trail.filter((x) => x.action === 'destruction.cancelled')]) {
      expect(e.workflowId).toBe(`destruction-${id}`);
      expect(e.runId).toBeTruthy();
      expect(JSON.stringify(e.details)).not.toContain('closure list');
      expect(JSON.stringify(e.details)).not.toContain('reopened');
    }
  }, 120_000);

  it('a rejection in the console rejects; the certificate is shown with its verification once completed', async () => {
    const rejectedId = await requestDestruction({ grace: '600 seconds' });
    const a = await signIn(api, approverA.key);
    const rejected = await request(api, a.jar, `/console/destructions/${rejectedId}/approvals`, {
      form: { _csrf: a.csrf, decision: 'reject', comment: 'the retention clock is wrong' },
    });
    expect(rejected.headers.get('location')).toBe(`/console/destructions/${rejectedId}?done=rejected`);
    await waitFor(async () => ((await detail(rejectedId)).status === 'rejected' ? true : undefined), 'rejected');

    const id = await requestDestruction({ grace: '1 second' });
    const b = await signIn(api, approverB.key);
    for (const [who, s] of [
      [a, 'first'],
      [b, 'second'],
    ] as const)
      expect(
        (
          await request(api, who.jar, `/console/destructions/${id}/approvals`, {
            form: { _csrf: who.csrf, decision: 'approve', comment: `${s} approval` },
          })
        ).status,
      ).toBe(303);
    await waitFor(async () => ((await detail(id)).certificate ? true : undefined), 'the certificate', 60_000);
    const certificateId = (await detail(id)).certificate!.id;

    // The auditor sees the verdict of the verify route's function; the approver the certificate without it.
    const u = await signIn(api, auditor.key);
    const audited = await (await request(api, u.jar, `/console/destructions/${id}`)).text();
    expect(audited).toContain(certificateId);
    expect(audited).toContain('Valid: signature, digest and audit-chain entry all check out.');
    expect(audited).not.toContain('<form method="post" action="/console/destructions');
    const seen = await (await request(api, b.jar, `/console/destructions/${id}`)).text();
    expect(seen).toContain(certificateId);
    expect(seen).toContain('Verification is shown to owners and auditors');
  }, 120_000);
});
