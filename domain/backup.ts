import { z } from 'zod';

/**
 * Backups and restore tests. A backup file is gzip of every exported table's `COPY … TO STDOUT` text, one table
 * after another (the manifest gives each table's byte length), encrypted with AES-256-GCM in frames of
 * `frameBytes` plaintext. The signed manifest is what a restore trusts: it names the tables, their rows and
 * SHA-256, the wrapped key and the ciphertext's SHA-256 and size.
 */

export const BACKUP_FORMAT = 'custodian-backup/1';
export const BACKUP_FRAME_BYTES = 64 * 1024;

export const BACKUP_KINDS = ['data', 'keyring'] as const;
export type BackupKind = (typeof BACKUP_KINDS)[number];

/** `running` → `completed` (written) → `verified` | `restore-test-failed` (the latest restore test); `deleted` by retention. */
export const BACKUP_STATUSES = [
  'running',
  'completed',
  'verified',
  'restore-test-failed',
  'failed',
  'deleted',
] as const;
export type BackupStatus = (typeof BACKUP_STATUSES)[number];

/** `export` streams the tables through gzip and encryption into a temporary object; `manifest` commits it. */
export const BACKUP_PHASES = ['snapshot', 'export', 'manifest', 'done'] as const;
export type BackupPhase = (typeof BACKUP_PHASES)[number];

export const RESTORE_TEST_STATUSES = ['running', 'pass', 'fail'] as const;
export type RestoreTestStatus = (typeof RESTORE_TEST_STATUSES)[number];

export const RESTORE_TEST_PHASES = ['verify-manifest', 'restore', 'compare', 'done'] as const;
export type RestoreTestPhase = (typeof RESTORE_TEST_PHASES)[number];

export const RESTORE_TEST_TRIGGERS = ['after-backup', 'api', 'schedule'] as const;
export type RestoreTestTrigger = (typeof RESTORE_TEST_TRIGGERS)[number];

const Sha256 = z.string().regex(/^[0-9a-f]{64}$/);
const Count = z.number().int().min(0);

/** One exported table: its columns (name and SQL type), the key it is ordered by, and what its COPY text held. */
export const BackupTable = z
  .object({
    name: z.string().min(1),
    columns: z.array(z.object({ name: z.string().min(1), type: z.string().min(1) }).strict()).min(1),
    /** Primary-key columns (all columns for a table without one), each ordered with COLLATE "C" if collatable. */
    orderBy: z.array(z.string().min(1)).min(1),
    rows: Count,
    /** Bytes of its COPY text in the plaintext stream. */
    bytes: Count,
    /** SHA-256 of its COPY text. */
    sha256: Sha256,
  })
  .strict();
export type BackupTable = z.infer<typeof BackupTable>;

export const BackupManifest = z
  .object({
    format: z.literal(BACKUP_FORMAT),
    backupId: z.uuid(),
    kind: z.enum(BACKUP_KINDS),
    /** A data backup names the keyring backup taken in the same snapshot (the keys its ciphertext needs). */
    keyringBackupId: z.uuid().optional(),
    createdAt: z.iso.datetime({ offset: true }),
    snapshot: z
      .object({
        /** The snapshot's transaction start time: the data is as of this instant. */
        at: z.iso.datetime({ offset: true }),
        /** WAL position when the snapshot was taken (`pg_current_wal_lsn()`). */
        lsn: z.string().regex(/^[0-9A-F]+\/[0-9A-F]+$/),
        isolation: z.literal('repeatable read'),
      })
      .strict(),
    /** Migrations applied to the exported database: a restore migrates its target to the same point first. */
    schema: z.object({ migrations: Count, lastMigrationAt: z.number().int().nullable() }).strict(),
    /** The COPY text settings every hash is computed under. */
    copy: z.object({ format: z.literal('text'), settings: z.record(z.string(), z.string()) }).strict(),
    tables: z.array(BackupTable),
    compression: z.literal('gzip'),
    cipher: z
      .object({
        algorithm: z.literal('AES-256-GCM'),
        frameBytes: z.number().int().positive(),
        /** Nonce = final flag (1 byte) | 3 zero bytes | frame number (uint64 BE); AAD binds backup ID, frame, flag. */
        nonce: z.literal('frame-counter'),
      })
      .strict(),
    key: z
      .object({
        /** The backup's data key wrapped by the KEK (base64), bound to the backup ID. */
        wrappedKey: z.string().min(1),
        kekVersion: z.number().int().positive(),
      })
      .strict(),
    ciphertext: z.object({ sha256: Sha256, bytes: Count, frames: Count }).strict(),
    /** Total COPY text bytes before compression. */
    plaintextBytes: Count,
  })
  .strict();
export type BackupManifest = z.infer<typeof BackupManifest>;

export const ManifestSignature = z
  .object({ algorithm: z.literal('Ed25519'), keyId: z.string().min(1), signature: z.string().min(1) })
  .strict();

