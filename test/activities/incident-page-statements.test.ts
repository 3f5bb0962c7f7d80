import { randomUUID } from 'node:crypto';
import { MockActivityEnvironment } from '@temporalio/testing';
import { drizzle } from 'drizzle-orm/postgres-js';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentActivities, type PageLevelResult } from '../../activities/incidents';
import { storeIncidentText } from '../../activities/incident-records';
import * as schema from '../../db/schema';
import type { IncidentInput } from '../../domain/incident';
import { loadConfig } from '../../runtime/config';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { createLogger } from '../../runtime/logger';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { pagesOf, plainIncidentInput, seedPolicy, seedStaff, user } from '../helpers/incidents';

/**
 * What one page costs the database (issue 10): every statement the activities send, counted through postgres.js's
 * `debug` hook on their own pool, while a burst of incidents pages its level at once. A regression guard, not a
 * benchmark: the figure is statements, which the machine's load does not change.
 */
let database: TestDatabase;
let sql: postgres.Sql;
let statements = 0;
beforeAll(async () => {
  database = await createTestDatabase();
  sql = postgres(database.url, { max: 10, onnotice: () => {}, debug: () => void statements++ });
});
afterAll(async () => {
  await sql?.end({ timeout: 5 });
  await database?.drop();
});

describe('a burst of pages', () => {
  it('costs a page at most 21 statements alone and 16 in a burst, its audit group commits included', async () => {
    const db = drizzle(sql, { schema });
    const keyring = parseKeyring(generateKeyFile(), 'test');
    const acts = incidentActivities({
      db,
      keyring,
      config: loadConfig({}),
      logger: createLogger('silent'),
      clock: () => new Date(),
    });
    const responder = await seedStaff(db, keyring, 'responder');
    const policy = await seedPolicy(db, [{ targets: [user(responder.userId)], waitSeconds: 2 }]);
    const env = new MockActivityEnvironment();
    const count = 40;
    const ids = Array.from({ length: count }, () => randomUUID());
    for (const incidentId of ids) {
      const title = await storeIncidentText(db, { incidentId, kind: 'title', body: 't', createdBy: 'test' });
      const input: IncidentInput & { openedAt: number } = {
        ...plainIncidentInput(incidentId, title.id, policy, { postmortemWithinMs: 86_400_000 }),
        openedAt: Date.now(),
      };
      await env.run(acts.openIncident, input);
    }
    const page = (incidentId: string): Promise<PageLevelResult> =>
      env.run(acts.pageIncidentLevel, {
        incidentId,
        round: 1,
        cycle: 1,
        level: 1,
        targets: [user(responder.userId)],
        pagedAt: Date.now(),
        ackLinkTtlMs: 3_600_000,
      });
    // One page alone: its audit groups hold only its own changes, so the count is exact.
    statements = 0;
    await page(ids[0]!);
    const alone = statements;
    // A burst: pages that meet in the audit chain's group commit share its transaction.
    statements = 0;
    const cpu = process.cpuUsage();
    await Promise.all(ids.slice(1).map(page));
    const { user: userUs, system: systemUs } = process.cpuUsage(cpu);
    const perPage = statements / (count - 1);
    console.log(
      `incident pages: ${alone} statements for a page alone, ${perPage.toFixed(1)} per page in a burst of ${count - 1}` +
        ` (this process's CPU: ${((userUs + systemUs) / 1000 / (count - 1)).toFixed(2)} ms per page)`,
    );
    for (const incidentId of ids) expect(await pagesOf(db, incidentId)).toMatchObject([{ status: 'sent' }]);
    // Before issue 10's work: 22 alone and 18.3 per page in this burst (after: 21 and 12.5).
    expect(alone).toBeLessThanOrEqual(21);
    expect(perPage).toBeLessThanOrEqual(16);
    // A retry of a page already sent: its checks only, no message and no second event.
    statements = 0;
    expect((await page(ids[0]!)).paged).toMatchObject([{ status: 'sent' }]);
    console.log(`incident pages: ${statements} statements for a retried page`);
  });
});
