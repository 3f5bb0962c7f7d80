import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../activities/audit';
import type { AuditRecord } from '../../domain/audit';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

let api: TestApp;
let auditorKey: string;

beforeAll(async () => {
  api = await createTestApp();
  auditorKey = (await seedPrincipal(api.database.db, 'auditor')).key;
  for (let n = 1; n <= 7; n++) {
    await appendAudit(api.database.db, {
      actor: 'user:test',
      action: n % 2 ? 'subject.imported' : 'consent.granted',
      targetType: n % 2 ? 'subject' : 'consent',
      targetId: `t-${n % 3}`,
      details: { n },
      idempotencyKey: `audit-routes:${n}`,
    });
  }
});
afterAll(() => api?.close());

const list = async (query: string) => {
  const res = await api.app.request(`/v1/audit?${query}`, { headers: bearer(auditorKey) });
  expect(res.status).toBe(200);
  return readJson<{ entries: AuditRecord[]; nextAfter: number | null }>(res);
};

describe('GET /v1/audit', () => {
  it('lists entries in chain order, including the seed entries', async () => {
    const { entries, nextAfter } = await list('');
    // Two seed entries (user.created, api-key.issued) plus seven.
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(entries[0]).toMatchObject({ action: 'user.created', prevHash: '0'.repeat(64) });
    expect(nextAfter).toBeNull();
  });

  it('filters by target type, target id and action', async () => {
    expect((await list('targetType=subject')).entries.map((e) => e.details.n)).toEqual([1, 3, 5, 7]);
    expect((await list('targetType=subject&targetId=t-1')).entries.map((e) => e.details.n)).toEqual([1, 7]);
    expect((await list('action=consent.granted')).entries.map((e) => e.details.n)).toEqual([2, 4, 6]);
    expect((await list('action=nothing')).entries).toEqual([]);
  });

  it('pages with a keyset cursor until nextAfter is null', async () => {
    const seen: number[] = [];
    let after: number | null = 0;
    let pages = 0;
    while (after !== null) {
      const page = await list(`targetType=subject&limit=2&after=${after}`);
      seen.push(...page.entries.map((e) => e.details.n as number));
      after = page.nextAfter;
      pages += 1;
    }
    expect(seen).toEqual([1, 3, 5, 7]);
    // A full last page cannot know it was the last: one more, empty request ends the walk.
    expect(pages).toBe(3);
  });

  it.each([
    ['limit=0', 'limit'],
    ['limit=501', 'limit'],
    ['after=-1', 'after'],
    ['after=abc', 'after'],
    ['targetTyp=subject', 'targetTyp'],
  ])('refuses %s naming %s', async (query, field) => {
    const res = await api.app.request(`/v1/audit?${query}`, { headers: bearer(auditorKey) });
    expect(res.status).toBe(400);
    expect((await readJson<Problem>(res)).fields?.map((f) => f.path)).toEqual([field]);
  });
});

describe('GET /v1/audit/verify', () => {
  it('verifies the chain', async () => {
    const res = await api.app.request('/v1/audit/verify', { headers: bearer(auditorKey) });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({
      valid: true,
      entries: 9,
      headHash: expect.stringMatching(/^[0-9a-f]{64}$/),
    });
  });
});
