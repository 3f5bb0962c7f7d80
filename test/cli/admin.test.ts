import { spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../activities/audit';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

/** Runs `custodian <args>` through the package's bin, as an operator would with npx. */
const custodian = (args: string[], env: Record<string, string> = {}) =>
  new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
    const child = spawn(process.execPath, ['bin/custodian.js', ...args], {
      env: { ...process.env, DATABASE_URL: database.url, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
  });

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
    const sound = await custodian(['verify-audit']);
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
    const broken = await custodian(['verify-audit']);
    expect(broken.code).toBe(1);
    expect(JSON.parse(broken.stdout)).toMatchObject({ valid: false, firstBrokenSeq: Number(seq) });
  });
});