/** The manifest file beside the backup, and `backups.manifest`: Ed25519 over the canonical JSON of `manifest`. */
export const SignedManifest = z.object({ manifest: BackupManifest, signature: ManifestSignature }).strict();
export type SignedManifest = z.infer<typeof SignedManifest>;

/** Why a restore test failed: a code, and the frame or table it concerns. Never a value from the data. */
export const RestoreTestReason = z.discriminatedUnion('code', [
  z.object({ code: z.literal('manifest-missing') }),
  z.object({ code: z.literal('manifest-invalid'), message: z.string() }),
  z.object({ code: z.literal('manifest-signature-invalid'), keyId: z.string() }),
  z.object({ code: z.literal('manifest-mismatch'), message: z.string() }),
  z.object({ code: z.literal('file-missing') }),
  z.object({ code: z.literal('key-unwrap-failed'), kekVersion: z.number() }),
  z.object({ code: z.literal('ciphertext-size-mismatch'), expected: z.number(), actual: z.number() }),
  z.object({ code: z.literal('ciphertext-hash-mismatch'), expected: z.string(), actual: z.string() }),
  /** The file ends after `frame`, which was sealed as a non-final frame (or mid-frame). */
  z.object({ code: z.literal('truncated'), frame: z.number(), expectedBytes: z.number(), actualBytes: z.number() }),
  z.object({ code: z.literal('frame-authentication-failed'), frame: z.number() }),
  /** The frame at position `frame` authenticates as frame `sealedAs`: frames were swapped or moved. */
  z.object({ code: z.literal('frame-out-of-order'), frame: z.number(), sealedAs: z.number() }),
  z.object({ code: z.literal('data-after-final-frame'), frame: z.number() }),
  z.object({ code: z.literal('decompression-failed'), message: z.string() }),
  z.object({ code: z.literal('plaintext-length-mismatch'), expected: z.number(), actual: z.number() }),
  /** `stage`: `file` is the COPY text read from the backup, `restored` the text COPY gives back after loading it. */
  z.object({
    code: z.literal('table-hash-mismatch'),
    table: z.string(),
    stage: z.enum(['file', 'restored']),
    expected: z.string(),
    actual: z.string(),
  }),
  z.object({
    code: z.literal('table-rows-mismatch'),
    table: z.string(),
    stage: z.enum(['file', 'restored']),
    expected: z.number(),
    actual: z.number(),
  }),
  z.object({ code: z.literal('restore-failed'), table: z.string().optional(), message: z.string() }),
]);
export type RestoreTestReason = z.infer<typeof RestoreTestReason>;

/** A table's verdict in a restore test. */
export interface RestoreTestTable {
  table: string;
  expectedRows: number;
  restoredRows: number | null;
  expectedSha256: string;
  restoredSha256: string | null;
  match: boolean;
}

/** The backup workflow's input: IDs and durations only. */
export interface BackupInput {
  backupId: string;
  /** The keyring backup taken in the same run. */
  keyringBackupId: string;
  /** Who asked: `user:<id>`, `cli:<os user>`, `schedule:<id>`. */
  requestedBy: string;
  /** Start a restore test after the backup (default true). */
  restoreTest?: boolean;
  /** The restore test's ID when one runs (default: derived by the workflow). */
  restoreTestId?: string;
  /** How long the export may go without a heartbeat (`30 seconds`); tests pass less. */
  heartbeatTimeout?: string;
  /** How long the keyring backup is kept, in ms (default CUSTODIAN_KEYRING_BACKUP_RETENTION). */
  keyringRetentionMs?: number;
}

export interface BackupResult {
  backupId: string;
  keyringBackupId: string;
  status: BackupStatus;
  sizeBytes: number;
  restoreTest?: RestoreTestResult;
}

export interface RestoreTestInput {
  restoreTestId: string;
  backupId: string;
  trigger: RestoreTestTrigger;
  requestedBy: string;
  heartbeatTimeout?: string;
}

export interface RestoreTestResult {
  restoreTestId: string;
  backupId: string;
  status: Exclude<RestoreTestStatus, 'running'>;
  reasons: RestoreTestReason[];
  rtoMs: number;
  rpoMs: number;
}

/** POST /v1/backups: nothing to choose yet but whether a restore test follows. */
export const BackupRequest = z.object({ restoreTest: z.boolean().optional() }).strict();
export type BackupRequest = z.infer<typeof BackupRequest>;

/** Failure types the backup and restore-test activities raise that retrying cannot fix. */
export const BACKUP_NON_RETRYABLE = [
  'BackupNotFound',
  'BackupNotRestorable',
  'CryptoError',
  'InvalidInput',
  'AlertRejected',
];

/** The reasons as one line for an alert or a log: codes with their frame or table. */
export const summarizeReasons = (reasons: readonly RestoreTestReason[]): string =>
  reasons
    .map((r) => {
      const where = 'frame' in r ? ` frame ${r.frame}` : 'table' in r && r.table ? ` ${r.table}` : '';
      const stage = 'stage' in r ? ` (${r.stage})` : '';
      return `${r.code}${where}${stage}`;
    })
    .join('; ');
