import { randomUUID } from 'node:crypto';
import type { Worker } from '@temporalio/worker';
import { and, eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newSubject } from '../../activities/subject-writer';
import { auditLog, consents, purposeRestrictions } from '../../db/schema';
import { Catalog, CatalogOverride, defaultCatalog, mergeCatalog } from '../../domain/catalog';
import { bearer, grantSensitiveReveal, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { insertNewSubject, insertNotice } from '../helpers/notifications';
import { createTestApp, createTestWorker, type TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';

/** The defaults plus a consent-based purpose over a sensitive field, for the separate sensitive consent. */
const catalog = Catalog.parse(
  mergeCatalog(
    defaultCatalog,
    CatalogOverride.parse({
      purposes: { 'credit-offers': { legalBasis: 'consent' } },
      fields: {
        creditScore: { ...defaultCatalog.fields.creditScore, purposes: ['credit-assessment', 'credit-offers'] },
      },
    }),
  ),
);

interface SubjectConsent {
  purpose: string;
  legalBasis: string | null;
  consentId: string | null;
  status: string | null;
  restricted: boolean;
  refusal: string | null;
}
interface SubjectBody {
  id: string;
  fields: Record<string, { value: unknown; masked: boolean }>;
  consents: SubjectConsent[];
  reveal?: { purpose: string; revealed: string[]; withheld: string[] };
}

const EMAIL = 'han.meimei@example.cn';
const SCORE = 712;

let api: TestApp;
let worker: Worker;
let running: Promise<void>;
let owner: string;
let noticeId: string;

beforeAll(async () => {
  api = await createTestApp({ services: { catalog } });
  worker = await createTestWorker(api);
  running = worker.run();
  const seeded = await seedPrincipal(api.database.db, 'owner');
  owner = seeded.key;
  // The consent gate is under test here, not the access grant that sensitive reveals also need.
  await grantSensitiveReveal(api.database.db, seeded.userId);
  noticeId = await insertNotice(api.database.db);
}, 120_000);
afterAll(async () => {
  worker?.shutdown();
  await running;
  await api?.close();
});

/** A subject with an email (marketing: consent; customer-service: contract) and a credit score (sensitive). */
const insertSubject = async (): Promise<string> => {
  const created = newSubject(
    catalog,
    api.keyring,
    { externalRef: `gate-${randomUUID()}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
    new Map<string, string | number>([
      ['email', EMAIL],
      ['creditScore', SCORE],
      ['segment', 'retail'],
    ]),
  );
  return insertNewSubject(api.database.db, created);
};

/** A consents row as the workflow's activities leave it, written directly to reach each state. */
const insertConsent = async (
  subjectId: string,
  purpose: string,
  status: 'requested' | 'granted' | 'denied' | 'expired' | 'withdrawn',
  o: { validUntil?: Date | null; sensitiveDecision?: 'granted' | 'refused' | null } = {},
): Promise<string> => {
  const id = randomUUID();
  const at = new Date();
  await api.database.db.insert(consents).values({
    id,
    subjectId,
    noticeId,
    purpose,
    channel: 'email',
    status,
    requestedBy: 'test',
    requestedAt: at,
    respondBy: new Date(at.getTime() + 86_400_000),
    decidedAt: status === 'requested' ? null : at,
    validUntil:
      o.validUntil === undefined ? (status === 'granted' ? new Date(at.getTime() + 86_400_000) : null) : o.validUntil,
    sensitiveDecision: o.sensitiveDecision ?? null,
  });
  return id;
};

const get = (path: string) => api.app.request(path, { headers: bearer(owner) });
const reveal = (subjectId: string, purpose: string) => get(`/v1/subjects/${subjectId}/reveal?purpose=${purpose}`);
const subjectOf = async (subjectId: string) => readJson<SubjectBody>(await get(`/v1/subjects/${subjectId}`));
const post = (path: string, body?: unknown) =>
  api.app.request(path, {
    method: 'POST',
    headers: bearer(owner),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
const auditOf = (subjectId: string, action: string) =>
  api.database.db
    .select()
    .from(auditLog)
    .where(and(eq(auditLog.targetId, subjectId), eq(auditLog.action, action)));

/** A 403 problem with the code, whose detail names the purpose and carries no personal value. */
const refused = async (res: Response, code: string, purpose: string): Promise<Problem> => {
  expect(res.status).toBe(403);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  const problem = await readJson<Problem>(res);
  expect(problem.code).toBe(code);
  expect(problem.detail).toContain(`purpose ${purpose}`);
  expect(JSON.stringify(problem)).not.toContain(EMAIL);
  expect(JSON.stringify(problem)).not.toContain(String(SCORE));
  return problem;
};

describe('the consent gate on GET /v1/subjects/{id}/reveal', () => {
  it('through the real workflow: granted reveals; withdrawn blocks its purpose and not a contract-based one', async () => {
    const subjectId = await insertSubject();
    const started = await post('/v1/consents', {
      subjectId,
      noticeId,
      channel: 'email',
      respondWithin: 'P1D',
      remindEvery: 'P1D',
      maxReminders: 0,
      validFor: 'P30D',
    });
    expect(started.status).toBe(202);
    const { id: consentId } = await readJson<{ id: string }>(started);
    await waitFor(
      async () => ((await subjectOf(subjectId)).consents.length ? true : undefined),
      'the consent request recorded',
    );
    await refused(await reveal(subjectId, 'marketing'), 'consent-requested', 'marketing');

    expect((await post(`/v1/consents/${consentId}/decisions`, { decision: 'grant' })).status).toBe(200);
    const granted = await reveal(subjectId, 'marketing');
    expect(granted.status).toBe(200);
    const shown = await readJson<SubjectBody>(granted);
    expect(shown.fields.email).toEqual({ classification: 'personal', classified: true, value: EMAIL, masked: false });
    expect(shown.reveal).toEqual({ purpose: 'marketing', revealed: ['email'], withheld: ['creditScore'] });
    expect((await subjectOf(subjectId)).consents).toEqual([
      expect.objectContaining({
        purpose: 'marketing',
        legalBasis: 'consent',
        consentId,
        status: 'granted',
        restricted: false,
        refusal: null,
      }),
    ]);

    const withdrawn = await post(`/v1/consents/${consentId}/withdraw`);
    expect(withdrawn.status).toBe(200);
    const before = (await auditOf(subjectId, 'subject.revealed')).length;
    const problem = await refused(await reveal(subjectId, 'marketing'), 'consent-withdrawn', 'marketing');
    expect(problem.detail).toMatch(/withdrawn/);
    expect((await auditOf(subjectId, 'subject.revealed')).length).toBe(before);
    const [entry] = await auditOf(subjectId, 'subject.reveal-refused').then((es) => es.slice(-1));
    expect(entry?.details).toEqual({
      purpose: 'marketing',
      legalBasis: 'consent',
      code: 'consent-withdrawn',
      consentState: 'restricted',
      consentId,
      fields: ['email'],
    });
    expect(JSON.stringify(entry)).not.toContain(EMAIL);

    // The same subject's email for a contract-based purpose: not gated by the marketing consent.
    const contract = await reveal(subjectId, 'customer-service');
    expect(contract.status).toBe(200);
    expect((await readJson<SubjectBody>(contract)).fields.email).toMatchObject({ value: EMAIL, masked: false });
    expect((await subjectOf(subjectId)).consents).toEqual([
      {
        purpose: 'marketing',
        legalBasis: 'consent',
        consentId,
        status: 'withdrawn',
        validUntil: expect.any(String),
        restricted: true,
        refusal: 'consent-withdrawn',
      },
    ]);
  });

  it('names each consent state of a consent-based purpose, and lets a granted, unexpired one through', async () => {
    const cases: [Parameters<typeof insertConsent>[2] | 'none', string, { validUntil?: Date | null }?][] = [
      ['none', 'consent-not-granted'],
      ['requested', 'consent-requested'],
      ['denied', 'consent-denied'],
      ['expired', 'consent-expired'],
      ['withdrawn', 'consent-withdrawn'],
      ['granted', 'consent-expired', { validUntil: new Date(Date.now() - 1000) }],
    ];
    for (const [status, code, o] of cases) {
      const subjectId = await insertSubject();
      if (status !== 'none') await insertConsent(subjectId, 'marketing', status, o);
      const problem = await refused(await reveal(subjectId, 'marketing'), code, 'marketing');
      expect(problem.title).toBe('Forbidden');
      const [entry] = await auditOf(subjectId, 'subject.reveal-refused');
      expect(entry?.details).toMatchObject({ purpose: 'marketing', code, legalBasis: 'consent' });
      expect(await auditOf(subjectId, 'subject.revealed')).toEqual([]);
    }
    const subjectId = await insertSubject();
    await insertConsent(subjectId, 'marketing', 'granted', { validUntil: null });
    expect((await reveal(subjectId, 'marketing')).status).toBe(200);
  });

  it('does not gate other legal bases by consent state, but a restriction blocks any basis', async () => {
    const subjectId = await insertSubject();
    // A refused consent for a contract-based purpose does not stop its use.
    await insertConsent(subjectId, 'customer-service', 'denied');
    expect((await reveal(subjectId, 'customer-service')).status).toBe(200);
    expect((await reveal(subjectId, 'credit-assessment')).status).toBe(200);

    const withdrawnId = await insertConsent(subjectId, 'customer-service', 'withdrawn');
    await api.database.db
      .insert(purposeRestrictions)
      .values({ subjectId, purpose: 'customer-service', consentId: withdrawnId, reason: 'consent-withdrawn' });
    const problem = await refused(await reveal(subjectId, 'customer-service'), 'consent-withdrawn', 'customer-service');
    expect(problem.detail).toContain('legal basis contract');
    expect((await reveal(subjectId, 'credit-assessment')).status).toBe(200);
    expect((await subjectOf(subjectId)).consents).toEqual([
      expect.objectContaining({
        purpose: 'customer-service',
        legalBasis: 'contract',
        restricted: true,
        refusal: 'consent-withdrawn',
      }),
    ]);
  });

  it('needs the separate sensitive consent to decrypt a sensitive field for a consent-based purpose', async () => {
    const subjectId = await insertSubject();
    for (const sensitiveDecision of [null, 'refused'] as const) {
      await insertConsent(subjectId, 'credit-offers', 'granted', { sensitiveDecision });
      await refused(await reveal(subjectId, 'credit-offers'), 'consent-sensitive-not-granted', 'credit-offers');
    }
    expect((await subjectOf(subjectId)).consents).toEqual([
      expect.objectContaining({
        purpose: 'credit-offers',
        status: 'granted',
        refusal: 'consent-sensitive-not-granted',
      }),
    ]);
    await insertConsent(subjectId, 'credit-offers', 'granted', { sensitiveDecision: 'granted' });
    const res = await reveal(subjectId, 'credit-offers');
    expect(res.status).toBe(200);
    expect((await readJson<SubjectBody>(res)).fields.creditScore).toMatchObject({ value: SCORE, masked: false });
    // Marketing touches no sensitive field: its grant needs no sensitive answer.
    await insertConsent(subjectId, 'marketing', 'granted');
    expect((await reveal(subjectId, 'marketing')).status).toBe(200);
  });

  it('documents the refusals as the reveal route’s 403 in the OpenAPI document', async () => {
    const doc = await readJson<{
      paths: Record<string, { get: { responses: Record<string, { description: string }> } }>;
    }>(await api.app.request('/openapi.json'));
    const forbidden = doc.paths['/v1/subjects/{id}/reveal']!.get.responses['403']!.description;
    for (const code of ['consent-withdrawn', 'consent-not-granted', 'consent-sensitive-not-granted'])
      expect(forbidden).toContain(code);
  });
});
