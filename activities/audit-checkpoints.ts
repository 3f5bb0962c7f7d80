import type { KeyObject } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { desc, eq, sql } from 'drizzle-orm';
import { canonicalJson } from '../domain/canonical-json';
import { AuditCheckpoint, signedCheckpointContent } from '../domain/audit';
import type { Db } from '../db/client';
import { auditCheckpoints, auditLog } from '../db/schema';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { GENESIS_HASH, walkChain, type DbOrTx } from './audit';
import { sha256Hex, sign, verifySignature } from './crypto/signatures';

/** Serializes checkpoint writers (one per API/worker process); appends do not wait on it. */
const AUDIT_CHECKPOINT_LOCK = 0x6175_6463; // "audc"

/** `CUSTODIAN_AUDIT_CHECKPOINT_FILE`, else `<data dir>/audit-checkpoints.jsonl`: outside the database directory. */
export const auditCheckpointFile = (config: { dataDir: string; CUSTODIAN_AUDIT_CHECKPOINT_FILE?: string }): string =>
  resolve(config.CUSTODIAN_AUDIT_CHECKPOINT_FILE ?? join(config.dataDir, 'audit-checkpoints.jsonl'));

const fromRow = (row: typeof auditCheckpoints.$inferSelect): AuditCheckpoint => ({ ...row, at: row.at.toISOString() });

export interface CheckpointSinks {
  /** JSON lines, opened O_APPEND with mode 0600, fsynced per line. */
  sinkFile?: string;
  /** Receives each new checkpoint as a JSON POST. */
  webhookUrl?: string;
}

/** One line per checkpoint; the file is only ever appended to, so the database role cannot rewrite what it holds. */
export const appendCheckpointLine = async (file: string, checkpoint: AuditCheckpoint): Promise<void> => {
  await mkdir(dirname(file), { recursive: true });
  const handle = await open(file, 'a+', 0o600);
  try {
    // A line torn by a crash stays a line of its own (reported by verification), not glued to this one.
    const { size } = await handle.stat();
    const last = size > 0 ? (await handle.read(Buffer.alloc(1), 0, 1, size - 1)).buffer.toString() : '\n';
    await handle.appendFile(`${last === '\n' ? '' : '\n'}${JSON.stringify(checkpoint)}\n`);
    await handle.sync();
  } finally {
    await handle.close();
  }
};

const postCheckpoint = async (url: string, checkpoint: AuditCheckpoint): Promise<void> => {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(checkpoint),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`audit checkpoint webhook answered ${res.status}`);
};

/**
 * Signs the current chain head as the next checkpoint, in the database and then in the sinks. Idempotent:
 * when the head has not moved since the last checkpoint, that one is returned and nothing is written. It
 * refuses to sign a chain that does not extend the previous checkpoint, so a rewrite is never laundered.
 */
