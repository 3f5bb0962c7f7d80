import { continueAsNew, proxyActivities, workflowInfo, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { KeyRotationEvidence, KeyRotationInput, KeyRotationProgress } from '../domain/key-rotation';

export const io = {
  startToCloseTimeout: '1 minute',
  // activities/key-rotation.ts KEY_ROTATION_NON_RETRYABLE (a workflow cannot import it).
  retry: { maximumAttempts: 10, nonRetryableErrorTypes: ['RotationInProgress', 'RotationNotFound'] },
} satisfies ActivityOptions;

const { beginKeyRotation, completeKeyRotation } = proxyActivities<Activities>(io);
const batches = (heartbeatTimeout: string) =>
  proxyActivities<Activities>({ ...io, startToCloseTimeout: '10 minutes', heartbeatTimeout });

const DEFAULT_BATCH_SIZE = 500;
const DEFAULT_BATCHES_PER_RUN = 200;

/**
 * Key rotation (`key-rotation-{id}`, every 90 days): a new KEK version (current for new data keys at once), every
 * subject's data key re-wrapped under it in batches, every key then unwrapped to verify, and only then the older
 * versions retired, with the evidence recorded. Destroyed subjects have no keys and are never visited. A pass that
 * finds keys under an older version (made meanwhile by a process that had not seen the new version) runs again.
 */
export async function keyRotation(input: KeyRotationInput): Promise<KeyRotationEvidence> {
  const batchSize = input.batchSize ?? DEFAULT_BATCH_SIZE;
  const batchesPerRun = input.batchesPerRun ?? DEFAULT_BATCHES_PER_RUN;
  const { rewrapKeyBatch, verifyKeyBatch } = batches(input.heartbeatTimeout ?? '1 minute');
  const p: KeyRotationProgress = input.progress ?? {
    toVersion: (await beginKeyRotation(input)).toVersion,
    phase: 'rewrap',
    pass: 1,
    cursor: '',
    verified: 0,
    notRewrapped: 0,
  };
  for (let batchesThisRun = 0; ; batchesThisRun++) {
    if (batchesThisRun >= batchesPerRun || workflowInfo().continueAsNewSuggested)
      return await continueAsNew<typeof keyRotation>({ ...input, progress: p });
    const at = { toVersion: p.toVersion, cursor: p.cursor, batchSize };
    let next: string | null;
    if (p.phase === 'rewrap') {
      ({ nextAfter: next } = await rewrapKeyBatch({ ...at, rotationId: input.rotationId, pass: p.pass }));
    } else {
      const checked = await verifyKeyBatch(at);
      next = checked.nextAfter;
      p.verified += checked.verified;
      p.notRewrapped += checked.notRewrapped;
    }
    p.cursor = next ?? '';
    if (next !== null) continue;
    if (p.phase === 'rewrap') {
      Object.assign(p, { phase: 'verify', verified: 0, notRewrapped: 0 });
      continue;
    }
    if (p.notRewrapped === 0) {
      const { remaining, evidence } = await completeKeyRotation({
        rotationId: input.rotationId,
        verified: p.verified,
        passes: p.pass,
      });
      if (remaining === 0 && evidence) return evidence;
    }
    Object.assign(p, { phase: 'rewrap', pass: p.pass + 1 });
  }
}
