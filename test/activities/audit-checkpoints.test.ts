import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { appendAudit, entryHash } from '../../activities/audit';
import {
  auditCheckpointFile,
  readCheckpointFile,
  startAuditCheckpointer,
  writeAuditCheckpoint,
} from '../../activities/audit-checkpoints';
import { verifyAuditChain } from '../../activities/audit-verify';
import { sign } from '../../activities/crypto/signatures';
import { canonicalJson } from '../../domain/canonical-json';
import { auditLog } from '../../db/schema';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { createLogger } from '../../runtime/logger';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { testAuditEntry } from '../helpers/audit';

const keyring = parseKeyring(generateKeyFile(), 'test');
const otherKeyring = parseKeyring(generateKeyFile(), 'test (another key)');

let database: TestDatabase;
/** The database of the running test, dropped after it. */
let created: TestDatabase | undefined;
let dir: string;
let sinkFile: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'custodian-audit-checkpoints-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  await created?.drop();
  created = undefined;
});

const fresh = async () => {
  created = database = await createTestDatabase();
  sinkFile = join(dir, `${Math.random().toString(36).slice(2)}`, 'audit-checkpoints.jsonl');
  return database;
};
const appendRange = async (from: number, to: number) => {
  for (let n = from; n <= to; n++) await appendAudit(database.db, testAuditEntry(n));
};
const checkpoint = () => writeAuditCheckpoint({ db: database.db, keyring, sinkFile });
const verify = (file?: string) =>
  verifyAuditChain(database.db, { checkpoints: { publicKey: keyring.signing.publicKey, file } });

/** What an attacker with the owning role does: replica mode skips the append-only triggers. */
const asReplica = (statement: (tx: TestDatabase['sql']) => Promise<unknown>) =>
  database.sql.begin(async (tx) => {
    await tx.unsafe('set local session_replication_role = replica');
    await statement(tx as unknown as TestDatabase['sql']);
  });

