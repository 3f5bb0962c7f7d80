import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signingKeyId, signReceipt, verifyReceipt } from '../../activities/consent-receipts';
import { createNotice } from '../../activities/notices';
import { insertNewSubjects, newSubject, rawSql } from '../../activities/subject-writer';
import { defaultCatalog } from '../../domain/catalog';
import { buildReceipt, ConsentReceipt, receiptPurpose, type ReceiptFacts } from '../../domain/consent-receipt';
import type { Notice } from '../../domain/notice';
import { generateKeyFile, parseKeyring, publicKeyPem } from '../../runtime/keyring';
import { createTestDatabase, type TestDatabase } from '../helpers/db';
import { fakeSubject, personalValues } from '../helpers/subject-files';

const keyring = parseKeyring(generateKeyFile(), 'test');
const otherKeyring = parseKeyring(generateKeyFile(), 'other');
const pem = publicKeyPem(keyring);

let database: TestDatabase;
let notice: Notice;
let subject: { id: string; jurisdiction: string; locale: string };

beforeAll(async () => {
  database = await createTestDatabase();
  notice = await createNotice(
    database.db,
    {
      purpose: 'credit-assessment',
      texts: {
        'zh-CN': { title: '个人信息转移告知', body: '您的征信信息已转移至新征信机构。' },
        en: { title: 'Notice of transfer', body: 'Your credit information was transferred to a new bureau.' },
      },
      handler: { name: '新征信有限公司', contact: 'dpo@new-bureau.example', address: '上海市示例路1号' },
      previousHandler: { name: '旧征信有限公司', contact: 'dpo@old-bureau.example' },
    },
    { actor: 'test' },
  );
  // A subject imported with (fake) personal values: the receipt must carry none of them.
  const line = fakeSubject(7);
  const fresh = newSubject(
    defaultCatalog,
    keyring,
    line,
    new Map<string, string | number>([
      ...Object.entries(line.fields),
      ['email', line.contact.email],
      ['phone', line.contact.phone],
    ]),
  );
  await rawSql(database.db).begin((tx) => insertNewSubjects(tx, 'test-import', [fresh]));
  const [row] =
    await database.sql`select id, jurisdiction, locale from subjects where external_ref = ${line.externalRef}`;
  subject = row as typeof subject;
});
afterAll(() => database?.drop());

const facts = (over: Partial<ReceiptFacts> = {}): ReceiptFacts => ({
  receiptId: randomUUID(),
  consentId: randomUUID(),
  subjectId: subject.id,
  jurisdiction: subject.jurisdiction,
  issuedAt: new Date('2026-11-29T10:00:05.000Z'),
  notice,
  language: subject.locale as 'zh-CN',
  storageLocation: 'CN',
  recipients: [{ name: '新征信有限公司', contact: 'dpo@new-bureau.example' }],
  collectionMethod: 'web-link',
  withdrawalUri: 'https://custodian.example/consent/withdraw',
  events: [
    { type: 'requested', at: new Date('2026-11-29T09:00:00.000Z') },
    {
      type: 'given',
      at: new Date('2026-11-29T10:00:00.000Z'),
      validUntil: new Date('2031-11-29T10:00:00.000Z'),
    },
  ],
  ...over,
});

/** Every string of the file with one character changed, inside [from, to). */
const oneCharChanges = function* (text: string, from: number, to: number) {
  for (let i = from; i < to; i++) {
    yield text.slice(0, i) + String.fromCharCode(text.charCodeAt(i) ^ 1) + text.slice(i + 1);
  }
};

