import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../activities/audit';
import { writeAuditCheckpoint } from '../../activities/audit-checkpoints';
import { generateKeyFile, parseKeyring, publicKeyPem } from '../../runtime/keyring';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { runCustodian } from '../helpers/cli';

let database: TestDatabase;
/** A data directory of its own, so no keyring or checkpoint file of a local `custodian start` is picked up. */
const dataDir = mkdtempSync(join(tmpdir(), 'custodian-admin-cli-'));
const keyFile = generateKeyFile();
const keyring = parseKeyring(keyFile, 'test');
const withKeyring = { CUSTODIAN_KEYRING: JSON.stringify(keyFile) };
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(async () => {
  await database?.drop();
  rmSync(dataDir, { recursive: true, force: true });
});

const custodian = (args: string[], env: Record<string, string> = {}) =>
  runCustodian(args, { DATABASE_URL: database.url, CUSTODIAN_DATA_DIR: dataDir, ...env });

describe('custodian operator commands', () => {
  it('create-api-key makes a user and prints a key once, on stdout only', async () => {
    const result = await custodian(['create-api-key', '--new-user', 'night-shift', '--role', 'responder']);
    expect(result.code).toBe(0);
    const key = result.stdout.trim();
    expect(key).toMatch(/^cust_[0-9a-f]{8}_[A-Za-z0-9_-]{43}$/);
    expect(result.stderr).not.toContain(key);
    const [row] = await database.sql`select u.role from api_keys k join users u on u.id = k.user_id`;
    expect(row?.role).toBe('responder');
  });

  it('create-api-key refuses an unknown role with one line', async () => {
    const result = await custodian(['create-api-key', '--new-user', 'x', '--role', 'king']);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^custodian create-api-key: --role: one of admin, owner/);
  });

  it('verify-audit exits 0 on a sound chain and 1 naming the first broken entry', async () => {
    for (let n = 1; n <= 3; n++) {
      await appendAudit(database.db, {
        actor: 'test',
        action: 'test.event',
        targetType: 'test',
        targetId: String(n),
        idempotencyKey: `cli:${n}`,
      });
    }
    const sound = await custodian(['verify-audit'], withKeyring);
    expect(sound.code).toBe(0);
    expect(JSON.parse(sound.stdout)).toMatchObject({ valid: true });

    const [{ seq }] = (await database.sql`select seq from audit_log where idempotency_key = 'cli:2'`) as unknown as [
      { seq: string },
    ];
    await database.sql.begin(async (tx) => {
      await tx.unsafe('alter table audit_log disable trigger audit_log_append_only');
      await tx.unsafe(`update audit_log set actor = 'mallory' where seq = ${Number(seq)}`);
      await tx.unsafe('alter table audit_log enable trigger audit_log_append_only');
    });
    const broken = await custodian(['verify-audit'], withKeyring);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({ valid: false, firstBrokenSeq: Number(seq) });
  });

  it('verify-audit --checkpoints works offline from the file and a public key, naming a cut tail', async () => {
    const own = await createTestDatabase();
    try {
      for (let n = 1; n <= 6; n++) {
        await appendAudit(own.db, {
          actor: 'test',
          action: 'test.event',
          targetType: 'test',
          targetId: String(n),
          idempotencyKey: `cli-checkpoints:${n}`,
        });
      }
      const sinkFile = join(dataDir, 'offline', 'checkpoints.jsonl');
      await writeAuditCheckpoint({ db: own.db, keyring, sinkFile });
      const pem = join(dataDir, 'signing.pem');
      writeFileSync(pem, publicKeyPem(keyring));
      // The auditor holds the file and the public key only: no keyring in the environment.
      const args = ['verify-audit', '--checkpoints', sinkFile, '--public-key', pem];
      const sound = await custodian(args, { DATABASE_URL: own.url });
      expect(sound.code).toBe(0);
      expect(JSON.parse(sound.stdout)).toMatchObject({ valid: true, anchoredSeq: 6, unanchored: 0 });

      await own.sql.begin(async (tx) => {
        await tx.unsafe('set local session_replication_role = replica');
        await tx.unsafe('delete from audit_log where seq > 3');
        await tx.unsafe('delete from audit_checkpoints');
      });
      const cut = await custodian(args, { DATABASE_URL: own.url });
      expect(cut.code).toBe(1);
      expect(JSON.parse(cut.stdout)).toMatchObject({
        valid: false,
        firstBrokenSeq: 4,
        reason: expect.stringMatching(/^entry 4 is missing/),
        checkpointProblems: ['checkpoint 1 is in the file but missing from the database'],
      });

      const wrongKey = join(dataDir, 'other.pem');
      writeFileSync(wrongKey, publicKeyPem(parseKeyring(generateKeyFile(), 'other')));
      const forged = await custodian(['verify-audit', '--checkpoints', sinkFile, '--public-key', wrongKey], {
        DATABASE_URL: own.url,
      });
      expect(forged.code).toBe(1);
      expect(JSON.parse(forged.stdout).checkpointProblems).toContain('checkpoint 1: the signature does not verify');
    } finally {
      await own.drop();
    }
  });

  it('public-key prints the signing key an auditor verifies with, and nothing secret', async () => {
    const result = await custodian(['public-key'], withKeyring);
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(publicKeyPem(keyring));
    expect(result.stdout).not.toContain(keyFile.signingKey);
    const missing = await custodian(['public-key']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^custodian public-key: no keyring/);
  });

  it('verify-audit refuses a checkpoint file that does not exist, in one line', async () => {
    const result = await custodian(['verify-audit', '--checkpoints', join(dataDir, 'nope.jsonl')], withKeyring);
    expect(result.code).toBe(1);
    expect(result.stderr.trim()).toMatch(/^custodian verify-audit: --checkpoints: no such file /);
  });
});
