import { ApplicationFailure } from '@temporalio/activity';
import type { Db } from '../db/client';
import type { Catalog } from '../domain/catalog';
import type { DestructionInput } from '../domain/destruction';
import type { Keyring } from '../runtime/keyring';
import { issueCertificate, type IssueCertificate } from './certificates';
import { openDestruction, recordDestructionEvent, type DestructionEvent } from './destruction-records';
import { shredDestruction, verifyDestruction } from './destruction-shred';

const DEFAULT_BATCH = 500;

/** The destruction workflow's activities: every one idempotent (keyed by the destruction and its step). */
export const destructionActivities = (d: { db: Db; keyring: Keyring; catalog: Catalog; clock: () => Date }) => ({
  openDestruction: (input: DestructionInput) => openDestruction(d, input),
  recordDestructionEvent: (e: DestructionEvent) => recordDestructionEvent(d.db, e),
  shredDestruction: (a: { destructionId: string; batchSize?: number }) =>
    shredDestruction(d, a.destructionId, a.batchSize ?? DEFAULT_BATCH),
  verifyDestruction: async (a: { destructionId: string }) => {
    const v = await verifyDestruction(d, a.destructionId);
    return v;
  },
  issueDestructionCertificate: async (c: IssueCertificate) => {
    if (!c.verification.passed)
      throw ApplicationFailure.nonRetryable(
        'verification failed: no certificate is issued',
        'DestructionVerificationFailed',
      );
    return issueCertificate(d, c);
  },
});
