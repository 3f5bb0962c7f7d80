import type postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../../db/client';
import { loadConfig } from '../../runtime/config';
import { poolOptions } from '../../runtime/provision';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

/** The first row of a query that returns one. */
const first = async <T>(rows: PromiseLike<readonly T[]>): Promise<T> => (await rows)[0]!;

let database: TestDatabase;
beforeAll(async () => {
  database = await createTestDatabase();
});
afterAll(() => database?.drop());

const sessions = async (applicationName: string) => {
  const { n } = await first(database.sql<{ n: number }[]>`
    select count(*)::int as n from pg_stat_activity where application_name = ${applicationName} and datname = current_database()`);
  return n;
};

describe('database pools', () => {
  it('default to separate API and worker settings, overridable from the environment', () => {
    const config = loadConfig({});
    expect(poolOptions(config, 'api')).toEqual({
      applicationName: 'custodian-api',
      max: 10,
      statementTimeoutMs: 15_000,
      idleInTransactionTimeoutMs: 10_000,
    });
    expect(poolOptions(config, 'worker')).toEqual({
      applicationName: 'custodian-worker',
      max: 10,
      statementTimeoutMs: 120_000,
      idleInTransactionTimeoutMs: 30_000,
    });
    const tuned = loadConfig({ CUSTODIAN_WORKER_DB_POOL_MAX: '4', CUSTODIAN_API_STATEMENT_TIMEOUT_MS: '0' });
    expect(poolOptions(tuned, 'worker').max).toBe(4);
    expect(poolOptions(tuned, 'api').statementTimeoutMs).toBe(0);
  });

  it('has the server cut a session left idle in an aborted transaction, and the pool recovers', async () => {
    const pool = connect(database.url, {
      max: 1,
      applicationName: 'custodian-idle-test',
      idleInTransactionTimeoutMs: 300,
    });
    try {
      let pid = 0;
      let release = () => {};
      const held = new Promise<void>((r) => (release = r));
      const transaction = pool.sql.begin(async (tx) => {
        pid = (await first(tx<{ pid: number }[]>`select pg_backend_pid() as pid`)).pid;
        // As a failed COPY leaves it: 'idle in transaction (aborted)', the client busy elsewhere.
        await tx`select 1/0`.catch(() => {});
        await held;
        // Then fails, as the COPY's own time limit does; postgres.js must not write its ROLLBACK to the dead session.
        throw new Error('COPY did not complete');
      });
      // The server ends the session; the client learns it as a closed connection.
      await expect(transaction).rejects.toMatchObject({ code: 'CONNECTION_CLOSED' });
      release();
      expect(await database.sql`select 1 from pg_stat_activity where pid = ${pid}`).toHaveLength(0);
      const answer = await first(
        pool.sql<{ answer: number; pid: number }[]>`select 42 as answer, pg_backend_pid() as pid`,
      );
      expect(answer.answer).toBe(42);
      expect(answer.pid).not.toBe(pid);
    } finally {
      await pool.close();
    }
  });

  it('has the server cancel a statement past its time limit', async () => {
    const pool = connect(database.url, { max: 1, statementTimeoutMs: 200 });
    try {
      await expect(pool.sql`select pg_sleep(30)`).rejects.toMatchObject({ code: '57014' });
      expect((await pool.sql`select 1 as one`)[0]?.one).toBe(1);
    } finally {
      await pool.close();
    }
  });

  it('keeps the API answering while every worker connection is held', async () => {
    const api = connect(database.url, { max: 2, applicationName: 'custodian-api-test' });
    const worker = connect(database.url, { max: 2, applicationName: 'custodian-worker-test' });
    const held: postgres.ReservedSql[] = [];
    try {
      for (let i = 0; i < 2; i++) {
        const reserved = await worker.sql.reserve();
        await reserved`begin`;
        await reserved`select 1`;
        held.push(reserved);
      }
      expect(await sessions('custodian-worker-test')).toBe(2);
      let queuedDone = false;
      const queued = worker.sql`select 'worker' as who`.then((rows) => {
        queuedDone = true;
        return rows;
      });
      // The worker pool is exhausted: its next query waits, while the API's pool answers.
      for (let i = 0; i < 5; i++) expect((await api.sql`select 'api' as who`)[0]?.who).toBe('api');
      expect(queuedDone).toBe(false);
      expect(await sessions('custodian-worker-test')).toBe(2);
      for (const reserved of held.splice(0)) {
        await reserved`rollback`;
        reserved.release();
      }
      expect((await queued)[0]?.who).toBe('worker');
    } finally {
      for (const reserved of held) reserved.release();
      await api.close();
      await worker.close();
    }
  });
});