describe('consent receipts', () => {
  it('builds a receipt from the facts and the catalog: categories, sensitive flags, retention, the notice cited', () => {
    const receipt = buildReceipt(defaultCatalog, facts());
    expect(receipt).toMatchObject({
      schemaVersion: 'custodian-consent-receipt/1',
      subjectRef: `subject:${subject.id}`,
      jurisdiction: 'CN',
      notice: { id: notice.id, version: 1, language: 'zh-CN', textSha256: notice.textSha256 },
      controller: notice.handler,
      previousController: notice.previousHandler,
      collectionMethod: 'web-link',
      withdrawalMethod: { method: 'web-link', uri: 'https://custodian.example/consent/withdraw' },
      storageLocation: 'CN',
    });
    expect(receipt.purposes).toEqual([
      {
        purpose: 'credit-assessment',
        piCategories: ['bankAccount', 'creditHistory', 'creditScore', 'idNumber', 'loanBalance'],
        sensitive: true,
        sensitiveCategories: ['bankAccount', 'creditHistory', 'creditScore', 'idNumber', 'loanBalance'],
        retention: 'P5Y',
        legalBasis: 'consent',
      },
    ]);
    expect(receipt.events).toEqual([
      { type: 'requested', at: '2026-11-29T09:00:00.000Z' },
      { type: 'given', at: '2026-11-29T10:00:00.000Z', validUntil: '2031-11-29T10:00:00.000Z' },
    ]);
    expect(receiptPurpose(defaultCatalog, 'analytics')).toMatchObject({
      piCategories: ['city', 'customerSince', 'segment'],
      sensitive: false,
      sensitiveCategories: [],
      retention: 'P10Y',
    });
    // The schema refuses anything but a subject reference.
    expect(() => buildReceipt(defaultCatalog, facts({ subjectId: 'C-000007' }))).toThrow();
    expect(ConsentReceipt.safeParse({ ...receipt, subjectRef: 'subject:13800000007' }).success).toBe(false);
  });

  it('never contains a personal value of the subject', () => {
    const signed = signReceipt(keyring, buildReceipt(defaultCatalog, facts()));
    const text = JSON.stringify(signed);
    const values = [...personalValues(7), fakeSubject(7).externalRef, String(fakeSubject(7).fields.creditScore)];
    for (const value of values) expect(text).not.toContain(value);
    expect(text).toContain(`subject:${subject.id}`);
  });

  it('signs over the canonical JSON; the signed receipt verifies with the embedded key and with the given key', () => {
    const signed = signReceipt(keyring, buildReceipt(defaultCatalog, facts()));
    expect(signed).toMatchObject({ algorithm: 'Ed25519', keyId: keyring.signing.keyId, publicKey: pem });
    expect(signingKeyId(keyring.signing.publicKey)).toBe(keyring.signing.keyId);
    expect(verifyReceipt(signed)).toEqual({ valid: true, keyId: keyring.signing.keyId, checkedWith: 'embedded' });
    expect(verifyReceipt(JSON.parse(JSON.stringify(signed)), pem)).toEqual({
      valid: true,
      keyId: keyring.signing.keyId,
      checkedWith: 'given',
    });
    // Key order does not matter: the signature covers the canonical form.
    const reordered = { ...signed, receipt: Object.fromEntries(Object.entries(signed.receipt).reverse()) };
    expect(verifyReceipt(reordered, pem).valid).toBe(true);
  });

  it('fails on one changed character anywhere in the receipt, the signature or the key ID', () => {
    const signed = signReceipt(keyring, buildReceipt(defaultCatalog, facts()));
    const file = JSON.stringify(signed);
    const receiptText = JSON.stringify(signed.receipt);
    const ranges = [
      [file.indexOf(receiptText), file.indexOf(receiptText) + receiptText.length],
      [file.indexOf(signed.signature), file.indexOf(signed.signature) + signed.signature.length],
      [file.indexOf(signed.keyId), file.indexOf(signed.keyId) + signed.keyId.length],
    ] as const;
    let checked = 0;
    for (const [from, to] of ranges) {
      expect(from).toBeGreaterThan(0);
      for (const changed of oneCharChanges(file, from, to)) {
        let parsed: unknown;
        try {
          parsed = JSON.parse(changed);
        } catch {
          continue; // not JSON any more: no verifier would accept it
        }
        checked++;
        expect(verifyReceipt(parsed).valid, changed).toBe(false);
        expect(verifyReceipt(parsed, pem).valid, changed).toBe(false);
      }
    }
    expect(checked).toBeGreaterThan(1000);
  });

  it('fails under another key, and names what is wrong without quoting values', () => {
    const signed = signReceipt(keyring, buildReceipt(defaultCatalog, facts()));
    const other = publicKeyPem(otherKeyring);
    expect(verifyReceipt(signed, other)).toMatchObject({
      valid: false,
      reason: `signed with key ${keyring.signing.keyId}, not with the given key ${otherKeyring.signing.keyId}`,
    });
    // A receipt re-signed by someone else verifies only against their own embedded key.
    const forged = signReceipt(otherKeyring, signed.receipt);
    expect(verifyReceipt(forged).valid).toBe(true);
    expect(verifyReceipt(forged, pem).valid).toBe(false);
    // Swapping in another key under the original key ID is caught.
    expect(verifyReceipt({ ...signed, publicKey: other })).toMatchObject({
      valid: false,
      reason: 'keyId does not name the embedded public key',
    });
    const extra = verifyReceipt({ ...signed, receipt: { ...signed.receipt, name: '测试用户000007' } });
    expect(extra).toMatchObject({
      valid: false,
      reason: 'the receipt does not match its schema: receipt (unknown fields)',
    });
    expect(JSON.stringify(extra)).not.toContain('测试用户');
    expect(verifyReceipt({ receipt: {} })).toMatchObject({ valid: false });
    expect(verifyReceipt('nonsense')).toMatchObject({ valid: false, reason: 'not a signed receipt: (root)' });
  });
});
