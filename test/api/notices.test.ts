import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { noticeTextSha256 } from '../../activities/notices';
import { grantServiceRole } from '../../db/roles';
import { canonicalJson } from '../../domain/canonical-json';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

let api: TestApp;
let owner: { userId: string; keyId: string; key: string };
let auditor: { key: string };
let responder: { key: string };

beforeAll(async () => {
  api = await createTestApp();
  owner = await seedPrincipal(api.database.db, 'owner');
  auditor = await seedPrincipal(api.database.db, 'auditor');
  responder = await seedPrincipal(api.database.db, 'responder');
});
afterAll(() => api?.close());

interface Notice {
  id: string;
  purpose: string;
  version: number;
  texts: Record<'zh-CN' | 'en', { title: string; body: string }>;
  handler: { name: string; contact: string; address?: string };
  previousHandler?: { name: string; contact?: string };
  textSha256: string;
  createdBy: string;
  createdAt: string;
}

const noticeBody = (purpose = 'transfer-notice', suffix = '') => ({
  purpose,
  texts: {
    'zh-CN': { title: `个人信息转移告知${suffix}`, body: '您的个人信息已转移至新处理者。' },
    en: { title: `Notice of transfer${suffix}`, body: 'Your personal information has been transferred.' },
  },
  handler: { name: 'New Bureau Ltd', contact: 'dpo@new-bureau.example', address: '1 Example Road, Shanghai' },
  previousHandler: { name: 'Old Bureau Ltd' },
});

const post = (body: unknown, key = owner.key) =>
  api.app.request('/v1/notices', { method: 'POST', headers: bearer(key), body: JSON.stringify(body) });
const get = (path: string, key = owner.key) => api.app.request(path, { headers: bearer(key) });