describe('signed audit checkpoints', () => {
  it('signs the head once per move, into the database and an append-only 0600 file', async () => {
    await fresh();
    await appendRange(1, 3);
    const first = await checkpoint();
    expect(first).toMatchObject({ created: true, checkpoint: { number: 1, seq: 3 } });
    expect(await checkpoint()).toEqual({ checkpoint: first.checkpoint, created: false });
    await appendRange(4, 5);
    const second = await checkpoint();
    expect(second.checkpoint).toMatchObject({ number: 2, seq: 5, prevCheckpointHash: first.checkpoint.hash });

    expect(statSync(sinkFile).mode & 0o777).toBe(0o600);
    expect((await readCheckpointFile(sinkFile)).checkpoints).toEqual([first.checkpoint, second.checkpoint]);
    expect(await verify(sinkFile)).toMatchObject({
      valid: true,
      entries: 5,
      checkpoints: 2,
      anchoredSeq: 5,
      unanchored: 0,
      checkpointProblems: [],
    });
  });

  it('reports entries after the newest checkpoint as not yet anchored, not as broken', async () => {
    await fresh();
    await appendRange(1, 5);
    await checkpoint();
    await appendRange(6, 8);
    expect(await verify()).toMatchObject({ valid: true, entries: 8, anchoredSeq: 5, unanchored: 3 });
  });

  it('names the first entry of a tail cut off after a checkpoint', async () => {
    await fresh();
    await appendRange(1, 10);
    await checkpoint();
    await asReplica((tx) => tx`delete from audit_log where seq > (select max(seq) - 3 from audit_log)`);
    const result = await verify(sinkFile);
    expect(result).toMatchObject({ valid: false, entries: 7, firstBrokenSeq: 8, anchoredSeq: null });
    expect(result.reason).toMatch(/^entry 8 is missing: checkpoint 1 anchors the chain up to seq 10/);
  });

  it('names a rewritten entry whose later hashes were all recomputed', async () => {
    await fresh();
    await appendRange(1, 6);
    await checkpoint();
    await appendRange(7, 10);
    await checkpoint();
    // Rewrite entry 7 and rehash it and every later entry: the chain alone still verifies.
    const rows = await database.db.select().from(auditLog).orderBy(auditLog.seq);
    let prevHash = rows[5]!.hash;
    await asReplica(async (tx) => {
      for (const row of rows.slice(6)) {
        const content = row.seq === 7 ? { ...row, details: { n: 70 } } : row;
        const hash = entryHash(prevHash, content);
        await tx`update audit_log set details = ${JSON.stringify(content.details)}::jsonb, prev_hash = ${prevHash},
          hash = ${hash} where seq = ${row.seq}`;
        prevHash = hash;
      }
    });
    expect(await verifyAuditChain(database.db)).toMatchObject({ valid: true, entries: 10 });
    const result = await verify();
    expect(result).toMatchObject({ valid: false, firstBrokenSeq: 7, anchoredSeq: 6 });
    expect(result.reason).toMatch(/entry 10 does not carry the head hash of checkpoint 2/);
    // The checkpointer will not sign the rewritten head either.
    await appendAudit(database.db, testAuditEntry(11));
    await expect(checkpoint()).rejects.toThrow(/no longer holds checkpoint 2 \(seq 10\)/);
  });

  it('reports a forged checkpoint and does not anchor on it', async () => {
    await fresh();
    await appendRange(1, 4);
    await checkpoint();
    const previous = (await readCheckpointFile(sinkFile)).checkpoints[0]!;
    const content = {
      number: 2,
      seq: 4,
      headHash: 'e'.repeat(64),
      at: new Date().toISOString(),
      prevCheckpointHash: previous.hash,
    };
    const forged = { ...content, hash: 'f'.repeat(64), ...sign(otherKeyring, content) };
    await database.sql`insert into audit_checkpoints (number, at, seq, head_hash, prev_checkpoint_hash, hash, signature, key_id)
      values (2, ${content.at}, 4, ${content.headHash}, ${content.prevCheckpointHash}, ${forged.hash}, ${forged.signature}, ${forged.keyId})`;
    const result = await verify();
    expect(result).toMatchObject({ valid: false, checkpoints: 2, anchoredSeq: 4 });
    expect(result.checkpointProblems).toEqual(['checkpoint 2: the signature does not verify']);
    expect(result.firstBrokenSeq).toBeUndefined();
  });

  it('verifies offline from the file, which wins over a database whose checkpoints were deleted', async () => {
    await fresh();
    await appendRange(1, 6);
    await checkpoint();
    await appendRange(7, 9);
    await checkpoint();
    await asReplica(async (tx) => {
      await tx`delete from audit_log where seq > 6`;
      await tx`delete from audit_checkpoints where number = 2`;
    });
    // Without the file, the cut looks like a chain that was never longer.
    expect(await verify()).toMatchObject({ valid: true, entries: 6, anchoredSeq: 6 });
    const result = await verify(sinkFile);
    expect(result).toMatchObject({ valid: false, firstBrokenSeq: 7, anchoredSeq: 6 });
    expect(result.checkpointProblems).toEqual(['checkpoint 2 is in the file but missing from the database']);
  });

  it('signs nothing over a chain whose database lost the checkpoints the file holds', async () => {
    await fresh();
    await appendRange(1, 6);
    await checkpoint();
    await appendRange(7, 9);
    await checkpoint();
    // Rewrite entry 8 with every later hash recomputed, then delete the database's checkpoint that anchors it.
    const rows = await database.db.select().from(auditLog).orderBy(auditLog.seq);
    let prevHash = rows[6]!.hash;
    await asReplica(async (tx) => {
      for (const row of rows.slice(7)) {
        const content = row.seq === 8 ? { ...row, details: { n: 80 } } : row;
        const hash = entryHash(prevHash, content);
        await tx`update audit_log set details = ${JSON.stringify(content.details)}::jsonb, prev_hash = ${prevHash},
          hash = ${hash} where seq = ${row.seq}`;
        prevHash = hash;
      }
      await tx`delete from audit_checkpoints where number = 2`;
    });
    await appendRange(10, 11);
    await expect(checkpoint()).rejects.toThrow(/checkpoint 2 of the sink file is not in the database/);
    expect(await database.sql`select count(*)::int as n from audit_checkpoints`).toEqual([{ n: 1 }]);
    const result = await verify(sinkFile);
    expect(result).toMatchObject({ valid: false });
    expect(result.checkpointProblems).toEqual(['checkpoint 2 is in the file but missing from the database']);
  });

  it('reports a line of the file that is not a checkpoint, and appends after a torn line intact', async () => {
    await fresh();
    await appendRange(1, 2);
    await checkpoint();
    writeFileSync(sinkFile, '{"number": 7}\n{"number": 8, "se', { flag: 'a' });
    await appendRange(3, 3);
    await checkpoint();
    const result = await verify(sinkFile);
    expect(result.checkpointProblems).toEqual([
      'line 2 of the checkpoint file is not a checkpoint',
      'line 3 of the checkpoint file is not a checkpoint',
    ]);
    // The checkpoint written after the torn line is intact on a line of its own.
    expect(result).toMatchObject({ checkpoints: 2, anchoredSeq: 3 });
  });

  it('defaults the sink to a file in the data directory', () => {
    expect(auditCheckpointFile({ dataDir: '/srv/custodian' })).toBe('/srv/custodian/audit-checkpoints.jsonl');
    expect(auditCheckpointFile({ dataDir: '/srv', CUSTODIAN_AUDIT_CHECKPOINT_FILE: '/worm/a.jsonl' })).toBe(
      '/worm/a.jsonl',
    );
  });
});

describe('the audit checkpointer', () => {
  let webhook: Server;
  const received: unknown[] = [];
  beforeAll(async () => {
    webhook = createServer((req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        received.push(JSON.parse(body));
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, '127.0.0.1', resolve));
  });
  afterAll(() => new Promise((resolve) => webhook.close(resolve)));

  it('writes a checkpoint at start and a final one on stop, to the file and the webhook', async () => {
    await fresh();
    await appendRange(1, 3);
    const port = (webhook.address() as { port: number }).port;
    const logLines: string[] = [];
    const checkpointer = startAuditCheckpointer({
      db: database.db,
      keyring,
      sinkFile,
      webhookUrl: `http://127.0.0.1:${port}/checkpoints`,
      intervalMs: 3_600_000,
      logger: createLogger('info', { write: (line: string) => void logLines.push(line) }),
    });
    await vi.waitFor(async () => expect(await database.sql`select number from audit_checkpoints`).toHaveLength(1));
    await appendRange(4, 5);
    await checkpointer.stop();
    const { checkpoints } = await readCheckpointFile(sinkFile);
    expect(checkpoints.map((c) => c.seq)).toEqual([3, 5]);
    expect(received.map((c) => canonicalJson(c))).toEqual(checkpoints.map((c) => canonicalJson(c)));
    expect(logLines.filter((l) => l.includes('audit checkpoint written'))).toHaveLength(2);
    expect(await verify(sinkFile)).toMatchObject({ valid: true, anchoredSeq: 5, unanchored: 0 });
  });
});
