import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stagedFilePath } from '../../activities/import-staging';
import { sweepImportStaging } from '../../activities/import-sweep';
import { importWorkflowId } from '../../domain/ids';
import type { SubjectImportInput } from '../../domain/subject-import';
import { subjectImport } from '../../workflows';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';
import { waitFor } from '../helpers/wait';

let database: TestDatabase;
let temporal: TestTemporal;
let stagingDir: string;

beforeAll(async () => {
  stagingDir = join(await mkdtemp(join(tmpdir(), 'custodian-sweep-')), 'imports');
  await mkdir(stagingDir, { recursive: true });
  [database, temporal] = await Promise.all([createTestDatabase(), connectTestTemporal()]);
});
afterAll(async () => {
  await temporal?.close();
  await database?.drop();
  await rm(join(stagingDir, '..'), { recursive: true, force: true });
});

const HOUR = 3_600_000;
const plaintext = '{"externalRef":"C-1","jurisdiction":"CN","fields":{"name":"测试用户"}}\n';

/** A staged file and, unless `row` is false, its import row with the given status. */
const importWith = async (status: 'running' | 'completed' | 'cancelled' | false, ageMs = 0) => {
  const importId = randomUUID();
  const path = stagedFilePath(stagingDir, importId);
  await writeFile(path, plaintext);
  if (ageMs) await utimes(path, new Date(Date.now() - ageMs), new Date(Date.now() - ageMs));
  if (status) {
    await database.sql`insert into subject_imports (id, status, mode, requested_by, total_lines, staged_bytes, imported)
      values (${importId}, ${status}, 'insert', 'test', 10, 100, 3)`;
  }
  return { importId, path };
};

/** The import's workflow on a task queue no worker polls: it stays running until closed from outside. */
const startWorkflow = (importId: string, options: { workflowExecutionTimeout?: string } = {}) => {
  const input: SubjectImportInput = { importId, mode: 'insert', requestedBy: 'test', totalLines: 10, stagedBytes: 100 };
  return temporal.client.workflow.start(subjectImport, {
    taskQueue: temporal.taskQueue('nobody-polls'),
    workflowId: importWorkflowId(importId),
    args: [input],
    ...options,
  });
};

describe('sweeping the import staging directory', () => {
  it('removes stale partial uploads and the plaintext of closed imports, and closes imports whose workflow ended unfinished', async () => {
    const stalePartial = join(stagingDir, `${randomUUID()}.ndjson.partial`);
    const freshPartial = join(stagingDir, `${randomUUID()}.ndjson.partial`);
    await writeFile(stalePartial, plaintext.repeat(100));
    await writeFile(freshPartial, plaintext);
    await utimes(stalePartial, new Date(Date.now() - 2 * HOUR), new Date(Date.now() - 2 * HOUR));

    const completed = await importWith('completed');
    const live = await importWith('running');
    await startWorkflow(live.importId);
    const terminated = await importWith('running');
    await (await startWorkflow(terminated.importId)).terminate('operator');
    const timedOut = await importWith('running');
    const timingOut = await startWorkflow(timedOut.importId, { workflowExecutionTimeout: '1 second' });
    await waitFor(
      async () => ((await timingOut.describe()).status.name === 'TIMED_OUT' ? true : undefined),
      'the workflow to time out',
    );
    const vanished = await importWith('running');
    const orphanStale = await importWith(false, 2 * HOUR);
    const orphanFresh = await importWith(false);

    const result = await sweepImportStaging({
      db: database.db,
      stagingDir,
      client: temporal.client,
      olderThanMs: HOUR,
    });

    expect(existsSync(stalePartial)).toBe(false);
    expect(existsSync(freshPartial)).toBe(true);
    for (const gone of [completed, terminated, timedOut, vanished, orphanStale])
      expect(existsSync(gone.path)).toBe(false);
    for (const kept of [live, orphanFresh]) expect(existsSync(kept.path)).toBe(true);
    expect(result.partialsRemoved).toBe(1);
    expect(result.stagedRemoved).toBe(5);
    expect(result.closed.sort((a, b) => a.error.localeCompare(b.error))).toEqual([
      { importId: terminated.importId, error: 'terminated' },
      { importId: timedOut.importId, error: 'timed_out' },
      { importId: vanished.importId, error: 'workflow_not_found' },
    ]);

    const rows = await database.sql`select id, status, error from subject_imports`;
    const byId = new Map(rows.map((r) => [r.id as string, [r.status, r.error]]));
    expect(byId.get(live.importId)).toEqual(['running', null]);
    expect(byId.get(terminated.importId)).toEqual(['failed', 'terminated']);
    expect(byId.get(timedOut.importId)).toEqual(['failed', 'timed_out']);
    expect(byId.get(completed.importId)).toEqual(['completed', null]);

    const audit = await database.sql`select actor, action, target_id, details from audit_log order by seq`;
    expect(audit.map((a) => [a.actor, a.action, a.target_id])).toEqual(
      expect.arrayContaining([
        ['system', 'subject-import.failed', terminated.importId],
        ['system', 'subject-import.failed', timedOut.importId],
      ]),
    );
    expect(audit.find((a) => a.target_id === terminated.importId)!.details).toMatchObject({
      error: 'terminated',
      imported: 3,
    });
    expect(JSON.stringify(audit)).not.toContain('测试用户');

    // Idempotent: nothing more to do, nothing audited twice.
    const again = await sweepImportStaging({ db: database.db, stagingDir, client: temporal.client, olderThanMs: HOUR });
    expect(again).toEqual({ partialsRemoved: 0, stagedRemoved: 0, closed: [] });
    expect((await database.sql`select count(*) n from audit_log`)[0]!.n).toBe(String(audit.length));
  });
});
