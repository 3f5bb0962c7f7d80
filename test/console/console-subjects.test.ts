import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { placeLegalHold } from '../../activities/legal-holds';
import { insertNewSubjects, newSubject, rawSql } from '../../activities/subject-writer';
import { defaultCatalog } from '../../domain/catalog';
import { grantSensitiveReveal, seedPrincipal } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';
import { request, signIn, type Jar } from './session';

/** The console's Subjects page: search, masked view, reveal with a purpose; the API's own lookup underneath. */
let api: TestApp;
let subjectId: string;
const PHONE = '13800004321';
const ID_NUMBER = '990000199001014321';
const EXTERNAL_REF = `CON-${randomUUID().slice(0, 8)}`;

beforeAll(async () => {
  api = await createTestApp();
  const { db } = api.database;
  const values = new Map<string, string>([
    ['name', '测试用户4321'],
    ['phone', PHONE],
    ['email', 'console.subject.4321@example.com'],
    ['idNumber', ID_NUMBER],
    ['segment', 'retail'],
  ]);
  const subject = newSubject(
    defaultCatalog,
    api.keyring,
    { externalRef: EXTERNAL_REF, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
    values,
  );
  await rawSql(db).begin((tx) => insertNewSubjects(tx, randomUUID(), [subject]));
  subjectId = subject.subject.id;
  await placeLegalHold(db, { subjectIds: [subjectId], reason: 'court order 2026-17' }, { actor: 'test:seed' });
}, 120_000);
afterAll(async () => {
  await api?.close();
});

const auditOf = async (action: string, targetId: string) =>
  api.database.sql<{ actor: string; api_key_id: string | null; details: Record<string, unknown> }[]>`
    select actor, api_key_id, details from audit_log where action = ${action} and target_id = ${targetId} order by seq`;

const post = (jar: Jar, path: string, form: Record<string, string>) => request(api, jar, path, { form });

describe('console: Subjects', () => {
  it('finds a subject by phone through the blind index (POST, audited, term never logged) and shows it masked', async () => {
    const owner = await seedPrincipal(api.database.db, 'owner');
    const s = await signIn(api, owner.key);
    const form = await (await request(api, s.jar, '/console/subjects')).text();
    expect(form).toContain('method="post" action="/console/subjects/search"');
    expect(form).toContain('<option value="phone">');

    const missing = await post(s.jar, '/console/subjects/search', { _csrf: s.csrf, by: 'phone', value: PHONE });
    expect(missing.status).toBe(400);
    expect(await missing.text()).toContain('purpose');

    const before = (await auditOf('subject.searched', 'phone')).length;
    const found = await post(s.jar, '/console/subjects/search', {
      _csrf: s.csrf,
      by: 'phone',
      value: PHONE,
      purpose: 'customer-service',
    });
    expect(found.status).toBe(200);
    const html = await found.text();
    expect(html).toContain(`/console/subjects/${subjectId}`);
    expect(html).toContain(EXTERNAL_REF);
    expect(html).not.toContain(PHONE);
    expect(html).toContain('138****4321');
    const audits = await auditOf('subject.searched', 'phone');
    expect(audits).toHaveLength(before + 1);
    expect(audits.at(-1)).toMatchObject({ actor: `user:${owner.userId}`, api_key_id: owner.keyId });
    expect(JSON.stringify(audits)).not.toContain(PHONE);

    const byRef = await post(s.jar, '/console/subjects/search', {
      _csrf: s.csrf,
      by: 'externalRef',
      value: EXTERNAL_REF,
      purpose: '',
    });
    expect(await byRef.text()).toContain(`/console/subjects/${subjectId}`);

    // Without the CSRF token: refused, nothing searched.
    const forged = await post(s.jar, '/console/subjects/search', {
      by: 'phone',
      value: PHONE,
      purpose: 'customer-service',
    });
    expect(forged.status).toBe(403);
    expect(await auditOf('subject.searched', 'phone')).toHaveLength(before + 1);
    expect(api.logLines.join('\n')).not.toContain(PHONE);
  });

  it('shows the subject masked with consents, requests and holds; a reveal needs a purpose and honours grants', async () => {
    const owner = await seedPrincipal(api.database.db, 'owner');
    const s = await signIn(api, owner.key);
    const page = await (await request(api, s.jar, `/console/subjects/${subjectId}`)).text();
    expect(page).not.toContain(PHONE);
    expect(page).not.toContain(ID_NUMBER);
    expect(page).toContain('court order 2026-17');
    expect(page).toContain('Reveal');
    const zh = await (await request(api, s.jar, `/console/subjects/${subjectId}?lang=zh-CN`)).text();
    expect(zh).toContain('各处理目的的同意状态');
    expect(zh).toContain('解密查看');
    await request(api, s.jar, '/console/subjects?lang=en');

    const none = await post(s.jar, `/console/subjects/${subjectId}/reveal`, { _csrf: s.csrf, purpose: '' });
    expect(none.status).toBe(400);
    expect(await none.text()).toContain('purpose');
    expect(await auditOf('subject.revealed', subjectId)).toHaveLength(0);

    const revealed = await post(s.jar, `/console/subjects/${subjectId}/reveal`, {
      _csrf: s.csrf,
      purpose: 'customer-service',
    });
    expect(revealed.status).toBe(200);
    const clear = await revealed.text();
    expect(clear).toContain(PHONE);
    expect(clear).not.toContain(ID_NUMBER);
    expect(await auditOf('subject.revealed', subjectId)).toEqual([
      expect.objectContaining({
        actor: `user:${owner.userId}`,
        api_key_id: owner.keyId,
        details: expect.objectContaining({ purpose: 'customer-service' }) as unknown,
      }),
    ]);

    // A purpose reaching a sensitive field needs a live reveal grant (CUSTODIAN_SENSITIVE_REVEAL_NEEDS_GRANT).
    const ungranted = await post(s.jar, `/console/subjects/${subjectId}/reveal`, {
      _csrf: s.csrf,
      purpose: 'credit-assessment',
    });
    expect(ungranted.status).toBe(403);
    const refusal = await ungranted.text();
    expect(refusal).toContain('access-grant-required');
    expect(refusal).not.toContain(ID_NUMBER);
    expect((await auditOf('subject.reveal-refused', subjectId)).at(-1)?.details).toMatchObject({
      code: 'access-grant-required',
    });
    await grantSensitiveReveal(api.database.db, owner.userId);
    const granted = await post(s.jar, `/console/subjects/${subjectId}/reveal`, {
      _csrf: s.csrf,
      purpose: 'credit-assessment',
    });
    expect(granted.status).toBe(200);
    expect(await granted.text()).toContain(ID_NUMBER);
  });

  it('an auditor reads masked values and finds by reference only; a responder has no Subjects page', async () => {
    const auditor = await seedPrincipal(api.database.db, 'auditor');
    const s = await signIn(api, auditor.key);
    const form = await (await request(api, s.jar, '/console/subjects')).text();
    expect(form).toContain('<option value="externalRef">');
    expect(form).not.toContain('<option value="phone">');
    const page = await (await request(api, s.jar, `/console/subjects/${subjectId}`)).text();
    expect(page).not.toContain(PHONE);
    expect(page).not.toContain('action="/console/subjects/');
    const search = await post(s.jar, '/console/subjects/search', {
      _csrf: s.csrf,
      by: 'phone',
      value: PHONE,
      purpose: 'customer-service',
    });
    expect(search.status).toBe(403);
    const reveal = await post(s.jar, `/console/subjects/${subjectId}/reveal`, {
      _csrf: s.csrf,
      purpose: 'customer-service',
    });
    expect(reveal.status).toBe(403);

    const responder = await seedPrincipal(api.database.db, 'responder');
    const r = await signIn(api, responder.key);
    expect((await request(api, r.jar, '/console/subjects')).status).toBe(403);
    expect(await (await request(api, r.jar, '/console')).text()).not.toContain('/console/subjects');
  });
});
