import { createHash } from 'node:crypto';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type postgres from 'postgres';
import {
  SignedManifest,
  type BackupManifest,
  type BackupTable,
  type RestoreTestReason,
  type RestoreTestTable,
} from '../domain/backup';
import type { Keyring } from '../runtime/keyring';
import { applyCopySettings, copyIn, copyInStatement, digestTable, TableDigest } from './backup-copy';
import { backupObjectKey, manifestObjectKey, type BackupStorage } from './backup-storage';
import { FrameError, FrameOpener, unwrapBackupKey } from './crypto/backup-frames';
import { verifySignature } from './crypto/signatures';

/*
 * Reading a backup back: verify the signed manifest, unwrap the key, stream the file through frame
 * authentication and gunzip, load each table with COPY … FROM STDIN wherever the caller says (a scratch table
 * for the restore test, the real table for `custodian restore`), and compare each table's rows and SHA-256 —
 * of the text read from the file and of the text COPY gives back after loading — with the manifest.
 */

type Sql = postgres.Sql | postgres.TransactionSql | postgres.ReservedSql;

export type ManifestCheck =
  { ok: true; signed: SignedManifest } | { ok: false; reason: RestoreTestReason; signed?: SignedManifest };

/** Reads and checks `<id>.manifest.json`: shape, the backup ID it names, and the Ed25519 signature. */
export const readManifest = async (
  storage: BackupStorage,
  keyring: Pick<Keyring, 'signing'>,
  backupId: string,
): Promise<ManifestCheck> => {
  if (!(await storage.stat(manifestObjectKey(backupId)))) return { ok: false, reason: { code: 'manifest-missing' } };
  const chunks: Buffer[] = [];
  for await (const chunk of await storage.get(manifestObjectKey(backupId))) chunks.push(chunk as Buffer);
  let json: unknown;
  try {
    json = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    return { ok: false, reason: { code: 'manifest-invalid', message: 'not JSON' } };
  }
  const parsed = SignedManifest.safeParse(json);
  if (!parsed.success) {
    const paths = [...new Set(parsed.error.issues.map((i) => i.path.join('.') || '(root)'))].slice(0, 5);
    return { ok: false, reason: { code: 'manifest-invalid', message: `malformed at ${paths.join(', ')}` } };
  }
  const signed = parsed.data;
  const { signature } = signed;
  if (
    signature.keyId !== keyring.signing.keyId ||
    !verifySignature(keyring.signing.publicKey, signed.manifest, signature)
  )
    return { ok: false, reason: { code: 'manifest-signature-invalid', keyId: signature.keyId }, signed };
  if (signed.manifest.backupId !== backupId)
    return { ok: false, reason: { code: 'manifest-mismatch', message: 'the manifest names another backup' }, signed };
  return { ok: true, signed };
};

/** Reads exactly the bytes asked for from an async iterable of chunks. */
const chunkReader = (source: AsyncIterable<Buffer>) => {
  const iterator = source[Symbol.asyncIterator]();
  let rest: Buffer | undefined;
  return {
    async read(max: number): Promise<Buffer | undefined> {
      if (!rest || rest.length === 0) {
        const next = await iterator.next();
        if (next.done) return undefined;
        rest = next.value;
      }
      const out = rest.length <= max ? rest : rest.subarray(0, max);
      rest = rest.length <= max ? undefined : rest.subarray(max);
      return out;
    },
    async close() {
      await iterator.return?.();
    },
  };
};

export interface RestoreProgress {
  phase: 'restore' | 'compare';
  /** Ciphertext bytes read so far. */
  bytesDone: number;
  table?: string;
}

export interface RestoreOutcome {
  manifest?: BackupManifest;
  reasons: RestoreTestReason[];
  tables: RestoreTestTable[];
}

export interface RestoreOptions {
  storage: BackupStorage;
  keyring: Keyring;
  backupId: string;
  /** A transaction on the database that receives the rows; its COPY settings are set here. */
  tx: Sql;
  /** Readies a table to receive `table`'s rows; returns where to COPY into (and hash back from). */
  target(table: BackupTable): Promise<{ schema: string; relation: string }>;
  onProgress?(progress: RestoreProgress): void;
}

const errorCode = (err: unknown): string => {
  const e = err as { code?: string; name?: string };
  return e?.code ?? e?.name ?? 'error';
};

const sha256OfObject = async (storage: BackupStorage, key: string): Promise<{ sha256: string; bytes: number }> => {
  const hash = createHash('sha256');
  let bytes = 0;
  for await (const chunk of await storage.get(key)) {
    hash.update(chunk as Buffer);
    bytes += (chunk as Buffer).length;
  }
  return { sha256: hash.digest('hex'), bytes };
};

/**
 * Restores one backup into `target` and verifies it. Never throws for a damaged backup: every problem becomes a
 * reason. A COPY that failed leaves the transaction aborted; the caller rolls it back.
 */