export const writeAuditCheckpoint = async ({
  db,
  keyring,
  clock = () => new Date(),
  ...sinks
}: { db: Db; keyring: Keyring; clock?: () => Date } & CheckpointSinks): Promise<{
  checkpoint: AuditCheckpoint;
  created: boolean;
}> => {
  const written = await db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(${AUDIT_CHECKPOINT_LOCK})`);
    const [lastRow] = await tx.select().from(auditCheckpoints).orderBy(desc(auditCheckpoints.number)).limit(1);
    const last = lastRow && fromRow(lastRow);
    const [head] = await tx
      .select({ seq: auditLog.seq, hash: auditLog.hash })
      .from(auditLog)
      .orderBy(desc(auditLog.seq))
      .limit(1);
    const seq = head?.seq ?? 0;
    const headHash = head?.hash ?? GENESIS_HASH;
    if (sinks.sinkFile) await assertHoldsSinkHead(tx, sinks.sinkFile);
    if (last && last.seq === seq && last.headHash === headHash) return { checkpoint: last, created: false };
    await assertExtends(tx, last, seq);
    const content = {
      number: (last?.number ?? 0) + 1,
      seq,
      headHash,
      at: clock().toISOString(),
      prevCheckpointHash: last?.hash ?? GENESIS_HASH,
    };
    const { signature, keyId } = sign(keyring, content);
    const checkpoint = { ...content, hash: sha256Hex(canonicalJson(content)), signature, keyId };
    await tx.insert(auditCheckpoints).values({ ...checkpoint, at: new Date(checkpoint.at) });
    return { checkpoint, created: true };
  });
  // After the commit: a sink that fails leaves the checkpoint in the database only, never in a sink alone.
  if (written.created && sinks.sinkFile) await appendCheckpointLine(sinks.sinkFile, written.checkpoint);
  if (written.created && sinks.webhookUrl) await postCheckpoint(sinks.webhookUrl, written.checkpoint);
  return written;
};

/** How much of the sink file's end is read to find its newest checkpoint (a line is ~400 bytes). */
const SINK_TAIL_BYTES = 16 * 1024;

/** The newest whole checkpoint line of the sink file, read from its end; undefined for a missing or empty file. */
export const lastSinkCheckpoint = async (file: string): Promise<AuditCheckpoint | undefined> => {
  const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return undefined;
    throw err;
  });
  if (!handle) return undefined;
  try {
    const { size } = await handle.stat();
    const length = Math.min(size, SINK_TAIL_BYTES);
    const { buffer } = await handle.read(Buffer.alloc(length), 0, length, size - length);
    // The first line may be cut by the window and the last torn by a crash: take the newest that parses.
    for (const line of buffer.toString('utf8').split('\n').reverse()) {
      const parsed = AuditCheckpoint.safeParse(
        (() => {
          try {
            return JSON.parse(line);
          } catch {
            return undefined;
          }
        })(),
      );
      if (parsed.success) return parsed.data;
    }
    return undefined;
  } finally {
    await handle.close();
  }
};

/**
 * The database must still hold, exactly, the newest checkpoint the sink holds. Otherwise someone with
 * the database's keys removed or replaced checkpoints, and signing the current head would anchor
 * whatever they did to the chain since; nothing is signed until an auditor has looked.
 */
const assertHoldsSinkHead = async (db: DbOrTx, sinkFile: string) => {
  const anchored = await lastSinkCheckpoint(sinkFile);
  if (!anchored) return;
  const [stored] = await db.select().from(auditCheckpoints).where(eq(auditCheckpoints.number, anchored.number));
  if (!stored || canonicalJson(fromRow(stored)) !== canonicalJson(anchored)) {
    throw new Error(
      `checkpoint ${anchored.number} of the sink file is not in the database as signed; no checkpoint written`,
    );
  }
};

/** The entries since the last checkpoint must still hold and start from its head. */
const assertExtends = async (db: DbOrTx, last: AuditCheckpoint | undefined, headSeq: number) => {
  const from = { seq: last?.seq ?? 0, hash: last?.headHash ?? GENESIS_HASH };
  if (last && last.seq > 0) {
    const [anchored] = await db.select({ hash: auditLog.hash }).from(auditLog).where(eq(auditLog.seq, last.seq));
    if (anchored?.hash !== last.headHash) {
      throw new Error(`audit chain no longer holds checkpoint ${last.number} (seq ${last.seq}); no checkpoint written`);
    }
  }
  const walk = await walkChain(db, from, undefined, headSeq);
  if (walk.broken)
    throw new Error(`audit chain broken at seq ${walk.broken.seq} (${walk.broken.reason}); no checkpoint written`);
  if (walk.lastSeq !== headSeq)
    throw new Error(`audit chain ends at seq ${walk.lastSeq}, before its head; no checkpoint written`);
};

/**
 * Writes a checkpoint now, every `intervalMs`, and once more on `stop()` (call it before the pool closes).
 * Failures are logged and retried at the next tick: a missed checkpoint only widens the unanchored tail.
 */
export const startAuditCheckpointer = ({
  intervalMs,
  logger,
  ...options
}: Parameters<typeof writeAuditCheckpoint>[0] & { intervalMs: number; logger: Logger }): { stop(): Promise<void> } => {
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const tick = () =>
    writeAuditCheckpoint(options).then(
      ({ checkpoint, created }) => {
        if (created) logger.info({ number: checkpoint.number, seq: checkpoint.seq }, 'audit checkpoint written');
      },
      (err: Error) => logger.error({ err: { name: err.name, message: err.message } }, 'audit checkpoint failed'),
    );
  let running = tick();
  const schedule = () => {
    timer = setTimeout(() => {
      running = tick().then(() => (stopped ? undefined : schedule()));
    }, intervalMs);
    timer.unref();
  };
  void running.then(() => (stopped ? undefined : schedule()));
  return {
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await tick();
    },
  };
};

/** Reads a checkpoint file; a line that is not a checkpoint is reported by its line number. */
export const readCheckpointFile = async (
  file: string,
): Promise<{ checkpoints: AuditCheckpoint[]; problems: string[] }> => {
  const checkpoints: AuditCheckpoint[] = [];
  const problems: string[] = [];
  const lines = (await readFile(file, 'utf8')).split('\n');
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(line);
    } catch {
      parsed = undefined;
    }
    const checkpoint = AuditCheckpoint.safeParse(parsed);
    if (checkpoint.success) checkpoints.push(checkpoint.data);
    else problems.push(`line ${i + 1} of the checkpoint file is not a checkpoint`);
  });
  return { checkpoints, problems };
};

export interface CheckpointSource {
  /** The signing public key (KeyObject or SPKI PEM) that checkpoints must verify under. */
  publicKey: KeyObject | string;
  /** A checkpoint file to read besides the database; where they disagree, the file wins. */
  file?: string;
}

/**
 * The checkpoints of the database and, when given, of the file, checked: signature, hash and the link to
 * the previous checkpoint. `anchors` are those whose signature holds, in order; everything else is a problem.
 */
export const loadCheckpoints = async (
  db: DbOrTx,
  source: CheckpointSource,
): Promise<{ anchors: AuditCheckpoint[]; checkpoints: number; problems: string[] }> => {
  const problems: string[] = [];
  const rows = await db.select().from(auditCheckpoints);
  const byNumber = new Map(rows.map((row) => [row.number, fromRow(row)]));
  if (source.file) {
    const fromFile = await readCheckpointFile(source.file);
    problems.push(...fromFile.problems);
    for (const checkpoint of fromFile.checkpoints) {
      const stored = byNumber.get(checkpoint.number);
      if (!stored) problems.push(`checkpoint ${checkpoint.number} is in the file but missing from the database`);
      else if (canonicalJson(stored) !== canonicalJson(checkpoint)) {
        problems.push(`checkpoint ${checkpoint.number} in the database differs from the file`);
      }
      byNumber.set(checkpoint.number, checkpoint);
    }
  }
  const ordered = [...byNumber.values()].sort((a, b) => a.number - b.number);
  const anchors: AuditCheckpoint[] = [];
  for (const checkpoint of ordered) {
    const n = checkpoint.number;
    const content = signedCheckpointContent(checkpoint);
    if (!verifySignature(source.publicKey, content, checkpoint.signature)) {
      problems.push(`checkpoint ${n}: the signature does not verify`);
      continue;
    }
    if (sha256Hex(canonicalJson(content)) !== checkpoint.hash) problems.push(`checkpoint ${n}: hash does not match`);
    const previous = n === 1 ? { hash: GENESIS_HASH, seq: 0 } : byNumber.get(n - 1);
    if (!previous) problems.push(`checkpoint ${n - 1} is missing`);
    else if (checkpoint.prevCheckpointHash !== previous.hash) problems.push(`checkpoint ${n} does not follow ${n - 1}`);
    else if (checkpoint.seq < previous.seq) problems.push(`checkpoint ${n} anchors an earlier seq than ${n - 1}`);
    anchors.push(checkpoint);
  }
  return { anchors, checkpoints: ordered.length, problems };
};
