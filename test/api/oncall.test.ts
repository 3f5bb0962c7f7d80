import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readUserContact } from '../../activities/user-contacts';
import { auditLog, userContacts } from '../../db/schema';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

let api: TestApp;
let admin: string;
let owner: string;
let responder: string;
let responderIds: string[];

beforeAll(async () => {
  api = await createTestApp();
  const db = api.database.db;
  ({ key: admin } = await seedPrincipal(db, 'admin'));
  ({ key: owner } = await seedPrincipal(db, 'owner'));
  const responders = await Promise.all([1, 2, 3].map((n) => seedPrincipal(db, 'responder', `responder ${n}`)));
  responder = responders[0]!.key;
  responderIds = responders.map((r) => r.userId);
});
afterAll(async () => {
  await api?.close();
});

const post = (path: string, key: string, body: unknown, method = 'POST') =>
  api.app.request(path, { method, headers: bearer(key), body: JSON.stringify(body) });
const get = (path: string, key: string) => api.app.request(path, { headers: bearer(key) });
const problem = async (res: Response, status: number) => {
  expect(res.status).toBe(status);
  expect(res.headers.get('content-type')).toBe('application/problem+json');
  return readJson<Problem>(res);
};

const berlinDaily = () => ({
  name: 'primary',
  timeZone: 'Europe/Berlin',
  start: '2025-03-28T09:00',
  handoff: { every: 1, unit: 'days' },
  responders: responderIds,
});

interface Now {
  onCall: { userId: string; source: string; shift?: number; from: string; until: string } | null;
}

describe('on-call schedules', () => {
  it('creates a rotation (admin), answers who is on call across the spring DST change, takes overrides', async () => {
    const created = await post('/v1/oncall-schedules', admin, berlinDaily());
    expect(created.status).toBe(201);
    const { id } = await readJson<{ id: string }>(created);
    const at = async (instant: string) =>
      (
        await readJson<Now>(
          await get(`/v1/oncall-schedules/${id}/current?at=${encodeURIComponent(instant)}`, responder),
        )
      ).onCall;
    // 09:00 CET is 08:00Z before the change on 2025-03-30, 09:00 CEST is 07:00Z after it.
    expect(await at('2025-03-30T06:59:59Z')).toMatchObject({ userId: responderIds[1], shift: 1 });
    expect(await at('2025-03-30T07:00:00Z')).toMatchObject({
      userId: responderIds[2],
      shift: 2,
      from: '2025-03-30T07:00:00.000Z',
      until: '2025-03-31T07:00:00.000Z',
    });
    expect(await at('2025-03-28T07:00:00Z')).toBeNull();

    const override = await post(`/v1/oncall-schedules/${id}/overrides`, responder, {
      userId: responderIds[0],
      from: '2025-03-30T10:00:00Z',
      to: '2025-03-30T12:00:00Z',
    });
    expect(override.status).toBe(201);
    expect(await at('2025-03-30T11:00:00Z')).toMatchObject({ userId: responderIds[0], source: 'override' });
    expect(await at('2025-03-30T12:00:00Z')).toMatchObject({ userId: responderIds[2], source: 'rotation' });

    const [audit] = await api.database.db
      .select()
      .from(auditLog)
      .where(eq(auditLog.action, 'oncall-schedule.override-added'));
    expect(audit).toMatchObject({ targetId: id, details: { userId: responderIds[0] } });
    const listed = await readJson<{ schedules: { id: string }[] }>(await get('/v1/oncall-schedules', responder));
    expect(listed.schedules.map((s) => s.id)).toContain(id);
  });

  it('refuses an unknown zone, an impossible start, a non-responder; only admins create, owners cannot read', async () => {
    const zone = await problem(
      await post('/v1/oncall-schedules', admin, { ...berlinDaily(), timeZone: 'Europe/Atlantis' }),
      400,
    );
    expect(zone.fields?.map((f) => f.path)).toEqual(['timeZone']);
    const start = await problem(
      await post('/v1/oncall-schedules', admin, { ...berlinDaily(), start: '2025-02-29T09:00' }),
      400,
    );
    expect(start.fields?.map((f) => f.path)).toEqual(['start']);
    const ownerUser = (await seedPrincipal(api.database.db, 'owner')).userId;
    const notResponder = await problem(
      await post('/v1/oncall-schedules', admin, { ...berlinDaily(), responders: [responderIds[0], ownerUser] }),
      400,
    );
    expect(notResponder.fields).toEqual([{ path: 'responders.1', message: 'not an active responder' }]);
    await problem(await post('/v1/oncall-schedules', responder, berlinDaily()), 403);
    await problem(await get('/v1/oncall-schedules', owner), 403);
  });
});

describe('escalation policies', () => {
  it('creates a policy with user and schedule targets; refuses unknown targets by field; responders read', async () => {
    const schedule = await readJson<{ id: string }>(await post('/v1/oncall-schedules', admin, berlinDaily()));
    const body = {
      name: 'data breach',
      levels: [
        { targets: [{ type: 'schedule', id: schedule.id }], wait: 'PT5M' },
        { targets: [{ type: 'user', id: responderIds[2] }], wait: '10 minutes' },
      ],
      repeat: 2,
      reescalateAfter: 'PT1H',
    };
    const created = await post('/v1/escalation-policies', admin, body);
    expect(created.status).toBe(201);
    const policy = await readJson<{
      id: string;
      levels: { waitMs: number }[];
      repeat: number;
      reescalateAfterMs: number;
    }>(created);
    expect(policy).toMatchObject({ repeat: 2, reescalateAfterMs: 3_600_000 });
    expect(policy.levels.map((l) => l.waitMs)).toEqual([300_000, 600_000]);
    expect((await get(`/v1/escalation-policies/${policy.id}`, responder)).status).toBe(200);

    const unknown = await problem(
      await post('/v1/escalation-policies', admin, {
        ...body,
        levels: [
          {
            targets: [
              { type: 'schedule', id: responderIds[0] },
              { type: 'user', id: schedule.id },
            ],
            wait: 'PT1M',
          },
        ],
      }),
      400,
    );
    expect(unknown.fields).toEqual([
      { path: 'levels.0.targets.0.id', message: 'no such on-call schedule' },
      { path: 'levels.0.targets.1.id', message: 'not an active responder' },
    ]);
    const tooMany = await problem(await post('/v1/escalation-policies', admin, { ...body, repeat: 10 }), 400);
    expect(tooMany.fields?.map((f) => f.path)).toEqual(['repeat']);
    await problem(await post('/v1/escalation-policies', responder, body), 403);
  });
});

describe('user contacts', () => {
  it('stores the page address encrypted, readable only with the keyring; the audit names no address', async () => {
    const res = await post(
      `/v1/users/${responderIds[0]}/contact`,
      admin,
      { address: 'oncall-1@ops.example', locale: 'en' },
      'PUT',
    );
    expect(res.status).toBe(200);
    const [row] = await api.database.db.select().from(userContacts).where(eq(userContacts.userId, responderIds[0]!));
    expect(row!.ciphertext.toString('latin1')).not.toContain('oncall-1@ops.example');
    expect(await readUserContact(api.database.db, api.keyring, responderIds[0]!)).toEqual({
      address: 'oncall-1@ops.example',
      locale: 'en',
    });
    const audits = await api.database.db.select().from(auditLog).where(eq(auditLog.action, 'user.contact-set'));
    expect(JSON.stringify(audits)).not.toContain('oncall-1@');
    await problem(await post(`/v1/users/${responderIds[0]}/contact`, responder, { address: 'x@y.z' }, 'PUT'), 403);
  });
});