describe('notices', () => {
  it('stores a notice with its version and hash, and an owner or auditor reads it back', async () => {
    const res = await post(noticeBody('customer-service'));
    expect(res.status).toBe(201);
    const notice = await readJson<Notice>(res);
    expect(notice).toMatchObject({ ...noticeBody('customer-service'), version: 1, createdBy: `user:${owner.userId}` });
    for (const key of [owner.key, auditor.key]) {
      const read = await get(`/v1/notices/${notice.id.toUpperCase()}`, key);
      expect(read.status).toBe(200);
      expect(await read.json()).toEqual(notice);
    }
    expect((await get(`/v1/notices/${notice.id}`, responder.key)).status).toBe(403);
    expect((await post(noticeBody(), responder.key)).status).toBe(403);
    expect((await post(noticeBody(), auditor.key)).status).toBe(403);
    expect((await get('/v1/notices/00000000-0000-4000-8000-000000000000')).status).toBe(404);
  });

  it('hashes the canonical JSON of texts and handlers: stable, recomputable, and insensitive to key order', async () => {
    const a = await readJson<Notice>(await post(noticeBody('analytics')));
    const body = noticeBody('analytics');
    // The same content with keys in another order, sent as a later version.
    const reordered = {
      previousHandler: body.previousHandler,
      handler: { address: body.handler.address, contact: body.handler.contact, name: body.handler.name },
      texts: { en: body.texts.en, 'zh-CN': body.texts['zh-CN'] },
      purpose: body.purpose,
    };
    const b = await readJson<Notice>(await post(reordered));
    expect(b.version).toBe(a.version + 1);
    expect(b.textSha256).toBe(a.textSha256);
    const recomputed = createHash('sha256')
      .update(canonicalJson({ texts: a.texts, handler: a.handler, previousHandler: a.previousHandler ?? null }), 'utf8')
      .digest('hex');
    expect(a.textSha256).toBe(recomputed);
    expect(noticeTextSha256(a)).toBe(recomputed);
    const changed = await readJson<Notice>(await post(noticeBody('analytics', '（修订）')));
    expect(changed.textSha256).not.toBe(a.textSha256);
    const [stored] = await api.database.sql`select text_sha256 from notices where id = ${a.id}`;
    expect(stored?.text_sha256).toBe(recomputed);
  });

  it('numbers versions per purpose; concurrent creates get distinct versions', async () => {
    const created = await Promise.all(
      Array.from({ length: 8 }, (_, i) => post(noticeBody('debt-collection', ` v${i}`))),
    );
    expect(created.map((r) => r.status)).toEqual(Array(8).fill(201));
    const versions = (await Promise.all(created.map((r) => readJson<Notice>(r)))).map((n) => n.version);
    expect([...versions].sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    // Another purpose starts its own count.
    const other = await readJson<Notice>(await post(noticeBody('credit-assessment')));
    expect(other.version).toBe(1);

    const list = await readJson<{ items: Notice[] }>(await get('/v1/notices?purpose=debt-collection', auditor.key));
    expect(list.items.map((n) => n.version)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect(list.items.every((n) => n.purpose === 'debt-collection')).toBe(true);
    const all = await readJson<{ items: Notice[] }>(await get('/v1/notices'));
    expect(new Set(all.items.map((n) => n.purpose))).toEqual(
      new Set(['customer-service', 'analytics', 'debt-collection', 'credit-assessment']),
    );
  });

  it('is immutable: the trigger refuses an UPDATE, a DELETE and a TRUNCATE', async () => {
    const notice = await readJson<Notice>(await post(noticeBody()));
    // The tests connect as a superuser, which has every privilege: the trigger is what refuses here.
    await expect(api.database.sql`update notices set texts = '{}'::jsonb where id = ${notice.id}`).rejects.toThrow(
      /append-only \(UPDATE refused\)/,
    );
    await expect(api.database.sql`delete from notices where id = ${notice.id}`).rejects.toThrow(
      /append-only \(DELETE refused\)/,
    );
    await expect(api.database.sql`truncate notices`).rejects.toThrow(/append-only \(TRUNCATE refused\)/);
    expect(await (await get(`/v1/notices/${notice.id}`)).json()).toEqual(notice);
  });

  it('grants the service role SELECT and INSERT on notices, not UPDATE or DELETE', async () => {
    const role = `notice_test_${randomBytes(4).toString('hex')}`;
    const sql = api.database.sql;
    await sql.unsafe(`create role ${role} nologin`);
    try {
      await grantServiceRole(sql, role);
      const [privileges] = await sql`
        select has_table_privilege(${role}, 'notices', 'SELECT') as select,
               has_table_privilege(${role}, 'notices', 'INSERT') as insert,
               has_table_privilege(${role}, 'notices', 'UPDATE') as update,
               has_table_privilege(${role}, 'notices', 'DELETE') as delete`;
      expect(privileges).toEqual({ select: true, insert: true, update: false, delete: false });
      await expect(
        sql.begin(async (tx) => {
          await tx.unsafe(`set local role ${role}`);
          await tx`update notices set created_by = 'mallory'`;
        }),
      ).rejects.toThrow(/permission denied/);
    } finally {
      await sql.unsafe(`drop owned by ${role}`);
      await sql.unsafe(`drop role ${role}`);
    }
  });

  it('names every failing field of an invalid notice', async () => {
    const problemOf = async (res: Response) => {
      expect(res.status).toBe(400);
      expect(res.headers.get('content-type')).toBe('application/problem+json');
      return readJson<Problem>(res);
    };
    const bad = {
      purpose: 'Not A Purpose',
      texts: { 'zh-CN': { title: '', body: 'x' }, en: { title: 't', body: 'b'.repeat(20_001) } },
      handler: { contact: 'dpo@example.com' },
    };
    const fields = (await problemOf(await post(bad))).fields?.map((f) => f.path).sort();
    expect(fields).toEqual(['handler.name', 'purpose', 'texts.en.body', 'texts.zh-CN.title']);

    const missingLocale = { ...noticeBody(), texts: { en: noticeBody().texts.en } };
    expect((await problemOf(await post(missingLocale))).fields?.map((f) => f.path)).toEqual(['texts.zh-CN']);

    const extra = { ...noticeBody(), texts: { ...noticeBody().texts, fr: { title: 't', body: 'b' } }, version: 3 };
    expect((await problemOf(await post(extra))).fields?.map((f) => f.path).sort()).toEqual(['texts.fr', 'version']);

    const unknownPurpose = await problemOf(await post(noticeBody('astrology')));
    expect(unknownPurpose.fields).toEqual([{ path: 'purpose', message: 'not a purpose of the data catalog' }]);

    expect((await problemOf(await get('/v1/notices?purpose=NO'))).fields?.map((f) => f.path)).toEqual(['purpose']);
    expect((await problemOf(await get('/v1/notices/not-a-uuid'))).fields?.map((f) => f.path)).toEqual(['id']);
  });

  it('audits notice.created with the user and the API key, and no notice text', async () => {
    const notice = await readJson<Notice>(await post(noticeBody('consent-collection')));
    const audit = await api.database.sql`
      select action, actor, api_key_id, target_type, details from audit_log where target_id = ${notice.id}`;
    expect(audit).toEqual([
      {
        action: 'notice.created',
        actor: `user:${owner.userId}`,
        api_key_id: owner.keyId,
        target_type: 'notice',
        details: { noticeId: notice.id, purpose: 'consent-collection', version: 1, textSha256: notice.textSha256 },
      },
    ]);
  });
});
