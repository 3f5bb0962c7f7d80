import { randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CryptoError } from '../../activities/crypto/errors';
import { decryptField, encryptField } from '../../activities/crypto/field-cipher';
import { newDataKey } from '../../activities/crypto/key-wrap';
import { dataKeys } from '../../activities/keys';
import { subjectKeys } from '../../db/schema';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

const keyFile = generateKeyFile();
const keyring = parseKeyring(keyFile, 'test');
let database: TestDatabase;
let keys: ReturnType<typeof dataKeys>;

beforeAll(async () => {
  database = await createTestDatabase();
  keys = dataKeys({ db: database.db, keyring });
});
afterAll(() => database?.drop());

const rowsOf = (subjectId: string) =>
  database.db.select().from(subjectKeys).where(eq(subjectKeys.subjectId, subjectId));

describe('subject data keys', () => {
  it('creates one key per subject, however often it is asked', async () => {
    const subjectId = randomUUID();
    const first = await keys.createDataKey(subjectId);
    const again = await keys.createDataKey(subjectId);
    expect(first.keyVersion).toBe(1);
    expect(again.dek.equals(first.dek)).toBe(true);
    expect(await rowsOf(subjectId)).toHaveLength(1);
    expect((await keys.loadDataKey(subjectId))?.dek.equals(first.dek)).toBe(true);
  });

  it('creates one key when two attempts race', async () => {
    const subjectId = randomUUID();
    const [a, b] = await Promise.all([keys.createDataKey(subjectId), keys.createDataKey(subjectId)]);
    expect(a.dek.equals(b.dek)).toBe(true);
    expect(await rowsOf(subjectId)).toHaveLength(1);
  });

  it('loads the latest key of many subjects in one call', async () => {
    const subjects = [randomUUID(), randomUUID()];
    const created = await Promise.all(subjects.map((id) => keys.createDataKey(id)));
    const unknown = randomUUID();
    const loaded = await keys.loadDataKeys([...subjects, unknown, subjects[0]!]);
    expect([...loaded.keys()].sort()).toEqual([...subjects].sort());
    subjects.forEach((id, i) => expect(loaded.get(id)?.dek.equals(created[i]!.dek)).toBe(true));
    expect(await keys.loadDataKeys([])).toEqual(new Map());
  });

  it('stores no plaintext key bytes', async () => {
    const { dek } = await keys.createDataKey(randomUUID());
    const rows = await database.sql<Record<string, unknown>[]>`select * from subject_keys`;
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      const bytes = Object.values(row).map((v) => (Buffer.isBuffer(v) ? v : Buffer.from(String(v))));
      expect(Buffer.concat(bytes).includes(dek)).toBe(false);
      expect(Buffer.concat(bytes).includes(Buffer.from(dek.toString('hex')))).toBe(false);
    }
  });

  it('still unwraps keys stored under an older KEK after rotation', async () => {
    const subjectId = randomUUID();
    const { dek } = await keys.createDataKey(subjectId);
    const rotated = parseKeyring(
      { ...keyFile, currentKekVersion: 2, keks: { ...keyFile.keks, '2': generateKeyFile().keks['1']! } },
      'rotated',
    );
    const afterRotation = dataKeys({ db: database.db, keyring: rotated });
    expect((await afterRotation.loadDataKey(subjectId))?.dek.equals(dek)).toBe(true);
    expect((await afterRotation.createDataKey(subjectId)).dek.equals(dek)).toBe(true);
  });

  it('crypto-shreds: once the data key is destroyed, the value cannot be recovered', async () => {
    const subjectId = randomUUID();
    const { dek, keyVersion } = await keys.createDataKey(subjectId);
    const ref = { subjectId, field: 'idNumber', keyVersion };
    const ciphertext = encryptField(dek, ref, '110101199003074578');

    expect(await keys.destroyDataKeys(subjectId)).toEqual({ destroyed: 1 });
    expect(await keys.destroyDataKeys(subjectId)).toEqual({ destroyed: 0 });
    expect(await keys.loadDataKey(subjectId)).toBeUndefined();
    expect(await rowsOf(subjectId)).toHaveLength(0);

    // Any key still obtainable (a fresh one for the subject, another subject's, a random one) fails.
    const replacement = await keys.createDataKey(subjectId);
    const neighbour = await keys.createDataKey(randomUUID());
    for (const candidate of [replacement.dek, neighbour.dek, newDataKey()]) {
      expect(() => decryptField(candidate, ref, ciphertext)).toThrow(CryptoError);
    }
  });
});
