import type { Db } from '../db/client';
import type { Catalog } from '../domain/catalog';
import type { DestructionInput } from '../domain/destruction';
import type { Keyring } from '../runtime/keyring';
import { issueCertificate, type IssueCertificate } from './certificates';
import { openDestruction, recordDestructionEvent, type DestructionEvent } from './destruction-records';
import { shredDestruction, verifyDestruction, type Verification } from './destruction-shred';

const DEFAULT_BATCH = 5000;

/** The destruction workflow's activities: every one idempotent (keyed by the destruction and its step). */
export const destructionActivities = (d: { db: Db; keyring: Keyring; catalog: Catalog; clock: () => Date }) => ({
  openDestruction: (input: DestructionInput) => openDestruction(d, input),
  recordDestructionEvent: (e: DestructionEvent) => recordDestructionEvent(d.db, e),
  shredDestruction: (a: { destructionId: string; batchSize?: number }) =>
    shredDestruction(d, a.destructionId, a.batchSize ?? DEFAULT_BATCH),
  /** Verifies every target, then (only when it passed) issues the signed certificate: one step, one round trip. */
  certifyDestruction: async (
    c: Omit<IssueCertificate, 'verification'>,
  ): Promise<{ verification: Verification; certificateId?: string; sha256?: string }> => {
    const verification = await verifyDestruction(d, c.destructionId);
    if (!verification.passed) return { verification };
    return { verification, ...(await issueCertificate(d, { ...c, verification })) };
  },
});