export const restoreBackup = async (o: RestoreOptions): Promise<RestoreOutcome> => {
  const reasons: RestoreTestReason[] = [];
  const tables: RestoreTestTable[] = [];
  const checked = await readManifest(o.storage, o.keyring, o.backupId);
  if (!checked.ok) return { reasons: [checked.reason], tables, manifest: checked.signed?.manifest };
  const manifest = checked.signed.manifest;
  const done = () => ({ manifest, reasons, tables });

  const fileKey = backupObjectKey(o.backupId);
  const file = await o.storage.stat(fileKey);
  if (!file) return { ...done(), reasons: [{ code: 'file-missing' }] };
  if (file.bytes !== manifest.ciphertext.bytes)
    reasons.push({ code: 'ciphertext-size-mismatch', expected: manifest.ciphertext.bytes, actual: file.bytes });

  let key: Buffer;
  try {
    key = unwrapBackupKey(o.keyring, o.backupId, {
      wrappedKey: Buffer.from(manifest.key.wrappedKey, 'base64'),
      kekVersion: manifest.key.kekVersion,
    });
  } catch {
    return { ...done(), reasons: [{ code: 'key-unwrap-failed', kekVersion: manifest.key.kekVersion }] };
  }

  await applyCopySettings(o.tx);
  const cipherHash = createHash('sha256');
  let bytesDone = 0;
  let readAll = false;
  const progress = (phase: RestoreProgress['phase'], table?: string) => o.onProgress?.({ phase, bytesDone, table });
  async function* ciphertext(stream: Readable) {
    for await (const chunk of stream) {
      cipherHash.update(chunk as Buffer);
      bytesDone += (chunk as Buffer).length;
      yield chunk as Buffer;
    }
    readAll = true;
  }
  const opener = new FrameOpener(key, o.backupId, manifest.cipher.frameBytes, manifest.ciphertext.bytes);
  // The callback form returns the last stream, which fails with the first error of any stage.
  const plaintext = pipeline(Readable.from(ciphertext(await o.storage.get(fileKey))), opener, createGunzip(), () => {});
  const reader = chunkReader(plaintext);

  let current: string | undefined;
  try {
    for (const table of manifest.tables) {
      current = table.name;
      progress('restore', table.name);
      const where = await o.target(table);
      const fromFile = new TableDigest();
      async function* rows() {
        for (let left = table.bytes; left > 0;) {
          const chunk = await reader.read(left);
          if (!chunk) return;
          left -= chunk.length;
          fromFile.update(chunk);
          yield chunk;
        }
      }
      await copyIn(o.tx, copyInStatement(table, where.schema, where.relation), rows());
      const file = fromFile.result();
      if (file.bytes !== table.bytes) {
        reasons.push({ code: 'plaintext-length-mismatch', expected: table.bytes, actual: file.bytes });
        break;
      }
      progress('compare', table.name);
      const restored = await digestTable(o.tx, table, where.schema, where.relation);
      const match = restored.rows === table.rows && restored.sha256 === table.sha256;
      tables.push({
        table: table.name,
        expectedRows: table.rows,
        restoredRows: restored.rows,
        expectedSha256: table.sha256,
        restoredSha256: restored.sha256,
        match: match && file.sha256 === table.sha256,
      });
      if (file.rows !== table.rows)
        reasons.push({
          code: 'table-rows-mismatch',
          table: table.name,
          stage: 'file',
          expected: table.rows,
          actual: file.rows,
        });
      else if (file.sha256 !== table.sha256)
        reasons.push({
          code: 'table-hash-mismatch',
          table: table.name,
          stage: 'file',
          expected: table.sha256,
          actual: file.sha256,
        });
      if (restored.rows !== table.rows)
        reasons.push({
          code: 'table-rows-mismatch',
          table: table.name,
          stage: 'restored',
          expected: table.rows,
          actual: restored.rows,
        });
      else if (restored.sha256 !== table.sha256)
        reasons.push({
          code: 'table-hash-mismatch',
          table: table.name,
          stage: 'restored',
          expected: table.sha256,
          actual: restored.sha256,
        });
    }
    current = undefined;
    if (!reasons.some((r) => r.code === 'plaintext-length-mismatch')) {
      let extra = 0;
      for (let chunk = await reader.read(1 << 20); chunk; chunk = await reader.read(1 << 20)) extra += chunk.length;
      if (extra > 0) {
        const expected = manifest.tables.reduce((sum, t) => sum + t.bytes, 0);
        reasons.push({ code: 'plaintext-length-mismatch', expected, actual: expected + extra });
      }
    }
  } catch (err) {
    if (err instanceof FrameError) reasons.push(err.reason);
    else if (/^Z_|^ERR_ZLIB/.test(errorCode(err)) || (err as Error)?.name === 'ZlibError')
      reasons.push({ code: 'decompression-failed', message: errorCode(err) });
    else reasons.push({ code: 'restore-failed', table: current, message: errorCode(err) });
  } finally {
    await reader.close().catch(() => {});
    plaintext.destroy();
    key.fill(0);
  }

  const whole = readAll
    ? { sha256: cipherHash.digest('hex'), bytes: bytesDone }
    : await sha256OfObject(o.storage, fileKey);
  if (whole.sha256 !== manifest.ciphertext.sha256)
    reasons.unshift({ code: 'ciphertext-hash-mismatch', expected: manifest.ciphertext.sha256, actual: whole.sha256 });
  return done();
};
