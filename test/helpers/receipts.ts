import { randomUUID } from 'node:crypto';
import { defaultCatalog } from '../../domain/catalog';
import { buildReceipt } from '../../domain/consent-receipt';

type Facts = Parameters<typeof buildReceipt>[1];

/** A receipt for a given consent with fresh IDs and fixed times; `facts` overrides any of them. */
export const testReceipt = (facts: Partial<Facts> = {}) =>
  buildReceipt(defaultCatalog, {
    receiptId: randomUUID(),
    consentId: randomUUID(),
    subjectId: randomUUID(),
    jurisdiction: 'CN',
    issuedAt: new Date('2026-11-29T10:00:00.000Z'),
    notice: {
      id: randomUUID(),
      version: 2,
      purpose: 'customer-service',
      textSha256: 'a'.repeat(64),
      handler: { name: 'New Bureau Ltd', contact: 'dpo@new-bureau.example' },
    },
    language: 'en',
    storageLocation: 'CN',
    collectionMethod: 'on-behalf',
    events: [{ type: 'given', at: new Date('2026-11-29T10:00:00.000Z') }],
    ...facts,
  });
