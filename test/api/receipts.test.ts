import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signReceipt } from '../../activities/consent-receipts';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';
import { testReceipt } from '../helpers/receipts';

let api: TestApp;
const keys = {} as Record<'owner' | 'auditor' | 'responder', string>;

beforeAll(async () => {
  api = await createTestApp();
  for (const role of ['owner', 'auditor', 'responder'] as const) {
    keys[role] = (await seedPrincipal(api.database.db, role)).key;
  }
});
afterAll(() => api?.close());

const receipt = () => testReceipt();

const verify = (body: unknown, key = keys.auditor) =>
  api.app.request('/v1/receipts/verify', { method: 'POST', headers: bearer(key), body: JSON.stringify(body) });

describe('POST /v1/receipts/verify', () => {
  it("accepts a receipt signed with this deployment's key, for auditors and owners", async () => {
    const signed = signReceipt(api.keyring, receipt());
    for (const key of [keys.auditor, keys.owner]) {
      const res = await verify(signed, key);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ valid: true, keyId: api.keyring.signing.keyId, checkedWith: 'given' });
    }
    expect((await verify(signed, keys.responder)).status).toBe(403);
  });

  it('refuses a tampered receipt and one signed with another key, as a verdict, not an error', async () => {
    const signed = signReceipt(api.keyring, receipt());
    const tampered = { ...signed, receipt: { ...signed.receipt, storageLocation: 'US' } };
    expect(await readJson(await verify(tampered))).toMatchObject({
      valid: false,
      reason: 'the signature does not match the receipt',
    });
    const stranger = parseKeyring(generateKeyFile(), 'stranger');
    const foreign = signReceipt(stranger, signed.receipt);
    expect(await readJson(await verify(foreign))).toMatchObject({
      valid: false,
      reason: `signed with key ${stranger.signing.keyId}, not with the given key ${api.keyring.signing.keyId}`,
    });
  });

  it('answers 400 naming the fields of something that is not a signed receipt', async () => {
    const res = await verify({ receipt: 'x', signature: 1, extra: true });
    expect(res.status).toBe(400);
    const problem = await readJson<Problem>(res);
    expect(problem.fields?.map((f) => f.path).sort()).toEqual([
      'algorithm',
      'extra',
      'keyId',
      'publicKey',
      'signature',
    ]);
    // A well-formed envelope around something that is not a receipt is a verdict, naming no value.
    const signed = signReceipt(api.keyring, receipt());
    const wrapped = await readJson(await verify({ ...signed, receipt: 'x' }));
    expect(wrapped).toMatchObject({ valid: false, reason: 'the receipt does not match its schema: receipt' });
  });
});
