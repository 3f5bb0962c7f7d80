import { z } from 'zod';

export const AuditRecord = z.object({
  seq: z.number().int().positive(),
  at: z.string(),
  actor: z.string(),
  action: z.string(),
  targetType: z.string(),
  targetId: z.string(),
  workflowId: z.string().nullable(),
  runId: z.string().nullable(),
  /** The API key the actor used, when the change came through the API. */
  apiKeyId: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  idempotencyKey: z.string(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditRecord = z.infer<typeof AuditRecord>;

const Sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * A signed anchor of the audit chain, as stored and as one line of the checkpoint file. The signature
 * (Ed25519, base64) covers number, seq, headHash, at and prevCheckpointHash; `hash` is SHA-256 of the same.
 */
export const AuditCheckpoint = z
  .object({
    number: z.number().int().positive(),
    seq: z.number().int().min(0),
    headHash: Sha256Hex,
    at: z.iso.datetime(),
    prevCheckpointHash: Sha256Hex,
    hash: Sha256Hex,
    signature: z.string().min(1),
    keyId: z.string().min(1),
  })
  .strict();
export type AuditCheckpoint = z.infer<typeof AuditCheckpoint>;

/** What a checkpoint's signature and hash cover. */
export const signedCheckpointContent = (
  c: AuditCheckpoint | Omit<AuditCheckpoint, 'hash' | 'signature' | 'keyId'>,
) => ({
  number: c.number,
  seq: c.seq,
  headHash: c.headHash,
  at: c.at,
  prevCheckpointHash: c.prevCheckpointHash,
});
