import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MockActivityEnvironment } from '@temporalio/testing';
import { sql as drizzleSql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importActivities, withoutValues, type ImportBatchesResult } from '../../activities/subject-import';
import { commitBatch } from '../../activities/subject-import-batch';
import { prepareBatch } from '../../activities/subject-prepare';
import { subjectRegistry } from '../../activities/subjects';
import { defaultCatalog, type Catalog } from '../../domain/catalog';
import type { ImportMode, ImportReport } from '../../domain/subject-import';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import type { TestDatabase } from '../helpers/db';
import { closeScratch, openScratch, stageAndBegin } from '../helpers/scratch';
import { catalogWith, workEmailEntry } from '../helpers/catalog';
import { fakeSubject } from '../helpers/subject-files';

let database: TestDatabase;
let dir: string;
const keyring = parseKeyring(generateKeyFile(), 'test');

beforeAll(async () => ({ database, dir } = await openScratch('custodian-import-edges-')));
afterAll(() => closeScratch({ database, dir }));

const activitiesFor = (catalog: Catalog = defaultCatalog) =>
  importActivities({ db: database.db, keyring, catalog, stagingDir: join(dir, 'staging'), prepareThreads: 0 });
let activities: ReturnType<typeof importActivities>;
beforeAll(() => {
  activities = activitiesFor();
});

const stage = async (lines: string[], mode: ImportMode = 'insert', acts = activities) => {
  const file = join(dir, `${randomUUID()}.src`);
  await writeFile(file, `${lines.join('\n')}\n`);
  return stageAndBegin(acts, join(dir, 'staging'), file, mode);
};

const runBatches = (importId: string, acts = activities): Promise<ImportBatchesResult> =>
  new MockActivityEnvironment().run(acts.importSubjectBatches, {
    importId,
    mode: 'insert' as const,
    cursor: { offset: 0, line: 1 },
    batchLines: 100,
    maxBatches: 1000,
  });

const abortedSessions = async () =>
  Number(
    (
      await database.sql`select count(*) n from pg_stat_activity
        where datname = current_database() and state = 'idle in transaction (aborted)'`
    )[0]!.n,
  );

/** Prepares these subjects as one batch spanning the whole (staged) file, to tamper with before commit. */
const prepareWhole = (subjects: unknown[]) =>
  prepareBatch(
    { keyring, catalog: defaultCatalog },
    {
      lines: subjects.map((s, i) => ({ line: i + 1, text: JSON.stringify(s) })),
      start: { offset: 0, line: 1 },
      end: { offset: 1, line: subjects.length + 1 },
      atEnd: true,
    },
  );

