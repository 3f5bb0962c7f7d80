/**
 * Key rotation (`key-rotation-{id}`, every 90 days): a new KEK version, every subject's data key re-wrapped under
 * it in batches, every key verified, then the older versions retired. Inputs and results carry IDs, versions,
 * counts and durations only.
 */

export interface KeyRotationInput {
  rotationId: string;
  requestedBy: string;
  /** Data keys per batch (default 500). */
  batchSize?: number;
  /** Batches per run before continue-as-new (default 200). */
  batchesPerRun?: number;
  /** How long a batch may go without a heartbeat (default 1 minute; tests shorter). */
  heartbeatTimeout?: string;
  /** Carried across continue-as-new. */
  progress?: KeyRotationProgress;
}

export type KeyRotationPhase = 'rewrap' | 'verify';

export interface KeyRotationProgress {
  toVersion: number;
  phase: KeyRotationPhase;
  /** A pass re-wraps (then verifies) every key; a second pass runs only if keys appeared under an older version. */
  pass: number;
  /** Where the next batch starts (`''` at the start of a phase). */
  cursor: string;
  verified: number;
  notRewrapped: number;
}

export interface KeyRotationEvidence {
  rotationId: string;
  fromVersions: number[];
  toVersion: number;
  retiredVersions: number[];
  keysRewrapped: number;
  keysVerified: number;
  passes: number;
  startedAt: string;
  completedAt: string;
  durationMs: number;
}

/** A batch's key: the pass and the data key it starts after (`{subjectId}/{keyVersion}`, empty at the start). */
export const batchKey = (pass: number, cursor: string): string => `${pass}:${cursor}`;

export const keyCursor = (subjectId: string, keyVersion: number): string => `${subjectId}/${keyVersion}`;

export const parseKeyCursor = (cursor: string): { subjectId: string; keyVersion: number } | undefined => {
  if (cursor === '') return undefined;
  const [subjectId, keyVersion] = cursor.split('/');
  return { subjectId: subjectId!, keyVersion: Number(keyVersion) };
};
