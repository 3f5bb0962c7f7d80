import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../activities/audit';
import { writeAuditCheckpoint } from '../../activities/audit-checkpoints';
import type { AuditRecord } from '../../domain/audit';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';

let api: TestApp;
let auditorKey: string;
const sinkDir = mkdtempSync(join(tmpdir(), 'custodian-audit-routes-'));
const sinkFile = join(sinkDir, 'audit-checkpoints.jsonl');

beforeAll(async () => {
  api = await createTestApp({ config: { CUSTODIAN_AUDIT_CHECKPOINT_FILE: sinkFile } });
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
afterAll(async () => {
  await api?.close();
  rmSync(sinkDir, { recursive: true, force: true });
});

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
  const verify = async () => {
    const res = await api.app.request('/v1/audit/verify', { headers: bearer(auditorKey) });
    expect(res.status).toBe(200);
    return res.json();
  };

  it('verifies the chain, with nothing anchored before the first checkpoint', async () => {
    expect(await verify()).toMatchObject({
      valid: true,
      entries: 9,
      headHash: expect.stringMatching(/^[0-9a-f]{64}$/),
      checkpoints: 0,
      anchoredSeq: null,
      unanchored: 9,
      checkpointProblems: [],
    });
  });

  it('anchors the chain on a signed checkpoint', async () => {
    await writeAuditCheckpoint({ db: api.database.db, keyring: api.keyring, sinkFile });
    expect(await verify()).toMatchObject({ valid: true, entries: 9, checkpoints: 1, anchoredSeq: 9, unanchored: 0 });
  });

  it('names a cut tail from the configured checkpoint file when the database lost its checkpoints too', async () => {
    await api.database.sql.begin(async (tx) => {
      await tx.unsafe('set local session_replication_role = replica');
      await tx.unsafe('delete from audit_log where seq > 6');
      await tx.unsafe('delete from audit_checkpoints');
    });
    expect(await verify()).toMatchObject({
      valid: false,
      entries: 6,
      firstBrokenSeq: 7,
      reason: expect.stringMatching(/^entry 7 is missing/),
      checkpointProblems: ['checkpoint 1 is in the file but missing from the database'],
    });
  });
});
