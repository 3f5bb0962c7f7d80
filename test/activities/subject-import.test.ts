import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importActivities, type ImportBatchesResult, type ImportHeartbeat } from '../../activities/subject-import';
import { subjectRegistry } from '../../activities/subjects';
import { defaultCatalog } from '../../domain/catalog';
import type { ImportMode, ImportReport } from '../../domain/subject-import';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import type { TestDatabase } from '../helpers/db';
import { closeScratch, openScratch, stageAndBegin } from '../helpers/scratch';
import { badLines, fakeSubject, personalValues, writeSubjectFile } from '../helpers/subject-files';

let database: TestDatabase;
let dir: string;
const keyring = parseKeyring(generateKeyFile(), 'test');

beforeAll(async () => ({ database, dir } = await openScratch('custodian-import-')));
afterAll(() => closeScratch({ database, dir }));

// Batches are prepared in a worker thread by default; `inline` prepares them on the main thread.
const instances = new Map<boolean, ReturnType<typeof importActivities>>();
const activities = (inline = false) => {
  const existing = instances.get(inline);
  if (existing) return existing;
  const created = importActivities({
    db: database.db,
    keyring,
    catalog: defaultCatalog,
    stagingDir: join(dir, 'staging'),
    prepareThreads: inline ? 0 : 1,
  });
  instances.set(inline, created);
  return created;
};

const stage = (file: string, mode: ImportMode = 'insert') =>
  stageAndBegin(activities(), join(dir, 'staging'), file, mode);

const batches = (
  importId: string,
  options: { mode?: ImportMode; batchLines?: number; maxBatches?: number; heartbeat?: ImportHeartbeat } = {},
): Promise<ImportBatchesResult> =>
  new MockActivityEnvironment({ heartbeatDetails: options.heartbeat }).run(activities().importSubjectBatches, {
    importId,
    mode: options.mode ?? 'insert',
    cursor: { offset: 0, line: 1 },
    batchLines: options.batchLines ?? 100,
    maxBatches: options.maxBatches ?? 1_000_000,
  });

const finish = (importId: string): Promise<ImportReport> =>
  new MockActivityEnvironment().run(activities().finishSubjectImport, { importId, status: 'completed' as const });

const count = async (query: string, ...params: unknown[]) =>
  Number((await database.sql.unsafe(query, params as never[]))[0]!.n);

