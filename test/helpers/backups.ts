import { randomUUID } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { pipeline, Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { readManifest } from '../../activities/backup-restore';
import type { BackupStorage } from '../../activities/backup-storage';
import { backupObjectKey } from '../../activities/backup-storage';
import { FrameOpener, unwrapBackupKey } from '../../activities/crypto/backup-frames';
import { insertNewSubjects, newSubject } from '../../activities/subject-writer';
import type { Database } from '../../db/client';
import { defaultCatalog } from '../../domain/catalog';
import type { BackupManifest } from '../../domain/backup';
import type { Keyring } from '../../runtime/keyring';

export interface SeededSubjects {
  ids: string[];
  /** Personal values written encrypted: none may appear in a backup file or its decrypted tables. */
  personalValues: string[];
  wrappedKeys: Buffer[];
}

/**
 * `count` subjects with a name, email and phone encrypted under their own data keys and a plain segment, written
 * the way the import writes them (bulk insert and COPY, 5,000 a transaction) — fast, without the workflow.
 */
export const seedSubjects = async (
  database: Database,
  keyring: Keyring,
  count: number,
  tag = randomUUID().slice(0, 8),
): Promise<SeededSubjects> => {
  const seeded: SeededSubjects = { ids: [], personalValues: [], wrappedKeys: [] };
  for (let start = 0; start < count; start += 5000) {
    const batch = Array.from({ length: Math.min(5000, count - start) }, (_, k) => {
      const i = start + k;
      const email = `person.${tag}.${i}@known-personal.example`;
      const name = `Known Personname ${tag} ${i}`;
      const phone = `+86 139 ${String(10_000_000 + i).slice(-8)}`;
      const created = newSubject(
        defaultCatalog,
        keyring,
        { externalRef: `seed-${tag}-${i}`, jurisdiction: 'CN', locale: 'zh-CN', fields: {} },
        new Map<string, string>([
          ['email', email],
          ['name', name],
          ['phone', phone],
          ['segment', i % 2 ? 'retail' : 'wholesale'],
        ]),
      );
      seeded.ids.push(created.subject.id);
      if (i % 97 === 0) seeded.personalValues.push(email, name);
      seeded.wrappedKeys.push(created.wrappedKey);
      return created;
    });
    await database.sql.begin((tx) => insertNewSubjects(tx, `seed-${tag}`, batch));
  }
  return seeded;
};

/** A backup's COPY text, decrypted and decompressed as a restore reads it (test inspection only). */
export const decryptBackup = async (
  storage: BackupStorage,
  keyring: Keyring,
  backupId: string,
): Promise<{ manifest: BackupManifest; plaintext: Buffer }> => {
  const checked = await readManifest(storage, keyring, backupId);
  if (!checked.ok) throw new Error(`manifest of ${backupId}: ${checked.reason.code}`);
  const { manifest } = checked.signed;
  const key = unwrapBackupKey(keyring, backupId, {
    wrappedKey: Buffer.from(manifest.key.wrappedKey, 'base64'),
    kekVersion: manifest.key.kekVersion,
  });
  const chunks: Buffer[] = [];
  const plain = pipeline(
    Readable.from(await storage.get(backupObjectKey(backupId))),
    new FrameOpener(key, backupId, manifest.cipher.frameBytes),
    createGunzip(),
    () => {},
  );
  for await (const chunk of plain) chunks.push(chunk as Buffer);
  return { manifest, plaintext: Buffer.concat(chunks) };
};

/** The raw bytes of a stored object (a backup directory's file). */
export const readObject = (dir: string, key: string) => readFile(`${dir}/${key}`);
