import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyRotationActivities } from '../../activities/key-rotation';
import { dataKeys } from '../../activities/keys';
import { kekVersions, subjectKeys } from '../../db/schema';
import { keyRotationWorkflowId } from '../../domain/ids';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { insertSubjects } from '../helpers/campaign-subjects';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

const keyFile = generateKeyFile();
let database: TestDatabase;

beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
});

describe('key rotation activities', () => {
  it('a process that never saw the rotation reads re-wrapped keys; nothing retires while a key is under v1', async () => {
    const db = database.db;
    // The worker's keyring and, separately, an API process's: each parsed from the same key file.
    const workerKeyring = parseKeyring(keyFile, 'worker');
    const apiKeyring = parseKeyring(keyFile, 'api');
    const { ids } = await insertSubjects(db, workerKeyring, 5);
    const rotationId = randomUUID();
    const env = new MockActivityEnvironment({
      workflowExecution: { workflowId: keyRotationWorkflowId(rotationId), runId: randomUUID() },
    });
    const a = keyRotationActivities({ db, keyring: workerKeyring, clock: () => new Date() });

    const begun = await env.run(a.beginKeyRotation, { rotationId, requestedBy: 'test' });
    expect(begun).toMatchObject({ fromVersions: [1], toVersion: 2 });
    expect(workerKeyring.currentKekVersion).toBe(2);
    // A retry reads the version back; another rotation meanwhile is refused.
    expect(await env.run(a.beginKeyRotation, { rotationId, requestedBy: 'test' })).toMatchObject({ toVersion: 2 });
    await expect(env.run(a.beginKeyRotation, { rotationId: randomUUID(), requestedBy: 'test' })).rejects.toMatchObject({
      type: 'RotationInProgress',
    });

    const batch = { rotationId, toVersion: 2, pass: 1, cursor: '', batchSize: 10 };
    expect(await env.run(a.rewrapKeyBatch, batch)).toEqual({ nextAfter: null, rewrapped: 5, skipped: 0 });
    // The same batch again is read back, not re-wrapped.
    expect(await env.run(a.rewrapKeyBatch, batch)).toEqual({ nextAfter: null, rewrapped: 5, skipped: 0 });

    // The API process has only the key file: it loads v2 from the database when it first meets it.
    expect(apiKeyring.keks.has(2)).toBe(false);
    const read = await dataKeys({ db, keyring: apiKeyring }).loadDataKeys(ids);
    expect(read.size).toBe(5);
    expect(apiKeyring.currentKekVersion).toBe(2);

    // A stale process wraps a new subject's key under v1 mid-rotation: completion retires nothing and says so.
    const stale = parseKeyring(keyFile, 'stale');
    const late = await insertSubjects(db, stale, 1);
    expect(await env.run(a.completeKeyRotation, { rotationId, verified: 5, passes: 1 })).toEqual({
      remaining: 1,
      evidence: null,
    });
    const [v1] = await db.select().from(kekVersions).where(eq(kekVersions.version, 1));
    expect(v1!.status).toBe('active');

    // A second pass re-wraps just that key; then v1 retires.
    const second = await env.run(a.rewrapKeyBatch, { ...batch, pass: 2 });
    expect(second).toEqual({ nextAfter: null, rewrapped: 1, skipped: 5 });
    expect(await env.run(a.verifyKeyBatch, { toVersion: 2, cursor: '', batchSize: 10 })).toEqual({
      nextAfter: null,
      verified: 6,
      notRewrapped: 0,
    });
    const done = await env.run(a.completeKeyRotation, { rotationId, verified: 6, passes: 2 });
    expect(done).toMatchObject({
      evidence: { retiredVersions: [1], keysRewrapped: 6, keysVerified: 6, passes: 2 },
    });
    const [lateKey] = await db.select().from(subjectKeys).where(eq(subjectKeys.subjectId, late.ids[0]!));
    expect(lateKey!.kekVersion).toBe(2);
    // Completing again answers with the same evidence.
    expect(await env.run(a.completeKeyRotation, { rotationId, verified: 6, passes: 2 })).toMatchObject({
      evidence: { retiredVersions: [1], keysRewrapped: 6 },
    });
  });
});