describe('import activities', () => {
  it('imports a file with bad lines: exact counts, rejects by line and reason, nothing personal in clear', async () => {
    const file = join(dir, 'mixed.ndjson');
    const generated = await writeSubjectFile(file, 1000, {
      prefix: 'M',
      bad: badLines((k) => `M-${String(k).padStart(6, '0')}`),
    });
    const importId = await stage(file);
    const result = await batches(importId, { batchLines: 97 });
    expect(result.done).toBe(true);
    expect(result.counts).toEqual({ imported: 975, updated: 0, duplicates: 0, rejected: 25 });
    const report = await finish(importId);
    expect(report).toMatchObject({ status: 'completed', total: 1000, imported: 975, rejected: 25, duplicates: 0 });

    const rejects =
      await database.sql`select line, reason, message from import_rejects where import_id = ${importId} order by line`;
    expect(rejects.map((r) => [r.line, r.reason])).toEqual([...generated.rejects]);

    expect(await count(`select count(*) n from subjects where import_id = $1`, importId)).toBe(975);
    expect(
      await count(
        `select count(*) n from subject_keys k join subjects s on s.id = k.subject_id where s.import_id = $1`,
        importId,
      ),
    ).toBe(975);
    expect(
      await count(
        `select count(*) n from subject_fields where classification <> 'general' and plain_value is not null`,
      ),
    ).toBe(0);
    expect(
      await count(`select count(*) n from subject_fields where field = 'city' and plain_value = 'Testville'`),
    ).toBe(975);
    expect(await count(`select count(*) n from subject_fields where blind_index is not null`)).toBe(975 * 3);

    // Scan the raw rows, as text (bytea as hex) and as bytes, for personal and sensitive values.
    const raw =
      await database.sql`select t::text as row, coalesce(ciphertext, ''::bytea) as ciphertext from subject_fields t`;
    // Every 7th subject: the scan is quadratic, and one leak pattern would show in any of them.
    const values = Array.from({ length: 140 }, (_, i) => personalValues(i * 7, 'M')).flat();
    const rows = raw.map((r) => r.row as string).join('\n');
    const bytes = Buffer.concat(raw.map((r) => r.ciphertext as Buffer));
    for (const value of values) {
      expect(rows.includes(value), value).toBe(false);
      expect(rows.includes(Buffer.from(value).toString('hex')), value).toBe(false);
      expect(bytes.includes(Buffer.from(value)), value).toBe(false);
    }
  });

  it('a retried or resumed batch run never writes or counts a batch twice', async () => {
    const file = join(dir, 'retry.ndjson');
    await writeSubjectFile(file, 500, { prefix: 'R' });
    const importId = await stage(file);
    const heartbeats: ImportHeartbeat[] = [];
    const env = new MockActivityEnvironment();
    env.on('heartbeat', (d: ImportHeartbeat) => heartbeats.push(d));
    const first = await env.run(activities(true).importSubjectBatches, {
      importId,
      mode: 'insert' as const,
      cursor: { offset: 0, line: 1 },
      batchLines: 50,
      maxBatches: 4,
    });
    expect(first).toMatchObject({ done: false, batches: 4, counts: { imported: 200 } });
    expect(heartbeats.map((h) => h.counts.imported)).toEqual([50, 100, 150, 200]);

    // An attempt that lost every heartbeat starts over at the input cursor and finds the batches committed.
    const again = await batches(importId, { batchLines: 50, maxBatches: 4 });
    expect(again).toEqual(first);
    // An attempt resuming from the second heartbeat counts the rest from their recorded rows.
    const resumed = await batches(importId, { batchLines: 50, heartbeat: heartbeats[1] });
    expect(resumed).toMatchObject({ done: true, counts: { imported: 500, duplicates: 0 }, cursor: { line: 501 } });

    expect(await count(`select count(*) n from subjects where import_id = $1`, importId)).toBe(500);
    const [row] =
      await database.sql`select imported, duplicates, processed_lines from subject_imports where id = ${importId}`;
    expect(row).toEqual({ imported: 500, duplicates: 0, processed_lines: 500 });
  });

  it('a second import of the same file counts every valid line as a duplicate', async () => {
    const file = join(dir, 'twice.ndjson');
    await writeSubjectFile(file, 300, {
      prefix: 'T',
      bad: badLines((k) => `T-${String(k).padStart(6, '0')}`).slice(15, 20),
    });
    const firstId = await stage(file);
    expect((await batches(firstId)).counts).toEqual({ imported: 295, updated: 0, duplicates: 0, rejected: 5 });
    const secondId = await stage(file);
    // The in-file repeats now meet subjects of another import: duplicates too.
    expect((await batches(secondId)).counts).toEqual({ imported: 0, updated: 0, duplicates: 300, rejected: 0 });
    expect(await count(`select count(*) n from subjects where external_ref like 'T-%'`)).toBe(295);
  });

  it('upsert updates the subjects that exist, re-encrypted under their own data key', async () => {
    const original = join(dir, 'upsert-a.ndjson');
    await writeSubjectFile(original, 20, { prefix: 'U' });
    await batches(await stage(original));
    const changed = join(dir, 'upsert-b.ndjson');
    const { writeFile } = await import('node:fs/promises');
    const lines = Array.from({ length: 25 }, (_, i) => {
      const s = fakeSubject(i, 'U');
      return JSON.stringify({ ...s, jurisdiction: 'EU', locale: 'en', fields: { ...s.fields, name: `Renamed ${i}` } });
    });
    await writeFile(changed, `${lines.join('\n')}\n${lines[3]}\n`);
    const upsertId = await stage(changed, 'upsert');
    expect((await batches(upsertId, { mode: 'upsert', batchLines: 10 })).counts).toEqual({
      imported: 5,
      updated: 20,
      duplicates: 0,
      rejected: 1,
    });
    const registry = subjectRegistry({ db: database.db, keyring, catalog: defaultCatalog });
    const [subject] = await registry.findByExternalRef('U-000003');
    expect(subject).toMatchObject({ jurisdiction: 'EU', importId: upsertId });
    const revealed = await registry.reveal(subject!.id, { actor: 'test', purpose: 'customer-service' });
    expect(revealed?.subject.fields.name?.value).toBe('Renamed 3');
    expect(revealed?.subject.fields.phone?.value).toBe('13800000003');
  });

  it('imports the example file, reporting its unclassified field', async () => {
    const example = new URL('../../examples/subjects.ndjson', import.meta.url).pathname;
    const importId = await stage(example);
    expect((await batches(importId)).counts).toEqual({ imported: 5, updated: 0, duplicates: 0, rejected: 0 });
    expect(await finish(importId)).toMatchObject({ total: 5, imported: 5, unclassifiedFields: ['loyaltyTier'] });
    const [field] =
      await database.sql`select classification, classified, plain_value from subject_fields where field = 'loyaltyTier'`;
    expect(field).toEqual({ classification: 'personal', classified: false, plain_value: null });
  });
});
