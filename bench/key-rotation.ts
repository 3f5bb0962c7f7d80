import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { unwrapDataKey, wrapDataKey } from '../activities/crypto/key-wrap';
import { connect } from '../db/client';
import { subjectKeys } from '../db/schema';
import { keyRotationWorkflowId } from '../domain/ids';
import { generateKeyFile, parseKeyring } from '../runtime/keyring';
import { resolveTemporalCli } from '../runtime/temporal-cli';
import { startDevServer } from '../runtime/temporal-server';
import { insertSubjects } from '../test/helpers/campaign-subjects';
import { keyRotation } from '../workflows';
import { compare, type ScenarioResult } from './harness';
import { ownDatabase } from './own-database';
import { startBenchWorker, type BenchWorker } from './worker';

/**
 * Key rotation over `count` subjects (data keys re-wrapped per second, from the start to the evidence: new KEK
 * version, re-wrap batches of 500 committed with their keys, a verify pass, retirement) on a dev server with a real
 * worker, against the raw unwrap + wrap loop over the same keys in memory: no Temporal, no database.
 */
export async function keyRotationBenchmark(ctx: { databaseUrl: string; count?: number }): Promise<ScenarioResult> {
  const count = ctx.count ?? 10_000;
  const work = await mkdtemp(join(tmpdir(), 'custodian-bench-key-rotation-'));
  const own = await ownDatabase(ctx.databaseUrl, 'key_rotation');
  const database = connect(own.url);
  const keyring = parseKeyring(generateKeyFile(), 'bench');
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Installed by an earlier scenario of the same run.
  }
  const cli = await resolveTemporalCli(process.env, () => {});
  if (!cli.path)
    throw new Error('the key-rotation benchmark needs a Temporal CLI (TEMPORAL_CLI_PATH, PATH, cache or go)');
  const server = await startDevServer({ cliPath: cli.path });
  let bench: BenchWorker | undefined;
  try {
    await insertSubjects(database.db, keyring, count);
    const keys = await database.db.select().from(subjectKeys);

    // Baseline: the same keys, unwrapped and wrapped under another KEK in a plain loop.
    const target = parseKeyring(generateKeyFile(), 'bench-target');
    const baselineKeyring = {
      ...keyring,
      keks: new Map([...keyring.keks, [2, target.keks.get(1)!]]),
      currentKekVersion: 2,
    };
    const baselineStarted = performance.now();
    let wrapped = 0;
    for (const key of keys) {
      const { wrappedKey } = wrapDataKey(baselineKeyring, key, unwrapDataKey(keyring, key));
      wrapped += wrappedKey.length > 0 ? 1 : 0;
    }
    const baselineMs = performance.now() - baselineStarted;
    if (wrapped !== keys.length) throw new Error('baseline wrapped fewer keys than it read');

    bench = await startBenchWorker({
      address: server.address,
      name: 'key-rotation',
      database,
      keyring,
      stagingDir: work,
    });
    const { client, worker, taskQueue } = bench;
    const rotationId = randomUUID();
    let rotationMs = 0;
    const evidence = await worker.runUntil(async () => {
      const started = performance.now();
      const result = await client.workflow.execute(keyRotation, {
        taskQueue,
        workflowId: keyRotationWorkflowId(rotationId),
        args: [{ rotationId, requestedBy: 'bench' }],
      });
      rotationMs = performance.now() - started;
      return result;
    });
    if (evidence.keysRewrapped !== keys.length || evidence.keysVerified !== keys.length)
      throw new Error(
        `rotation re-wrapped ${evidence.keysRewrapped} and verified ${evidence.keysVerified} of ${keys.length}`,
      );
    return compare(
      `key rotation: ${keys.length.toLocaleString('en')} data keys (keys/s)`,
      { label: 'unwrap + wrap loop in memory (no Temporal, no DB)', perSecond: keys.length / (baselineMs / 1000) },
      { label: 'key-rotation-{id}: new KEK, batches, verify, retire', perSecond: keys.length / (rotationMs / 1000) },
    );
  } finally {
    await bench?.close();
    await server.stop();
    await database.close();
    await own.drop();
    await rm(work, { recursive: true, force: true });
  }
}
