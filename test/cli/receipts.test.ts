import { randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { signReceipt } from '../../activities/consent-receipts';
import { generateKeyFile, parseKeyring, publicKeyPem } from '../../runtime/keyring';
import { runCustodian } from '../helpers/cli';
import { testReceipt } from '../helpers/receipts';

const dir = mkdtempSync(join(tmpdir(), 'custodian-receipt-cli-'));
const dataDir = mkdtempSync(join(tmpdir(), 'custodian-receipt-cli-data-'));
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(dataDir, { recursive: true, force: true });
});

const keyring = parseKeyring(generateKeyFile(), 'test');
const other = parseKeyring(generateKeyFile(), 'other');
const signed = signReceipt(
  keyring,
  testReceipt({
    notice: {
      id: randomUUID(),
      version: 1,
      purpose: 'transfer-notice',
      textSha256: 'b'.repeat(64),
      handler: { name: 'New Bureau Ltd', contact: 'dpo@new-bureau.example', address: '1 Example Road' },
      previousHandler: { name: 'Old Bureau Ltd' },
    },
    language: 'zh-CN',
    collectionMethod: 'web-link',
    withdrawalUri: 'https://custodian.example/consent',
  }),
);

const write = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

/**
 * `custodian <args>` with nothing to connect to: the database and Temporal addresses point at a closed
 * port, there is no keyring, and the data directory is empty, so the command can only work offline.
 */
const custodian = (args: string[]) =>
  runCustodian(args, {
    DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none',
    TEMPORAL_ADDRESS: '127.0.0.1:1',
    CUSTODIAN_DATA_DIR: dataDir,
  });

describe('custodian verify-receipt (offline)', () => {
  it('exits 0 for an intact receipt under the given key, and 1 under another key', async () => {
    const file = write('receipt.json', JSON.stringify(signed, null, 2));
    const pem = write('handler.pem', publicKeyPem(keyring));
    const ok = await custodian(['verify-receipt', file, '--public-key', pem]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ valid: true, keyId: keyring.signing.keyId, checkedWith: 'given' });

    const wrongKey = await custodian(['verify-receipt', file, '--public-key', write('other.pem', publicKeyPem(other))]);
    expect(wrongKey.code).toBe(1);
    expect(JSON.parse(wrongKey.stdout)).toMatchObject({ valid: false });

    // Without a key: integrity under the embedded key only, and stderr says so.
    const embedded = await custodian(['verify-receipt', file]);
    expect(embedded.code).toBe(0);
    expect(JSON.parse(embedded.stdout)).toMatchObject({ valid: true, checkedWith: 'embedded' });
    expect(embedded.stderr).toContain('--public-key');
    // Nothing was written to the data directory (no keyring generated, no database started).
    expect(readdirSync(dataDir)).toEqual([]);
  });

  it('exits 1 for a receipt with one changed byte', async () => {
    const tampered = JSON.stringify(signed).replace('"version":1', '"version":2');
    expect(tampered).not.toBe(JSON.stringify(signed));
    const result = await custodian(['verify-receipt', write('tampered.json', tampered)]);
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stdout)).toMatchObject({
      valid: false,
      reason: 'the signature does not match the receipt',
    });
  });

  it('exits 1 with one line for a missing file, non-JSON, or no file argument', async () => {
    const missing = await custodian(['verify-receipt', join(dir, 'nope.json')]);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toMatch(/^custodian verify-receipt: cannot read the receipt .*nope\.json: ENOENT$/);
    const notJson = await custodian(['verify-receipt', write('bad.json', '{"receipt":')]);
    expect(notJson.code).toBe(1);
    expect(notJson.stderr.trim()).toMatch(/is not JSON$/);
    const usage = await custodian(['verify-receipt']);
    expect(usage.code).toBe(1);
    expect(usage.stderr).toContain('usage: verify-receipt <receipt.json>');
  });
});
