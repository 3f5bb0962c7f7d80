import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsFile, startEmbeddedPostgres, type EmbeddedDatabase } from '../../runtime/embedded-postgres';
import { freePort } from '../../runtime/ports';
import { isRunning } from '../../runtime/stale-process';
import { startAndAbandon } from './stale-helpers';

const asRoot = process.getuid?.() === 0;
let dataDir: string;
let cluster: string;
beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'custodian-embedded-'));
  cluster = join(dataDir, 'postgres');
});
afterAll(() => rm(dataDir, { recursive: true, force: true }));

const query = async (url: string, text: string) => {
  const sql = postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 10 });
  try {
    return await sql.unsafe(text);
  } finally {
    await sql.end({ timeout: 5 });
  }
};

const withPassword = (url: string, password: string) => {
  const u = new URL(url);
  u.password = password;
  return u.toString();
};

const mode = async (path: string) => (await stat(path)).mode & 0o777;

describe('embedded PostgreSQL', { timeout: 180_000 }, () => {
  it('generates random passwords at first start, keeps them 0600, and hands the service a plain role', async () => {
    const lines: string[] = [];
    const db = await startEmbeddedPostgres(cluster, await freePort(), 'custodian', (l) => lines.push(l));
    try {
      expect(await mode(credentialsFile(cluster))).toBe(0o600);
      // The data directory: owner-only, or as root passable (not readable) by the cluster's group.
      expect(await mode(dataDir)).toBe(asRoot ? 0o710 : 0o700);
      const [owner] = await query(db.ownerUrl, 'select rolsuper from pg_roles where rolname = current_user');
      expect(owner?.rolsuper).toBe(true);
      const [service] = await query(
        db.url,
        'select current_user as name, rolsuper from pg_roles where rolname = current_user',
      );
      expect(service).toEqual({ name: db.serviceRole, rolsuper: false });
      await expect(query(withPassword(db.ownerUrl, 'custodian'), 'select 1')).rejects.toMatchObject({ code: '28P01' });
      const stored = await readFile(credentialsFile(cluster), 'utf8');
      expect(stored).toContain(new URL(db.ownerUrl).password);
      expect(lines.join('\n')).not.toContain(new URL(db.ownerUrl).password);
      // Put the old fixed password back, as a cluster made before this change has it, and forget the file.
      await query(db.ownerUrl, `alter role custodian password 'custodian'`);
    } finally {
      await db.stop();
    }
    await rm(credentialsFile(cluster));

    const again = await startEmbeddedPostgres(cluster, await freePort(), 'custodian', (l) => lines.push(l));
    try {
      expect(lines.some((l) => l.includes('replaced the cluster'))).toBe(true);
      expect(new URL(again.ownerUrl).password).not.toBe('custodian');
      expect(await mode(credentialsFile(cluster))).toBe(0o600);
      await expect(query(withPassword(again.ownerUrl, 'custodian'), 'select 1')).rejects.toMatchObject({
        code: '28P01',
      });
      expect((await query(again.url, 'select 1 as one'))[0]?.one).toBe(1);
    } finally {
      await again.stop();
    }
  });

  it('stops a server a killed start left running on the cluster, then starts', async () => {
    const { ownerUrl } = await startAndAbandon(['postgres', cluster]);
    const stalePid = Number((await readFile(join(cluster, 'postmaster.pid'), 'utf8')).split('\n')[0]);
    expect(isRunning(stalePid)).toBe(true);
    expect((await query(ownerUrl!, 'select 1 as one'))[0]?.one).toBe(1);
    const lines: string[] = [];
    let db: EmbeddedDatabase | undefined;
    try {
      db = await startEmbeddedPostgres(cluster, await freePort(), 'custodian', (l) => lines.push(l));
      expect(lines.some((l) => l.includes(`stopping a stale embedded server (pid ${stalePid})`))).toBe(true);
      expect(isRunning(stalePid)).toBe(false);
      expect((await query(db.url, 'select 1 as one'))[0]?.one).toBe(1);
    } finally {
      await db?.stop();
      if (isRunning(stalePid)) process.kill(stalePid, 'SIGKILL');
    }
  });

  it('refuses to start on a cluster a live process is serving', async () => {
    const db = await startEmbeddedPostgres(cluster, await freePort(), 'custodian');
    try {
      await expect(startEmbeddedPostgres(cluster, await freePort(), 'custodian')).rejects.toThrow(
        /is in use by pid \d+/,
      );
      expect((await query(db.url, 'select 1 as one'))[0]?.one).toBe(1);
    } finally {
      await db.stop();
    }
  });
});
