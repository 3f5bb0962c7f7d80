import { createHmac, hkdfSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { and, desc, eq, inArray, lt, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { auditLog, backups, destructionCertificates, destructions, processTexts } from '../db/schema';
import { canonicalJson } from '../domain/canonical-json';
import { destructionWorkflowId } from '../domain/ids';
import type { Keyring } from '../runtime/keyring';
import { appendAudit, entryHash, GENESIS_HASH } from './audit';
import { sha256Hex, sign, verifySignature } from './crypto/signatures';
import type { ShredTotals, Verification } from './destruction-shred';
import { execution } from './destruction-records';

const TOOL = {
  name: 'custodian',
  version: (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
    .version,
};
export const CERTIFICATE_FORMAT = 'custodian-destruction-certificate/v1';

const scopeKey = (keyring: Keyring) =>
  Buffer.from(hkdfSync('sha256', keyring.blindIndexKey, Buffer.alloc(0), 'custodian/destruction-scope/v1', 32));

/** A keyed hash over the sorted subject IDs: proves which set was destroyed to whoever holds the list, names nobody. */
const subjectsDigest = (keyring: Keyring, ids: string[]) =>
  createHmac('sha256', scopeKey(keyring))
    .update([...ids].sort().join('\n'))
    .digest('hex');

export interface IssueCertificate {
  destructionId: string;
  certificateId: string;
  shred: ShredTotals;
  verification: Verification;
  destroyedFrom: number;
  destroyedTo: number;
}

/**
 * Builds the certificate (NIST SP 800-88 Rev. 1 App. G adapted to data; no personal data), signs it with the
 * keyring's Ed25519 key, stores it, records its SHA-256 in the audit chain and completes the request, in one
 * transaction. A retry returns the certificate stored first.
 */
export const issueCertificate = async (d: { db: Db; keyring: Keyring }, c: IssueCertificate) => {
  const { workflowId, runId } = execution();
  return d.db.transaction(async (tx) => {
    const [existing] = await tx
      .select({ id: destructionCertificates.id, sha256: destructionCertificates.sha256 })
      .from(destructionCertificates)
      .where(eq(destructionCertificates.destructionId, c.destructionId));
    if (existing) return { certificateId: existing.id, sha256: existing.sha256 };
    const [row] = await tx.select().from(destructions).where(eq(destructions.id, c.destructionId)).for('update');
    if (!row) throw new Error(`destruction ${c.destructionId} has no record`);
    // One row, not one per target (mapping 10,000 rows took ~30 ms): the target IDs, and a field scope's counts.
    const [targets] = await tx.execute<{ ids: string | null; field_counts: string }>(sql`
      select (select string_agg(subject_id::text, ',') from destruction_targets
          where destruction_id = ${c.destructionId}) as ids,
        (select coalesce(jsonb_object_agg(field, n), '{}')::text from (select field, count(*)::int as n
          from destruction_targets, unnest(fields) as field where destruction_id = ${c.destructionId} group by field) f)
          as field_counts`);
    const fieldCounts = JSON.parse(targets!.field_counts) as Record<string, number>;
    const [keyringBackup] = await tx
      .select({ id: backups.id, retainUntil: backups.retainUntil })
      .from(backups)
      .where(
        and(
          eq(backups.kind, 'keyring'),
          inArray(backups.status, ['completed', 'verified', 'restore-test-failed']),
          lt(backups.snapshotAt, new Date(c.destroyedFrom)),
        ),
      )
      .orderBy(desc(backups.snapshotAt))
      .limit(1);
    // The reason's SHA-256 as the API stored it (the text stays out of the certificate: it may name people).
    const [reasonText] = row.reasonTextId
      ? await tx.select({ sha256: processTexts.sha256 }).from(processTexts).where(eq(processTexts.id, row.reasonTextId))
      : [];
    const issuedAt = new Date();
    const iso = (ms: number | Date | null) => (ms === null ? null : new Date(ms).toISOString());
    const scope = row.scope as { kind: string; purpose?: string; fields?: string[] };
    const certificate = {
      format: CERTIFICATE_FORMAT,
      certificateId: c.certificateId,
      destructionId: c.destructionId,
      workflowId: destructionWorkflowId(c.destructionId),
      request: {
        requestedBy: row.requestedBy,
        requestedAt: iso(row.createdAt),
        reasonSha256: reasonText?.sha256 ?? (row.reason === null ? null : sha256Hex(row.reason)),
        origin: row.origin,
      },
      scope: {
        kind: scope.kind,
        ...(scope.purpose ? { purpose: scope.purpose } : {}),
        ...(scope.fields ? { fields: scope.fields } : {}),
        matched: row.matched,
        excludedUnderLegalHold: row.held,
        targeted: row.targeted,
        subjectsKeyedSha256: subjectsDigest(d.keyring, targets!.ids?.split(',') ?? []),
      },
      approvals: row.autoApproved
        ? { automatic: true, reason: 'retention sweep with automatic approval configured by the operator' }
        : {
            automatic: false,
            decisions: row.approvals.map((a) => ({ actor: a.actor, decision: a.decision, at: a.at })),
          },
      sanitization: {
        method:
          scope.kind === 'fields'
            ? 'clear (logical deletion of the named fields)'
            : 'purge (cryptographic erase) and clear (logical deletion)',
        techniques:
          scope.kind === 'fields'
            ? ['field rows deleted; the subject and its data key stay']
            : [
                'per-subject AES-256 data key (wrapped under the KEK) deleted',
                'field rows (contact data included) deleted',
                'external reference replaced by a keyed-hash tombstone',
              ],
        tool: TOOL,
        // Counted by the verification over the same targets, in the same activity just before.
        subjectsDestroyed: c.verification.subjectsDestroyed,
        subjectsWithFieldsDeleted: c.verification.subjectsWithFieldsDeleted,
        fieldsDeleted: fieldCounts,
        keysDestroyed: c.shred.keys,
        keyIdsSha256: c.shred.keyIdsSha256,
        fieldRowsDeleted: c.shred.fieldRows,
        batches: c.shred.batches,
        heldAtShred: c.verification.heldAtShred,
      },
      verification: {
        method: c.verification.method,
        result: c.verification.passed ? 'pass' : 'fail',
        checked: c.verification.checked,
        keysRemaining: c.verification.keysRemaining,
        fieldRowsRemaining: c.verification.fieldRowsRemaining,
        decryptable: c.verification.decryptable,
      },
      residualCopies: {
        dataBackups: 'ciphertext only: data backups never hold the wrapped data keys (subject_keys)',
        keyringBackup: keyringBackup
          ? {
              backupId: keyringBackup.id,
              expiresAt: iso(keyringBackup.retainUntil),
              rule: 'CUSTODIAN_KEYRING_BACKUP_RETENTION',
            }
          : null,
      },
      times: { destroyedFrom: iso(c.destroyedFrom), destroyedTo: iso(c.destroyedTo), issuedAt: iso(issuedAt) },
    };
    const signature = sign(d.keyring, certificate);
    const sha256 = sha256Hex(canonicalJson(certificate));
    const entry = await appendAudit(tx, {
      actor: 'system',
      action: 'destruction.certificate-issued',
      targetType: 'destruction',
      targetId: c.destructionId,
      workflowId,
      runId,
      details: { certificateId: c.certificateId, sha256, keyId: signature.keyId },
      idempotencyKey: `${destructionWorkflowId(c.destructionId)}:certificate`,
    });
    await tx.insert(destructionCertificates).values({
      id: c.certificateId,
      destructionId: c.destructionId,
      certificate,
      signature,
      sha256,
      auditSeq: entry.seq,
      issuedAt,
    });
    await tx
      .update(destructions)
      .set({ status: 'completed', certificateId: c.certificateId, finishedAt: issuedAt, updatedAt: issuedAt })
      .where(eq(destructions.id, c.destructionId));
    return { certificateId: c.certificateId, sha256 };
  });
};

export const getCertificate = async (db: Db, id: string) =>
  (await db.select().from(destructionCertificates).where(eq(destructionCertificates.id, id)))[0];

export interface CertificateVerification {
  valid: boolean;
  signature: boolean;
  digest: boolean;
  auditEntry: boolean;
  keyId: string;
  auditSeq: number | null;
  reasons: string[];
}

/**
 * Checks the stored certificate: its Ed25519 signature under this deployment's key, its SHA-256 against the stored
 * digest, and the audit entry that recorded it — that it names this certificate and digest, and that its hash and
 * its link to the entry before it recompute.
 */
export const verifyCertificate = async (
  db: Db,
  keyring: Keyring,
  id: string,
): Promise<CertificateVerification | undefined> => {
  const cert = await getCertificate(db, id);
  if (!cert) return undefined;
  const reasons: string[] = [];
  const signature = verifySignature(keyring.signing.publicKey, cert.certificate, cert.signature);
  if (!signature) reasons.push('the signature does not match the certificate');
  const digest = sha256Hex(canonicalJson(cert.certificate)) === cert.sha256;
  if (!digest) reasons.push('the certificate does not hash to its recorded SHA-256');
  let auditEntry = false;
  if (cert.auditSeq !== null) {
    const rows = await db
      .select()
      .from(auditLog)
      .where(inArray(auditLog.seq, [cert.auditSeq - 1, cert.auditSeq]));
    const entry = rows.find((r) => r.seq === cert.auditSeq);
    const before = rows.find((r) => r.seq === cert.auditSeq! - 1);
    const prevHash = cert.auditSeq === 1 ? GENESIS_HASH : before?.hash;
    if (!entry) reasons.push(`audit entry ${cert.auditSeq} is missing`);
    else if (entry.details.certificateId !== cert.id || entry.details.sha256 !== cert.sha256)
      reasons.push(`audit entry ${cert.auditSeq} records another certificate or digest`);
    else if (entryHash(entry.prevHash, entry) !== entry.hash) reasons.push(`audit entry ${cert.auditSeq} was altered`);
    else if (prevHash !== entry.prevHash)
      reasons.push(`audit entry ${cert.auditSeq} no longer links to the entry before it`);
    else auditEntry = true;
  } else reasons.push('no audit entry is recorded for the certificate');
  return {
    valid: signature && digest && auditEntry,
    signature,
    digest,
    auditEntry,
    keyId: cert.signature.keyId,
    auditSeq: cert.auditSeq,
    reasons,
  };
};