describe('values PostgreSQL cannot store', () => {
  it('isolates the lines the database refuses inside a batch, commits the rest, and releases the connection at once', async () => {
    const subjects = Array.from({ length: 40 }, (_, i) => fakeSubject(i, 'NUL'));
    const importId = await stage(subjects.map((s) => JSON.stringify(s)));
    // Validation rejects these values now; values that still get past it must not sink their batch.
    const prepared = await prepareWhole(subjects);
    const city = prepared.valid[3]!.speculative!.fields.find((f) => f.field === 'city')!;
    city.plainValue = 'Bei\u0000jing';
    prepared.valid[17]!.speculative!.subject.retentionUntil = '0000-01-01';
    prepared.valid[29]!.speculative!.fields.find((f) => f.field === 'city')!.plainValue = 'Shang\u0000hai';

    const started = Date.now();
    const outcome = await commitBatch(
      { db: database.db, keyring, catalog: defaultCatalog },
      importId,
      'insert',
      prepared,
    );
    const elapsed = Date.now() - started;
    expect(outcome.counts).toEqual({ imported: 37, updated: 0, duplicates: 0, rejected: 3 });
    // The failed COPY used to hold its connection "idle in transaction (aborted)" for the 120 s COPY limit.
    expect(elapsed).toBeLessThan(10_000);
    expect(await abortedSessions()).toBe(0);

    const rejects =
      await database.sql`select line, reason, message from import_rejects where import_id = ${importId} order by line`;
    expect(rejects.map((r) => [r.line, r.reason])).toEqual([
      [4, 'rejected_by_database'],
      [18, 'rejected_by_database'],
      [30, 'rejected_by_database'],
    ]);
    expect(JSON.stringify(rejects)).not.toMatch(/Bei|jing|Shang|0000-01-01/);
    expect(rejects.map((r) => r.message)).toContain('the database refused a value on this line (SQLSTATE 22008)');
    const [row] =
      await database.sql`select imported, rejected, processed_lines from subject_imports where id = ${importId}`;
    expect(row).toEqual({ imported: 37, rejected: 3, processed_lines: 40 });
    const [batch] = await database.sql`select imported, rejected from import_batches where import_id = ${importId}`;
    expect(batch).toEqual({ imported: 37, rejected: 3 });
    expect(Number((await database.sql`select count(*) n from subjects where import_id = ${importId}`)[0]!.n)).toBe(37);
  });

  it('isolates a refused line among updates too, and updates the rest', async () => {
    const subjects = Array.from({ length: 12 }, (_, i) => fakeSubject(i, 'UPD'));
    await runBatches(await stage(subjects.map((s) => JSON.stringify(s))));
    const changed = subjects.map((s) => ({ ...s, jurisdiction: 'EU', fields: { ...s.fields, city: 'Lyon' } }));
    const importId = await stage(
      changed.map((s) => JSON.stringify(s)),
      'upsert',
    );
    const prepared = await prepareWhole(changed);
    prepared.valid[5]!.subject.retentionUntil = '0000-01-01';
    const outcome = await commitBatch(
      { db: database.db, keyring, catalog: defaultCatalog },
      importId,
      'upsert',
      prepared,
    );
    expect(outcome.counts).toEqual({ imported: 0, updated: 11, duplicates: 0, rejected: 1 });
    const rows = await database.sql`select s.external_ref, s.jurisdiction, f.plain_value from subjects s
      join subject_fields f on f.subject_id = s.id and f.field = 'city' where s.external_ref like 'UPD-%' order by 1`;
    expect(rows.filter((r) => r.jurisdiction === 'EU' && r.plain_value === 'Lyon').length).toBe(11);
    expect(rows[5]).toMatchObject({ external_ref: 'UPD-000005', jurisdiction: 'CN', plain_value: 'Testville' });
  });

  it('rejects such values per line through the import itself, with a reason', async () => {
    const ok = (i: number) => JSON.stringify(fakeSubject(i, 'BADV'));
    const importId = await stage([
      ok(0),
      JSON.stringify({ ...fakeSubject(1, 'BADV'), fields: { city: 'Bei\u0000jing' } }),
      JSON.stringify({ ...fakeSubject(2, 'BADV'), retentionUntil: '0000-01-01' }),
      JSON.stringify({ ...fakeSubject(3, 'BADV'), fields: { name: 'a\ud800' } }),
      '{"externalRef":"BADV-4","jurisdiction":"CN","fields":{"__proto__":"x"}}',
      JSON.stringify({ ...fakeSubject(5, 'BADV'), fields: { zhang_13800000001: 'x' } }),
      ok(6),
    ]);
    const result = await runBatches(importId);
    expect(result.counts).toEqual({ imported: 2, updated: 0, duplicates: 0, rejected: 5 });
    const rejects =
      await database.sql`select line, reason, message from import_rejects where import_id = ${importId} order by line`;
    expect(rejects.map((r) => [r.line, r.reason])).toEqual([
      [2, 'invalid_character'],
      [3, 'invalid_value'],
      [4, 'invalid_character'],
      [5, 'invalid_field_name'],
      [6, 'invalid_field_name'],
    ]);
    expect(JSON.stringify(rejects)).not.toMatch(/Bei|jing|0000-01-01|zhang|13800000001/);
  });

  it('reports a database error by its SQLSTATE only, never with the value it quotes', async () => {
    const raw = await database.sql`select ${'0000-01-01'}::date`.catch((e: unknown) => e);
    const viaDrizzle = await database.db.execute(drizzleSql`select ${'0000-01-01'}::date`).catch((e: unknown) => e);
    for (const err of [raw, viaDrizzle]) {
      expect(String((err as Error).message) + String((err as Error).cause ?? '')).toContain('0000-01-01');
      const reported = withoutValues(err) as Error;
      expect(reported).toMatchObject({
        type: 'DatabaseError',
        message: 'PostgreSQL refused a statement (SQLSTATE 22008)',
      });
      expect(`${reported.message}${reported.stack}${String(reported.cause ?? '')}`).not.toContain('0000-01-01');
    }
  });
});

describe('field names', () => {
  it('keeps unclassified field names out of the immutable audit: counts there, names in the report', async () => {
    const importId = await stage([JSON.stringify({ ...fakeSubject(0, 'UNC'), fields: { loyaltyTier: 'gold' } })]);
    await runBatches(importId);
    const report: ImportReport = await new MockActivityEnvironment().run(activities.finishSubjectImport, {
      importId,
      status: 'completed' as const,
    });
    expect(report.unclassifiedFields).toEqual(['loyaltyTier']);
    const [entry] =
      await database.sql`select details from audit_log where target_id = ${importId} and action = 'subject-import.completed'`;
    expect(entry!.details).toMatchObject({ imported: 1, unclassifiedFieldCount: 1 });
    expect(JSON.stringify(entry!.details)).not.toContain('loyaltyTier');
  });
});

describe('closing an import that never began', () => {
  it('keeps the real cause instead of failing with ImportNotFound', async () => {
    const importId = randomUUID();
    const report = await new MockActivityEnvironment().run(activities.finishSubjectImport, {
      importId,
      status: 'failed' as const,
      error: 'StagedFileMissing',
    });
    expect(report).toMatchObject({ importId, status: 'failed', imported: 0 });
    const [entry] = await database.sql`select action, details from audit_log where target_id = ${importId}`;
    expect(entry).toMatchObject({ action: 'subject-import.failed', details: { error: 'StagedFileMissing' } });
  });
});

describe('blind-index normalisation from the catalog', () => {
  it('normalises a blind-indexed field an override adds as its entry says', async () => {
    const catalog = catalogWith({
      workEmail: workEmailEntry,
      passportNumber: {
        classification: 'sensitive',
        purposes: ['identity-verification'],
        retention: 'P5Y',
        blindIndex: true,
        normalise: 'idNumber',
      },
    });
    const acts = activitiesFor(catalog);
    const line = {
      ...fakeSubject(0, 'NORM'),
      fields: { workEmail: ' Zhang.San@Example.COM ', passportNumber: 'e 1234 567x' },
    };
    await runBatches(await stage([JSON.stringify(line)], 'insert', acts), acts);
    const registry = subjectRegistry({ db: database.db, keyring, catalog });
    expect((await registry.findByField('workEmail', 'zhang.san@example.com')).map((s) => s.externalRef)).toEqual([
      'NORM-000000',
    ]);
    expect((await registry.findByField('passportNumber', 'E1234567X')).map((s) => s.externalRef)).toEqual([
      'NORM-000000',
    ]);
  });
});
