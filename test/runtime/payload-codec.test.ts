import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Client, WorkflowFailedError } from '@temporalio/client';
import { ApplicationFailure, defaultPayloadConverter, type Payload } from '@temporalio/common';
// @temporalio/proto is CommonJS: Node's ESM loader exposes it only as a default export.
import proto from '@temporalio/proto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { importWorkflowId } from '../../domain/ids';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { AesGcmPayloadCodec, dataConverterFor } from '../../runtime/payload-codec';
import { createWorker } from '../../runtime/worker';
import { subjectImport } from '../../workflows';
import { activitiesFor } from '../helpers/activities';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { connectTestTemporal, type TestTemporal } from '../helpers/temporal';

const secretValue = { subjectId: 's-1', note: 'customer 王小明 phone 13800138000' };
const payload = (): Payload => defaultPayloadConverter.toPayload(secretValue);
const key = (keyId: string) => ({ keyId, key: randomBytes(32) });

describe('AesGcmPayloadCodec', () => {
  it('round-trips payloads, metadata included', async () => {
    const codec = new AesGcmPayloadCodec(key('k1'));
    const [encoded] = await codec.encode([payload()]);
    const [decoded] = await codec.decode([encoded!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(secretValue);
    expect(Buffer.from(decoded!.metadata!.encoding!).toString()).toBe('json/plain');
    expect(await codec.encode([])).toEqual([]);
  });

  it('leaves no plaintext in the encoded payload', async () => {
    const [encoded] = await new AesGcmPayloadCodec(key('k1')).encode([payload()]);
    expect(Buffer.from(encoded!.metadata!.encoding!).toString()).toBe('binary/encrypted');
    expect(Buffer.from(encoded!.metadata!['encryption-key-id']!).toString()).toBe('k1');
    const bytes = Buffer.from(encoded!.data!);
    for (const fragment of ['13800138000', '王小明', 'json/plain', 'subjectId']) {
      expect(bytes.includes(Buffer.from(fragment))).toBe(false);
    }
  });

  it('fails clearly for an unknown key id, and for altered bytes', async () => {
    const [encoded] = await new AesGcmPayloadCodec(key('k1')).encode([payload()]);
    await expect(new AesGcmPayloadCodec(key('k2')).decode([encoded!])).rejects.toThrow(/codec key k1/);
    const tampered = { ...encoded!, data: Buffer.from(encoded!.data!) };
    tampered.data[20]! ^= 1;
    await expect(new AesGcmPayloadCodec(key('k1')).decode([tampered])).rejects.toThrow(/authentication/);
  });

  it('decodes payloads written under a retired key, and encodes under the current one', async () => {
    const old = key('k1');
    const [written] = await new AesGcmPayloadCodec(old).encode([payload()]);
    const rotated = new AesGcmPayloadCodec(key('k2'), new Map([[old.keyId, old.key]]));
    const [decoded] = await rotated.decode([written!]);
    expect(defaultPayloadConverter.fromPayload(decoded!)).toEqual(secretValue);
    const [fresh] = await rotated.encode([payload()]);
    expect(Buffer.from(fresh!.metadata!['encryption-key-id']!).toString()).toBe('k2');
  });

  it('passes through payloads that are not encrypted', async () => {
    const plain = payload();
    expect(await new AesGcmPayloadCodec(key('k1')).decode([plain])).toEqual([plain]);
  });

  it('is built from the keyring', async () => {
    const keyring = parseKeyring(generateKeyFile(), 'test');
    const [codec] = dataConverterFor(keyring).payloadCodecs;
    const [encoded] = await codec!.encode([payload()]);
    expect(Buffer.from(encoded!.metadata!['encryption-key-id']!).toString()).toBe(keyring.codec.keyId);
    expect(defaultPayloadConverter.fromPayload((await codec!.decode([encoded!]))[0]!)).toEqual(secretValue);
  });
});

describe('failures on the real dev server', () => {
  let database: TestDatabase;
  let temporal: TestTemporal;
  let stagingDir: string;
  const repoRoot = fileURLToPath(new URL('../../', import.meta.url));

  beforeAll(async () => {
    stagingDir = await mkdtemp(join(tmpdir(), 'custodian-failure-codec-'));
    [database, temporal] = await Promise.all([createTestDatabase(), connectTestTemporal()]);
  });
  afterAll(async () => {
    await temporal?.close();
    await database?.drop();
    await rm(stagingDir, { recursive: true, force: true });
  });

  it('keeps failure messages and stack traces out of the stored history', async () => {
    const taskQueue = temporal.taskQueue('failure-codec');
    // No prebuilt bundle: the worker bundles the workflows itself, as in production, with the failure converter.
    const worker = await createWorker({
      connection: temporal.nativeConnection,
      namespace: 'default',
      taskQueue,
      activities: activitiesFor({ database, keyring: temporal.keyring, stagingDir }),
      dataConverter: temporal.dataConverter,
    });
    // Nothing is staged, so the import fails with StagedFileMissing, whose message names the import.
    const importId = randomUUID();
    const message = `the staged file of import ${importId} is missing`;
    const handle = await temporal.client.workflow.start(subjectImport, {
      taskQueue,
      workflowId: importWorkflowId(importId),
      args: [{ importId, mode: 'insert', requestedBy: 'test', totalLines: 1, stagedBytes: 1 }],
    });
    const failed: unknown = await worker.runUntil(
      handle.result().then(
        () => undefined,
        (err: unknown) => err,
      ),
    );

    // With the codec the message, type and stack trace are all there.
    expect(failed).toBeInstanceOf(WorkflowFailedError);
    const causes: Error[] = [];
    for (let e = (failed as Error).cause; e instanceof Error; e = e.cause) causes.push(e);
    const missing = causes.find((e) => e instanceof ApplicationFailure && e.type === 'StagedFileMissing');
    expect(missing?.message).toBe(message);
    expect(missing?.stack).toContain(join(repoRoot, 'activities'));

    // Without the codec nothing of them is readable: not in the history as JSON, nor in its protobuf bytes.
    const plainClient = new Client({ connection: temporal.client.connection, namespace: 'default' });
    const history = await plainClient.workflow.getHandle(handle.workflowId).fetchHistory();
    const json = JSON.stringify(history);
    const bytes = Buffer.from(proto.temporal.api.history.v1.History.encode(history).finish());
    for (const marker of [message, 'staged file', repoRoot]) {
      expect(json).not.toContain(marker);
      expect(bytes.includes(Buffer.from(marker))).toBe(false);
    }
    const failures = (history.events ?? []).flatMap((event) => {
      const failure =
        event.activityTaskFailedEventAttributes?.failure ?? event.workflowExecutionFailedEventAttributes?.failure;
      return failure ? [failure] : [];
    });
    expect(failures.length).toBeGreaterThanOrEqual(2);
    for (const top of failures) {
      for (let failure: typeof top | null | undefined = top; failure; failure = failure.cause) {
        expect(failure.message).toBe('Encoded failure');
        expect(failure.stackTrace ?? '').toBe('');
        expect(Buffer.from(failure.encodedAttributes?.metadata?.encoding ?? []).toString()).toBe('binary/encrypted');
      }
    }
  });
});
