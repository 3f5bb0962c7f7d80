import { sql } from 'drizzle-orm';
import {
  bigint,
  bigserial,
  boolean,
  check,
  customType,
  date,
  doublePrecision,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

export const bytea = customType<{ data: Buffer; driverData: Buffer }>({
  dataType: () => 'bytea',
});

const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

export const users = pgTable('users', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  role: text('role', { enum: ['admin', 'owner', 'responder', 'approver', 'auditor'] }).notNull(),
  createdAt: createdAt(),
  disabledAt: timestamp('disabled_at', { withTimezone: true }),
});

export const apiKeys = pgTable(
  'api_keys',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    prefix: text('prefix').notNull(),
    keyHash: text('key_hash').notNull(),
    /** The audit actor that issued the key (`user:<id>`, `cli:…`, `system:…`). */
    issuedBy: text('issued_by'),
    createdAt: createdAt(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('api_keys_key_hash_uq').on(t.keyHash), index('api_keys_user_idx').on(t.userId)],
);

/** Append-only, hash-chained. A trigger (see migrations) refuses UPDATE and DELETE. */
export const auditLog = pgTable(
  'audit_log',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actor: text('actor').notNull(),
    action: text('action').notNull(),
    targetType: text('target_type').notNull(),
    targetId: text('target_id').notNull(),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
    /** The API key the actor used, when the change came through the API. */
    apiKeyId: text('api_key_id'),
    details: jsonb('details').$type<Record<string, unknown>>().notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    prevHash: text('prev_hash').notNull(),
    hash: text('hash').notNull(),
  },
  (t) => [
    uniqueIndex('audit_log_idempotency_key_uq').on(t.idempotencyKey),
    index('audit_log_target_idx').on(t.targetType, t.targetId),
    index('audit_log_action_idx').on(t.action),
  ],
);

export const subjects = pgTable(
  'subjects',
  {
    id: uuid('id').primaryKey(),
    externalRef: text('external_ref').notNull(),
    jurisdiction: text('jurisdiction').notNull(),
    locale: text('locale').notNull(),
    status: text('status', { enum: ['active', 'restricted', 'destroyed'] })
      .notNull()
      .default('active'),
    retentionUntil: date('retention_until', { mode: 'string' }),
    legalHold: boolean('legal_hold').notNull().default(false),
    importId: text('import_id'),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [uniqueIndex('subjects_external_ref_uq').on(t.externalRef), index('subjects_import_idx').on(t.importId)],
);

/** Wrapped per-subject data keys. Never part of a data backup: deleting a row crypto-shreds the subject. */
export const subjectKeys = pgTable(
  'subject_keys',
  {
    subjectId: uuid('subject_id').notNull(),
    keyVersion: integer('key_version').notNull(),
    kekVersion: integer('kek_version').notNull(),
    wrappedKey: bytea('wrapped_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.subjectId, t.keyVersion] })],
);

/**
 * One row per subject and field. Personal and sensitive values are only ciphertext (AES-256-GCM under
 * the subject's data key); general values are plain. The blind index is a keyed HMAC, never the value.
 */
export const subjectFields = pgTable(
  'subject_fields',
  {
    /** No foreign key: its per-row check halves bulk-import throughput; the import writes both in one transaction. */
    subjectId: uuid('subject_id').notNull(),
    field: text('field').notNull(),
    classification: text('classification', { enum: ['general', 'personal', 'sensitive'] }).notNull(),
    /** Whether the field was named by the catalog at import; unclassified fields are encrypted as personal. */
    classified: boolean('classified').notNull(),
    valueType: text('value_type', { enum: ['string', 'number', 'boolean'] }).notNull(),
    keyVersion: integer('key_version'),
    ciphertext: bytea('ciphertext'),
    plainValue: text('plain_value'),
    blindIndex: text('blind_index'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    primaryKey({ columns: [t.subjectId, t.field] }),
    index('subject_fields_blind_index_idx')
      .on(t.field, t.blindIndex)
      .where(sql`${t.blindIndex} is not null`),
    check(
      'subject_fields_value_ck',
      sql`(${t.classification} = 'general' and ${t.plainValue} is not null and ${t.ciphertext} is null)
        or (${t.classification} <> 'general' and ${t.ciphertext} is not null and ${t.keyVersion} is not null and ${t.plainValue} is null)`,
    ),
  ],
);

export const subjectImports = pgTable('subject_imports', {
  id: uuid('id').primaryKey(),
  status: text('status', { enum: ['running', 'completed', 'failed', 'cancelled'] })
    .notNull()
    .default('running'),
  mode: text('mode', { enum: ['insert', 'upsert'] }).notNull(),
  requestedBy: text('requested_by').notNull(),
  stagedBytes: bigint('staged_bytes', { mode: 'number' }).notNull(),
  totalLines: integer('total_lines').notNull(),
  processedBytes: bigint('processed_bytes', { mode: 'number' }).notNull().default(0),
  processedLines: integer('processed_lines').notNull().default(0),
  imported: integer('imported').notNull().default(0),
  updated: integer('updated').notNull().default(0),
  duplicates: integer('duplicates').notNull().default(0),
  rejected: integer('rejected').notNull().default(0),
  /** Field names only (never values), capped. */
  unclassifiedFields: text('unclassified_fields')
    .array()
    .notNull()
    .default(sql`'{}'::text[]`),
  /** A failure code and message without personal data. */
  error: text('error'),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  finishedAt: timestamp('finished_at', { withTimezone: true }),
});

/** A committed batch, keyed by where it starts: a retried batch finds its row and never counts twice. */
export const importBatches = pgTable(
  'import_batches',
  {
    importId: uuid('import_id')
      .notNull()
      .references(() => subjectImports.id, { onDelete: 'cascade' }),
    startOffset: bigint('start_offset', { mode: 'number' }).notNull(),
    endOffset: bigint('end_offset', { mode: 'number' }).notNull(),
    firstLine: integer('first_line').notNull(),
    nextLine: integer('next_line').notNull(),
    lines: integer('lines').notNull(),
    imported: integer('imported').notNull(),
    updated: integer('updated').notNull(),
    duplicates: integer('duplicates').notNull(),
    rejected: integer('rejected').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.importId, t.startOffset] })],
);

/** Why a line was rejected: its number and a reason code, never its content or the offending value. */
export const importRejects = pgTable(
  'import_rejects',
  {
    importId: uuid('import_id')
      .notNull()
      .references(() => subjectImports.id, { onDelete: 'cascade' }),
    line: integer('line').notNull(),
    reason: text('reason').notNull(),
    message: text('message').notNull(),
  },
  (t) => [primaryKey({ columns: [t.importId, t.line] })],
);

/**
 * Signed anchors of the audit chain: Ed25519 over (number, seq, head hash, time, previous checkpoint's
 * hash). Also written to a sink the database role cannot rewrite, so a cut tail or a rehashed chain shows.
 */
export const auditCheckpoints = pgTable('audit_checkpoints', {
  /** Gap-free checkpoint number, starting at 1. */
  number: bigint('number', { mode: 'number' }).primaryKey(),
  at: timestamp('at', { withTimezone: true }).notNull(),
  /** The chain head this checkpoint anchors (0 and the genesis hash for an empty chain). */
  seq: bigint('seq', { mode: 'number' }).notNull(),
  headHash: text('head_hash').notNull(),
  prevCheckpointHash: text('prev_checkpoint_hash').notNull(),
  /** SHA-256 of the canonical signed content; the next checkpoint's prev_checkpoint_hash. */
  hash: text('hash').notNull(),
  /** Ed25519 signature (base64) by the keyring's signing key, and that key's ID. */
  signature: text('signature').notNull(),
  keyId: text('key_id').notNull(),
});

/**
 * `Idempotency-Key` of a POST that starts a workflow: the same key from the same user on the same route
 * returns the first result; with a different body it is a conflict.
 */
export const requestIdempotency = pgTable(
  'request_idempotency',
  {
    userId: uuid('user_id').notNull(),
    route: text('route').notNull(),
    key: text('key').notNull(),
    /** SHA-256 of the request (query and body), never the body itself. */
    requestHash: text('request_hash').notNull(),
    /** What the first request created (e.g. the import ID). */
    resourceId: text('resource_id').notNull(),
    workflowId: text('workflow_id').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.route, t.key] })],
);

/**
 * A notice shown to subjects (transfer notice, consent request): immutable once written; a new version is a
 * new row. `textSha256` is over the canonical JSON of the texts and handlers, and receipts cite it.
 */
export const notices = pgTable(
  'notices',
  {
    id: uuid('id').primaryKey(),
    purpose: text('purpose').notNull(),
    version: integer('version').notNull(),
    /** Per locale (`zh-CN`, `en`): title and body. */
    texts: jsonb('texts').$type<Record<string, { title: string; body: string }>>().notNull(),
    /** The new handler (name, contact, address) and, for a transfer, the previous one. */
    handler: jsonb('handler').$type<{ name: string; contact: string; address?: string }>().notNull(),
    previousHandler: jsonb('previous_handler').$type<{ name: string; contact?: string }>(),
    textSha256: text('text_sha256').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [uniqueIndex('notices_purpose_version_uq').on(t.purpose, t.version)],
);

/**
 * The notification outbox: a row per message, keyed by an idempotency key, written before the message is
 * sent, so a retried activity never sends twice. No address or message text is stored: the recipient is
 * a reference (`subject:<id>`) and the rendered body only a hash.
 */
export const notifications = pgTable(
  'notifications',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    idempotencyKey: text('idempotency_key').notNull(),
    channel: text('channel', { enum: ['log', 'webhook', 'smtp'] }).notNull(),
    template: text('template').notNull(),
    locale: text('locale').notNull(),
    subjectId: uuid('subject_id'),
    recipientRef: text('recipient_ref').notNull(),
    status: text('status', { enum: ['pending', 'sent', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    /** A code and message without personal data. */
    lastError: text('last_error'),
    bodySha256: text('body_sha256'),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
    createdAt: createdAt(),
    sentAt: timestamp('sent_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('notifications_idempotency_key_uq').on(t.idempotencyKey),
    index('notifications_subject_idx').on(t.subjectId),
    index('notifications_created_idx').on(t.createdAt),
  ],
);

/**
 * A consent request and its answer, one row per consent (`consent-{id}`); a renewal reopens the same row with
 * the next round. `receipt` is the latest signed receipt (no personal values: references, codes, hashes).
 */
export const consents = pgTable(
  'consents',
  {
    id: uuid('id').primaryKey(),
    subjectId: uuid('subject_id').notNull(),
    noticeId: uuid('notice_id').notNull(),
    purpose: text('purpose').notNull(),
    channel: text('channel').notNull(),
    status: text('status', { enum: ['requested', 'granted', 'denied', 'expired', 'withdrawn'] })
      .notNull()
      .default('requested'),
    round: integer('round').notNull().default(1),
    requestedBy: text('requested_by').notNull(),
    requestedAt: timestamp('requested_at', { withTimezone: true }).notNull(),
    respondBy: timestamp('respond_by', { withTimezone: true }).notNull(),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    validUntil: timestamp('valid_until', { withTimezone: true }),
    withdrawnAt: timestamp('withdrawn_at', { withTimezone: true }),
    /**
     * The separate answer for sensitive personal information (PIPL Art. 29) when the notice's purpose touches
     * `sensitive` catalog fields; null when it touches none or is unanswered. A withdrawal withdraws it too.
     */
    sensitiveDecision: text('sensitive_decision', { enum: ['granted', 'refused'] }),
    receipt: jsonb('receipt').$type<Record<string, unknown>>(),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [index('consents_subject_purpose_idx').on(t.subjectId, t.purpose, t.createdAt)],
);

/** A consent's history: one row per step, keyed by workflow ID + round + step so a retry writes once. */
export const consentEvents = pgTable(
  'consent_events',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    consentId: uuid('consent_id').notNull(),
    round: integer('round').notNull(),
    type: text('type').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actor: text('actor').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
  },
  (t) => [
    uniqueIndex('consent_events_idempotency_key_uq').on(t.idempotencyKey),
    index('consent_events_consent_idx').on(t.consentId, t.at),
  ],
);

/** A purpose a subject's data may not be processed for (consent withdrawn); the subject's `status` is global. */
export const purposeRestrictions = pgTable(
  'purpose_restrictions',
  {
    subjectId: uuid('subject_id').notNull(),
    purpose: text('purpose').notNull(),
    /** The consent whose withdrawal restricted it. */
    consentId: uuid('consent_id').notNull(),
    reason: text('reason', { enum: ['consent-withdrawn'] }).notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.subjectId, t.purpose] })],
);

/**
 * A backup (`backup-{id}`): `data` is every table but the wrapped data keys, `keyring` is those keys alone, kept
 * only for a short retention. `manifest` is the signed manifest (also stored beside the file); phase and bytes
 * done are written as the activity goes, so a reader sees progress. `status` follows the latest restore test.
 */
export const backups = pgTable(
  'backups',
  {
    id: uuid('id').primaryKey(),
    kind: text('kind', { enum: ['data', 'keyring'] }).notNull(),
    status: text('status', {
      enum: ['running', 'completed', 'verified', 'restore-test-failed', 'failed', 'deleted'],
    })
      .notNull()
      .default('running'),
    /** What the running activity is doing (`export`, `upload`, `manifest`, `done`). */
    phase: text('phase'),
    /** Plaintext table bytes exported so far. */
    bytesDone: bigint('bytes_done', { mode: 'number' }).notNull().default(0),
    /** The data backup a keyring backup was taken with. */
    dataBackupId: uuid('data_backup_id'),
    requestedBy: text('requested_by').notNull(),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    /** When the exported snapshot was taken: the data's age (RPO) counts from here. */
    snapshotAt: timestamp('snapshot_at', { withTimezone: true }),
    /** Ciphertext bytes in storage. */
    sizeBytes: bigint('size_bytes', { mode: 'number' }),
    durationMs: integer('duration_ms'),
    /** The signed manifest: `{ manifest, signature }` (domain/backup.ts). */
    manifest: jsonb('manifest').$type<Record<string, unknown>>(),
    storageKey: text('storage_key'),
    /** A failure code and message without personal data. */
    error: text('error'),
    lastRestoreTestId: uuid('last_restore_test_id'),
    lastRestoreTestStatus: text('last_restore_test_status', { enum: ['pass', 'fail'] }),
    lastRestoreTestAt: timestamp('last_restore_test_at', { withTimezone: true }),
    /** A keyring backup is deleted after this (CUSTODIAN_KEYRING_BACKUP_RETENTION). */
    retainUntil: timestamp('retain_until', { withTimezone: true }),
    deletedAt: timestamp('deleted_at', { withTimezone: true }),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
  },
  (t) => [
    index('backups_kind_started_idx').on(t.kind, t.startedAt),
    index('backups_status_idx').on(t.status),
    index('backups_data_backup_idx').on(t.dataBackupId),
  ],
);

/** A restore test of one backup (`restore-test-{id}`): what was compared, what differed, RTO and RPO. */
export const restoreTests = pgTable(
  'restore_tests',
  {
    id: uuid('id').primaryKey(),
    backupId: uuid('backup_id')
      .notNull()
      .references(() => backups.id),
    status: text('status', { enum: ['running', 'pass', 'fail'] })
      .notNull()
      .default('running'),
    /** Who started it: `after-backup`, `api`, `schedule`. */
    trigger: text('trigger').notNull(),
    requestedBy: text('requested_by').notNull(),
    phase: text('phase'),
    /** Ciphertext bytes read so far. */
    bytesDone: bigint('bytes_done', { mode: 'number' }).notNull().default(0),
    /** Why it failed: `[{ code, frame?, table?, expected?, actual? }]` (domain/backup.ts RestoreTestReason). */
    reasons: jsonb('reasons').$type<Record<string, unknown>[]>().notNull().default([]),
    /** Per table: rows and SHA-256 expected and found. */
    tables: jsonb('tables').$type<Record<string, unknown>[]>().notNull().default([]),
    /** Restore duration (recovery time) and the restored data's age when the test started (recovery point). */
    rtoMs: integer('rto_ms'),
    rpoMs: bigint('rpo_ms', { mode: 'number' }),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
  },
  (t) => [index('restore_tests_backup_idx').on(t.backupId, t.startedAt)],
);

/**
 * An operator alert (a page): raised once per idempotency key, sent through the notifier's channel to the
 * operator. No personal data: a kind, a target reference and a reason code. The incident workflow takes over later.
 */
export const alerts = pgTable(
  'alerts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    idempotencyKey: text('idempotency_key').notNull(),
    kind: text('kind').notNull(),
    targetType: text('target_type').notNull(),
    targetId: text('target_id').notNull(),
    reason: text('reason').notNull(),
    /** Codes, counts and IDs that say more (which frame, which table); never personal values. */
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    channel: text('channel', { enum: ['log', 'webhook', 'smtp'] }).notNull(),
    status: text('status', { enum: ['pending', 'sent', 'failed'] })
      .notNull()
      .default('pending'),
    attempts: integer('attempts').notNull().default(0),
    lastError: text('last_error'),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
    createdAt: createdAt(),
    sentAt: timestamp('sent_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('alerts_idempotency_key_uq').on(t.idempotencyKey),
    index('alerts_target_idx').on(t.targetType, t.targetId),
    index('alerts_created_idx').on(t.createdAt),
  ],
);

/**
 * A transfer-notice or re-consent campaign (`campaign-{id}`): what was asked, counters that each committed
 * batch advances in its own transaction, and the final report. Codes, counts and IDs only.
 */
export const campaigns = pgTable('campaigns', {
  id: uuid('id').primaryKey(),
  noticeId: uuid('notice_id').notNull(),
  /** True: one consent workflow per subject (re-consent); false: the transfer notice only. */
  purposeChanged: boolean('purpose_changed').notNull(),
  /** The subject filter, each part optional. */
  jurisdiction: text('jurisdiction'),
  importId: text('import_id'),
  /** Subjects per second; null when unlimited. */
  ratePerSecond: doublePrecision('rate_per_second'),
  batchSize: integer('batch_size').notNull(),
  /** Re-consent only: the consent durations (ms) and reminders each consent workflow gets. */
  consentTerms: jsonb('consent_terms').$type<{
    respondWithinMs: number;
    remindEveryMs: number;
    maxReminders: number;
    validForMs: number;
  }>(),
  status: text('status', { enum: ['running', 'completed', 'cancelled', 'failed'] })
    .notNull()
    .default('running'),
  requestedBy: text('requested_by').notNull(),
  /** Subjects matching the filter when the campaign began. */
  total: integer('total').notNull().default(0),
  /** Subjects reached so far, and what became of them. */
  targeted: integer('targeted').notNull().default(0),
  notified: integer('notified').notNull().default(0),
  consentsRequested: integer('consents_requested').notNull().default(0),
  failed: integer('failed').notNull().default(0),
  batches: integer('batches').notNull().default(0),
  /** The final report, written once when the campaign ends. */
  report: jsonb('report').$type<Record<string, unknown>>(),
  /** A failure type, never a message. */
  error: text('error'),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull().defaultNow(),
  finishedAt: timestamp('finished_at', { withTimezone: true }),
});

/** A committed campaign batch, keyed by the subject ID its page starts after: a retried batch finds its row. */
export const campaignBatches = pgTable(
  'campaign_batches',
  {
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    /** The subject ID the page starts after; '' for the first page. */
    startAfter: text('start_after').notNull(),
    endSubjectId: uuid('end_subject_id').notNull(),
    subjects: integer('subjects').notNull(),
    notified: integer('notified').notNull(),
    consentsRequested: integer('consents_requested').notNull(),
    failed: integer('failed').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.campaignId, t.startAfter] })],
);

/** What a campaign did for one subject: notified, consent requested (with the consent's ID) or failed (a type). */
export const campaignTargets = pgTable(
  'campaign_targets',
  {
    campaignId: uuid('campaign_id')
      .notNull()
      .references(() => campaigns.id, { onDelete: 'cascade' }),
    subjectId: uuid('subject_id').notNull(),
    outcome: text('outcome', { enum: ['notified', 'consent-requested', 'failed'] }).notNull(),
    /** The consent a re-consent campaign asked for: a name-based UUID of the campaign and subject IDs. */
    consentId: uuid('consent_id'),
    /** A failure type (NoRecipient, NotificationRejected …), never a message. */
    error: text('error'),
  },
  (t) => [primaryKey({ columns: [t.campaignId, t.subjectId] })],
);

/**
 * Where a user is paged (a mail address or whatever the notifier's channel routes on), encrypted: AES-256-GCM
 * under a key derived (HKDF, `custodian/user-contact/v1`) from the KEK version named here, AAD binding the user.
 */
export const userContacts = pgTable('user_contacts', {
  userId: uuid('user_id')
    .primaryKey()
    .references(() => users.id),
  kekVersion: integer('kek_version').notNull(),
  ciphertext: bytea('ciphertext').notNull(),
  /** The language pages are written in (`zh-CN` or `en`). */
  locale: text('locale').notNull().default('zh-CN'),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** An on-call rotation (domain/oncall.ts): responders in order, a handoff interval from a local start time in a zone. */
export const oncallSchedules = pgTable('oncall_schedules', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  timeZone: text('time_zone').notNull(),
  /** The first handoff as a local date-time in the zone (`2025-03-03T09:00`). */
  startLocal: text('start_local').notNull(),
  handoffEvery: integer('handoff_every').notNull(),
  handoffUnit: text('handoff_unit', { enum: ['hours', 'days', 'weeks'] }).notNull(),
  responders: uuid('responders').array().notNull(),
  /** Who covers from/to (ISO instants), in the order added: a later one wins where two overlap. */
  overrides: jsonb('overrides')
    .$type<{ userId: string; from: string; to: string; addedBy: string }[]>()
    .notNull()
    .default([]),
  createdBy: text('created_by').notNull(),
  createdAt: createdAt(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
});

/** An escalation policy (domain/escalation.ts); frozen into each incident when it is triggered. */
export const escalationPolicies = pgTable('escalation_policies', {
  id: uuid('id').primaryKey(),
  name: text('name').notNull(),
  levels: jsonb('levels').$type<{ targets: { type: 'user' | 'schedule'; id: string }[]; waitMs: number }[]>().notNull(),
  repeat: integer('repeat').notNull(),
  reescalateAfterMs: bigint('reescalate_after_ms', { mode: 'number' }),
  createdBy: text('created_by').notNull(),
  createdAt: createdAt(),
});

/**
 * An incident (`incident-{id}`), written by its workflow's activities. The title and every other text are in
 * incident_texts; this row holds codes, IDs, counts and times, the frozen policy and the deadlines.
 */
export const incidents = pgTable(
  'incidents',
  {
    id: uuid('id').primaryKey(),
    status: text('status', {
      enum: ['triggered', 'unacknowledged', 'acknowledged', 'investigating', 'contained', 'resolved', 'closed'],
    }).notNull(),
    severity: text('severity', { enum: ['sev1', 'sev2', 'sev3', 'sev4'] }).notNull(),
    category: text('category').notNull(),
    titleTextId: uuid('title_text_id').notNull(),
    personalData: boolean('personal_data').notNull(),
    jurisdictions: text('jurisdictions').array().notNull(),
    awareAt: timestamp('aware_at', { withTimezone: true }).notNull(),
    openedBy: text('opened_by').notNull(),
    openedAt: timestamp('opened_at', { withTimezone: true }).notNull(),
    policyId: uuid('policy_id').notNull(),
    /** The escalation policy as it was when the incident was triggered. */
    policy: jsonb('policy').$type<Record<string, unknown>>().notNull(),
    /** Where the escalation stands: round (1 + re-escalations), cycle, level, when that level was paged. */
    escalation: jsonb('escalation').$type<{ round: number; cycle: number; level: number; pagedAt: string }>(),
    acknowledgedBy: text('acknowledged_by'),
    acknowledgedAt: timestamp('acknowledged_at', { withTimezone: true }),
    /** A regulator deadline passed without a notification. */
    late: boolean('late').notNull().default(false),
    affectedCount: bigint('affected_count', { mode: 'number' }).notNull().default(0),
    /** How the affected subjects were named: counts and an import ID, never the subjects' data. */
    affected: jsonb('affected').$type<Record<string, unknown>>().notNull(),
    cnOperator: text('cn_operator', { enum: ['cii', 'other'] }).notNull(),
    gradeSuggested: text('grade_suggested').notNull(),
    gradeConfirmed: text('grade_confirmed'),
    gradeConfirmedBy: text('grade_confirmed_by'),
    /** The deadlines (domain/regulatory-clocks.ts) with what fired and when each was met. */
    deadlines: jsonb('deadlines').$type<Record<string, unknown>[]>().notNull().default([]),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
    postmortemDueAt: timestamp('postmortem_due_at', { withTimezone: true }),
    closedAt: timestamp('closed_at', { withTimezone: true }),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('incidents_status_idx').on(t.status, t.openedAt),
    index('incidents_severity_idx').on(t.severity, t.openedAt),
    index('incidents_opened_idx').on(t.openedAt),
  ],
);

/** The subjects an incident names (for breach notices), by ID only. */
export const incidentAffectedSubjects = pgTable(
  'incident_affected_subjects',
  {
    incidentId: uuid('incident_id').notNull(),
    subjectId: uuid('subject_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.incidentId, t.subjectId] })],
);

/**
 * Free text of an incident (title, notes, resolution summary, postmortem, reasons for a late notification),
 * written by the API before the workflow is told; workflow history, the timeline's details and the audit carry
 * its ID and SHA-256 only.
 */
export const incidentTexts = pgTable(
  'incident_texts',
  {
    id: uuid('id').primaryKey(),
    incidentId: uuid('incident_id').notNull(),
    kind: text('kind').notNull(),
    body: text('body').notNull(),
    sha256: text('sha256').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('incident_texts_incident_idx').on(t.incidentId)],
);

/** Who did what when, one row per event, keyed by workflow ID + step so a retry writes once. */
export const incidentTimeline = pgTable(
  'incident_timeline',
  {
    n: bigserial('n', { mode: 'number' }).primaryKey(),
    incidentId: uuid('incident_id').notNull(),
    type: text('type').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actor: text('actor').notNull(),
    /** Codes, IDs, counts: never text or personal data. */
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    textId: uuid('text_id'),
    idempotencyKey: text('idempotency_key').notNull(),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
  },
  (t) => [
    uniqueIndex('incident_timeline_idempotency_key_uq').on(t.idempotencyKey),
    index('incident_timeline_incident_idx').on(t.incidentId, t.at),
  ],
);

/**
 * A page to one user for one level of one cycle of one round: once per (incident, round, cycle, level, user).
 * Its row also backs the page's acknowledgement link (signed, expiring, used once).
 */
export const incidentPages = pgTable(
  'incident_pages',
  {
    id: uuid('id').primaryKey(),
    incidentId: uuid('incident_id').notNull(),
    round: integer('round').notNull(),
    cycle: integer('cycle').notNull(),
    level: integer('level').notNull(),
    userId: uuid('user_id').notNull(),
    /** Named by the level (`user`) or on call for a schedule the level named. */
    via: text('via', { enum: ['user', 'schedule'] }).notNull(),
    scheduleId: uuid('schedule_id'),
    status: text('status', { enum: ['pending', 'sent', 'failed'] })
      .notNull()
      .default('pending'),
    /** A failure type (NoRecipient, NotificationRejected …), never a message. */
    error: text('error'),
    notificationId: uuid('notification_id'),
    pagedAt: timestamp('paged_at', { withTimezone: true }).notNull(),
    sentAt: timestamp('sent_at', { withTimezone: true }),
    linkExpiresAt: timestamp('link_expires_at', { withTimezone: true }).notNull(),
    linkUsedAt: timestamp('link_used_at', { withTimezone: true }),
  },
  (t) => [
    uniqueIndex('incident_pages_step_user_uq').on(t.incidentId, t.round, t.cycle, t.level, t.userId),
    index('incident_pages_incident_idx').on(t.incidentId, t.pagedAt),
  ],
);

/** A notification to a regulator, against one of the incident's deadlines (several may come in phases). */
export const regulatorNotifications = pgTable(
  'regulator_notifications',
  {
    id: uuid('id').primaryKey(),
    incidentId: uuid('incident_id').notNull(),
    deadline: text('deadline').notNull(),
    authority: text('authority').notNull(),
    reference: text('reference').notNull(),
    notifiedAt: timestamp('notified_at', { withTimezone: true }).notNull(),
    late: boolean('late').notNull(),
    /** incident_texts row with the reasons for a late notification (GDPR Art. 33(1)). */
    reasonsTextId: uuid('reasons_text_id'),
    recordedBy: text('recorded_by').notNull(),
    idempotencyKey: text('idempotency_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('regulator_notifications_idempotency_key_uq').on(t.idempotencyKey),
    index('regulator_notifications_incident_idx').on(t.incidentId, t.notifiedAt),
  ],
);

/** A legal hold (`POST /v1/legal-holds`): while active, its subjects cannot be destroyed, swept or exported for deletion. */
export const legalHolds = pgTable('legal_holds', {
  id: uuid('id').primaryKey(),
  status: text('status', { enum: ['active', 'released'] })
    .notNull()
    .default('active'),
  reason: text('reason').notNull(),
  /** The filter the hold was placed by (codes and IDs), null when it named subject IDs. */
  filter: jsonb('filter').$type<Record<string, unknown>>(),
  subjects: integer('subjects').notNull(),
  createdBy: text('created_by').notNull(),
  createdAt: createdAt(),
  releasedBy: text('released_by'),
  releasedAt: timestamp('released_at', { withTimezone: true }),
  releaseReason: text('release_reason'),
});

/** The subjects a hold covers, fixed when it is placed; `subjects.legal_hold` is true iff an active hold covers one. */
export const legalHoldSubjects = pgTable(
  'legal_hold_subjects',
  {
    holdId: uuid('hold_id').notNull(),
    subjectId: uuid('subject_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.holdId, t.subjectId] }), index('legal_hold_subjects_subject_idx').on(t.subjectId)],
);

/** A destruction request (`destruction-{id}`): scope, approvals, progress counts, and its certificate once issued. */
export const destructions = pgTable(
  'destructions',
  {
    id: uuid('id').primaryKey(),
    status: text('status', {
      enum: [
        'awaiting-approval',
        'grace',
        'destroying',
        'verifying',
        'completed',
        'refused',
        'rejected',
        'expired',
        'cancelled',
        'failed',
      ],
    }).notNull(),
    /** The scope as requested (domain/destruction.ts `DestructionScope`): IDs, a purpose, field names. */
    scope: jsonb('scope').$type<Record<string, unknown>>().notNull(),
    /** A system starter's fixed reason (codes and IDs); a person's reason is in process_texts (`reason_text_id`). */
    reason: text('reason'),
    reasonTextId: uuid('reason_text_id'),
    requestedBy: text('requested_by').notNull(),
    /** What opened it: `{ kind: 'request' | 'consent' | 'sweep', … }`, null when a user did. */
    origin: jsonb('origin').$type<Record<string, unknown>>(),
    autoApproved: boolean('auto_approved').notNull().default(false),
    /** Subjects the scope matched, those excluded under legal hold, and those left to destroy. */
    matched: integer('matched').notNull().default(0),
    held: integer('held').notNull().default(0),
    targeted: integer('targeted').notNull().default(0),
    subjectsDestroyed: integer('subjects_destroyed').notNull().default(0),
    keysDestroyed: integer('keys_destroyed').notNull().default(0),
    fieldRowsDeleted: integer('field_rows_deleted').notNull().default(0),
    /** `[{ userId, actor, decision, commentTextId, at }]` in the order they came (`comment` in rows from before texts). */
    approvals: jsonb('approvals')
      .$type<
        {
          userId: string;
          actor: string;
          decision: 'approve' | 'reject';
          commentTextId?: string;
          comment?: string;
          at: string;
        }[]
      >()
      .notNull()
      .default([]),
    approvalDeadline: timestamp('approval_deadline', { withTimezone: true }),
    graceUntil: timestamp('grace_until', { withTimezone: true }),
    /** Why it ended without destroying (refused, rejected, expired, cancelled, failed): a code and text, no data. */
    outcome: text('outcome'),
    certificateId: uuid('certificate_id'),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
    finishedAt: timestamp('finished_at', { withTimezone: true }),
  },
  (t) => [index('destructions_status_idx').on(t.status, t.createdAt)],
);

/**
 * Free text a person wrote for a process (a destruction's reason, an approver's comment, a cancellation's reason),
 * written by the API before the workflow is told: workflow input, history and the audit carry its ID (and SHA-256)
 * only. `process` names the kind of process (`destruction`), `process_id` its ID.
 */
export const processTexts = pgTable(
  'process_texts',
  {
    id: uuid('id').primaryKey(),
    process: text('process').notNull(),
    processId: uuid('process_id').notNull(),
    kind: text('kind').notNull(),
    body: text('body').notNull(),
    sha256: text('sha256').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('process_texts_process_idx').on(t.process, t.processId)],
);

/** The subjects a destruction resolved to (held ones excluded); `fields` set for a field-scope destruction. */
export const destructionTargets = pgTable(
  'destruction_targets',
  {
    destructionId: uuid('destruction_id').notNull(),
    subjectId: uuid('subject_id').notNull(),
    fields: text('fields').array(),
  },
  (t) => [primaryKey({ columns: [t.destructionId, t.subjectId] })],
);

/** One shredding batch, keyed by the subject it starts after ('' for the first), committed with its effects. */
export const destructionBatches = pgTable(
  'destruction_batches',
  {
    destructionId: uuid('destruction_id').notNull(),
    startAfter: text('start_after').notNull(),
    lastSubjectId: uuid('last_subject_id').notNull(),
    subjects: integer('subjects').notNull(),
    keys: integer('keys').notNull(),
    fieldRows: integer('field_rows').notNull(),
    /** SHA-256 over the batch's destroyed key IDs (`subject:version`, sorted), chained into the certificate. */
    keyIdsSha256: text('key_ids_sha256').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.destructionId, t.startAfter] })],
);

/** A signed certificate of destruction (NIST SP 800-88 App. G, adapted): the body, its signature, its audit entry. */
export const destructionCertificates = pgTable(
  'destruction_certificates',
  {
    id: uuid('id').primaryKey(),
    destructionId: uuid('destruction_id').notNull(),
    certificate: jsonb('certificate').$type<Record<string, unknown>>().notNull(),
    signature: jsonb('signature').$type<{ keyId: string; algorithm: 'Ed25519'; signature: string }>().notNull(),
    sha256: text('sha256').notNull(),
    /** The audit entry that records the certificate's hash. */
    auditSeq: bigint('audit_seq', { mode: 'number' }),
    issuedAt: timestamp('issued_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('destruction_certificates_destruction_uq').on(t.destructionId)],
);

/**
 * A user's capability (`reveal`) on a data classification and/or a purpose, until it expires or is revoked. Checked
 * in the database at request time, so a revocation or an expiry takes effect at once.
 */
export const accessGrants = pgTable(
  'access_grants',
  {
    id: uuid('id').primaryKey(),
    userId: uuid('user_id').notNull(),
    capability: text('capability', { enum: ['reveal'] }).notNull(),
    /** The data classification the grant covers; null covers every classification the purpose reaches. */
    classification: text('classification', { enum: ['general', 'personal', 'sensitive'] }),
    /** The catalog purpose the grant is limited to; null for any purpose. */
    purpose: text('purpose'),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
    /** The user who certifies the grant in access reviews; never the grantee. */
    reviewerId: uuid('reviewer_id').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
    revokedAt: timestamp('revoked_at', { withTimezone: true }),
    revokedBy: text('revoked_by'),
    /** `revoked` (by an admin), `review-revoked` (a reviewer's decision) or `not-certified` (a review's deadline). */
    revokeReason: text('revoke_reason'),
  },
  (t) => [
    index('access_grants_user_idx').on(t.userId, t.capability),
    check('access_grants_scope_ck', sql`${t.classification} is not null or ${t.purpose} is not null`),
    check('access_grants_reviewer_ck', sql`${t.reviewerId} <> ${t.userId}`),
  ],
);

/** One access review (`access-review-{id}`): the grants active when it started, each kept or revoked by the deadline. */
export const accessReviews = pgTable('access_reviews', {
  id: uuid('id').primaryKey(),
  /** The calendar quarter it certifies, e.g. `2026-Q4` (UTC, from the start). */
  period: text('period').notNull(),
  status: text('status', { enum: ['open', 'closed'] }).notNull(),
  requestedBy: text('requested_by').notNull(),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
  deadlineAt: timestamp('deadline_at', { withTimezone: true }).notNull(),
  closedAt: timestamp('closed_at', { withTimezone: true }),
  /** Counts at the close: total, kept, revoked, notCertified. */
  summary: jsonb('summary').$type<Record<string, number>>(),
  workflowId: text('workflow_id'),
  runId: text('run_id'),
});

/** A grant in a review: its reviewer, the decision (who, when) and the outcome at the close. */
export const accessReviewItems = pgTable(
  'access_review_items',
  {
    reviewId: uuid('review_id').notNull(),
    grantId: uuid('grant_id').notNull(),
    granteeId: uuid('grantee_id').notNull(),
    reviewerId: uuid('reviewer_id').notNull(),
    decision: text('decision', { enum: ['keep', 'revoke'] }),
    decidedBy: text('decided_by'),
    decidedApiKeyId: uuid('decided_api_key_id'),
    decidedAt: timestamp('decided_at', { withTimezone: true }),
    /** `kept`, `revoked`, `not-certified`, or `ended` (expired or revoked elsewhere before the close). */
    outcome: text('outcome'),
  },
  (t) => [
    primaryKey({ columns: [t.reviewId, t.grantId] }),
    index('access_review_items_reviewer_idx').on(t.reviewId, t.reviewerId),
  ],
);

/** A compliance-calendar entry: a duty with its source, owner, recurrence and next due date. */
export const obligations = pgTable(
  'obligations',
  {
    id: uuid('id').primaryKey(),
    /** A stable name (`pi-compliance-audit`); the seeded defaults are found by it. */
    key: text('key').notNull(),
    title: text('title').notNull(),
    source: text('source').notNull(),
    /** The responsible user; null: every owner. */
    ownerId: uuid('owner_id'),
    recurrenceMonths: integer('recurrence_months').notNull(),
    nextDueAt: timestamp('next_due_at', { withTimezone: true }).notNull(),
    /** How long before the due date the owner is reminded. */
    remindBeforeMs: bigint('remind_before_ms', { mode: 'number' }).notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
    lastCompletedAt: timestamp('last_completed_at', { withTimezone: true }),
  },
  (t) => [uniqueIndex('obligations_key_uq').on(t.key), index('obligations_due_idx').on(t.nextDueAt)],
);

/** Evidence that an obligation was met for one due date: a note and/or a file's SHA-256, by whom and when. */
export const obligationCompletions = pgTable(
  'obligation_completions',
  {
    id: uuid('id').primaryKey(),
    obligationId: uuid('obligation_id').notNull(),
    dueAt: timestamp('due_at', { withTimezone: true }).notNull(),
    completedAt: timestamp('completed_at', { withTimezone: true }).notNull(),
    completedBy: text('completed_by').notNull(),
    apiKeyId: uuid('api_key_id'),
    evidenceNote: text('evidence_note'),
    evidenceSha256: text('evidence_sha256'),
    nextDueAt: timestamp('next_due_at', { withTimezone: true }).notNull(),
  },
  (t) => [uniqueIndex('obligation_completions_due_uq').on(t.obligationId, t.dueAt)],
);

/**
 * A data-subject request (`request-{id}`): access, portability, correction, erasure, restriction, objection (a
 * credit-record dispute) or complaint, with its legal clock. Codes, IDs and times only: every text the subject or
 * staff wrote is in request_texts, encrypted under the subject's data key.
 */
export const requests = pgTable(
  'requests',
  {
    id: uuid('id').primaryKey(),
    type: text('type', {
      enum: ['access', 'portability', 'correction', 'erasure', 'restriction', 'objection', 'complaint'],
    }).notNull(),
    subjectId: uuid('subject_id').notNull(),
    channel: text('channel').notNull(),
    jurisdiction: text('jurisdiction').notNull(),
    status: text('status', { enum: ['verifying', 'open', 'paused', 'fulfilled', 'refused', 'expired'] }).notNull(),
    receivedAt: timestamp('received_at', { withTimezone: true }).notNull(),
    /** The current due time: receipt + window + extension + time paused. */
    dueAt: timestamp('due_at', { withTimezone: true }).notNull(),
    /** The clock (domain/request-clocks.ts): its rule and source, extension, pauses, reminders fired. */
    clock: jsonb('clock').$type<Record<string, unknown>>().notNull(),
    /** How the requester's identity was verified: method, who, when; the reference is a request text. */
    verification: jsonb('verification').$type<Record<string, unknown>>(),
    assignee: text('assignee'),
    late: boolean('late').notNull().default(false),
    /** Field names (objection, correction) and purposes (restriction) the request names. */
    fields: text('fields').array().notNull().default([]),
    purposes: text('purposes').array().notNull().default([]),
    category: text('category'),
    outcome: text('outcome'),
    /** The destruction an erasure opened (destruction-{id}). */
    destructionId: uuid('destruction_id'),
    filedBy: text('filed_by').notNull(),
    closedAt: timestamp('closed_at', { withTimezone: true }),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
    createdAt: createdAt(),
    updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  },
  (t) => [
    index('requests_status_idx').on(t.status, t.receivedAt),
    index('requests_type_idx').on(t.type, t.receivedAt),
    index('requests_subject_idx').on(t.subjectId),
    index('requests_received_idx').on(t.receivedAt),
  ],
);

/** A request's texts (details, notes, reasons, statements, replies, new values), sealed under the subject's data key. */
export const requestTexts = pgTable(
  'request_texts',
  {
    id: uuid('id').primaryKey(),
    requestId: uuid('request_id').notNull(),
    subjectId: uuid('subject_id').notNull(),
    kind: text('kind').notNull(),
    keyVersion: integer('key_version').notNull(),
    ciphertext: bytea('ciphertext').notNull(),
    sha256: text('sha256').notNull(),
    createdBy: text('created_by').notNull(),
    createdAt: createdAt(),
  },
  (t) => [index('request_texts_request_idx').on(t.requestId)],
);

/** A request's timeline, one row per event, keyed by workflow ID + step so a retry writes once. */
export const requestEvents = pgTable(
  'request_events',
  {
    n: bigserial('n', { mode: 'number' }).primaryKey(),
    requestId: uuid('request_id').notNull(),
    type: text('type').notNull(),
    at: timestamp('at', { withTimezone: true }).notNull(),
    actor: text('actor').notNull(),
    /** Codes, IDs, counts, hashes: never text or personal values. */
    details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
    textId: uuid('text_id'),
    idempotencyKey: text('idempotency_key').notNull(),
    workflowId: text('workflow_id'),
    runId: text('run_id'),
  },
  (t) => [
    uniqueIndex('request_events_idempotency_key_uq').on(t.idempotencyKey),
    index('request_events_request_idx').on(t.requestId, t.at),
  ],
);

/**
 * An access or portability export: its hash and recipient. `sealed` is the encrypted export until it is served
 * (a link: then cleared) — under a one-time password's key or a key wrapped by the keyring (`wrappedKey`).
 */
export const requestExports = pgTable(
  'request_exports',
  {
    id: uuid('id').primaryKey(),
    requestId: uuid('request_id').notNull(),
    subjectId: uuid('subject_id').notNull(),
    delivery: text('delivery', { enum: ['password', 'link'] }).notNull(),
    sha256: text('sha256').notNull(),
    bytes: integer('bytes').notNull(),
    recipient: text('recipient').notNull(),
    sealed: bytea('sealed'),
    wrappedKey: bytea('wrapped_key'),
    linkExpiresAt: timestamp('link_expires_at', { withTimezone: true }),
    servedAt: timestamp('served_at', { withTimezone: true }),
    idempotencyKey: text('idempotency_key').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    uniqueIndex('request_exports_idempotency_key_uq').on(t.idempotencyKey),
    index('request_exports_request_idx').on(t.requestId),
  ],
);

/**
 * A credit-record field under objection (征信业管理条例 Art. 25): marked when the objection is filed, resolved by
 * its outcome; the subject's statement (Art. 16) is a request text kept beside the record.
 */
export const fieldObjections = pgTable(
  'field_objections',
  {
    requestId: uuid('request_id').notNull(),
    subjectId: uuid('subject_id').notNull(),
    field: text('field').notNull(),
    status: text('status', { enum: ['under-objection', 'corrected', 'upheld', 'unresolved'] }).notNull(),
    markedAt: timestamp('marked_at', { withTimezone: true }).notNull(),
    resolvedAt: timestamp('resolved_at', { withTimezone: true }),
    statementTextId: uuid('statement_text_id'),
  },
  (t) => [primaryKey({ columns: [t.requestId, t.field] }), index('field_objections_subject_idx').on(t.subjectId)],
);

/** A purpose restricted by a data-subject request (a restriction, or an erasure the law turned into one). */
export const requestRestrictions = pgTable(
  'request_restrictions',
  {
    subjectId: uuid('subject_id').notNull(),
    purpose: text('purpose').notNull(),
    requestId: uuid('request_id').notNull(),
    /** `subject-request`, `legal-hold`, `retention-obligation`. */
    reason: text('reason').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.subjectId, t.purpose, t.requestId] })],
);

/**
 * Data-quality reports (`quality-check-{id}`): counts only, never a value. `fields` holds per-field completeness,
 * validity and uniqueness counts; `breaches` the thresholds the report broke.
 */
export const qualityReports = pgTable(
  'quality_reports',
  {
    id: uuid('id').primaryKey(),
    workflowId: text('workflow_id').notNull(),
    status: text('status', { enum: ['running', 'completed'] })
      .notNull()
      .default('running'),
    requestedBy: text('requested_by').notNull(),
    thresholds: jsonb('thresholds').$type<Record<string, unknown>>().notNull(),
    subjectsChecked: integer('subjects_checked').notNull().default(0),
    fields: jsonb('fields').$type<Record<string, unknown>>().notNull().default({}),
    timeliness: jsonb('timeliness').$type<Record<string, unknown>>().notNull().default({}),
    consistency: jsonb('consistency').$type<Record<string, unknown>>().notNull().default({}),
    breaches: jsonb('breaches').$type<unknown[]>().notNull().default([]),
    alertId: text('alert_id'),
    incidentId: text('incident_id'),
    startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
    completedAt: timestamp('completed_at', { withTimezone: true }),
  },
  (t) => [index('quality_reports_started_idx').on(t.startedAt)],
);

/** One page of a quality check, keyed by the subject it starts after, with its counts (committed once). */
export const qualityBatches = pgTable(
  'quality_batches',
  {
    checkId: uuid('check_id').notNull(),
    startAfter: text('start_after').notNull(),
    nextAfter: text('next_after'),
    subjects: integer('subjects').notNull(),
    counts: jsonb('counts').$type<Record<string, unknown>>().notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.checkId, t.startAfter] })],
);

/**
 * KEK versions made by key rotation, each wrapped under a KEK of the configured keyring (`wrapped_by`), and the
 * state of every version rotation has seen (`keyring` rows carry no material: it stays in the key file).
 * Key material: kept out of data backups (activities/backup-copy.ts KEY_MATERIAL_TABLES).
 */
export const kekVersions = pgTable('kek_versions', {
  version: integer('version').primaryKey(),
  source: text('source', { enum: ['keyring', 'rotation'] }).notNull(),
  wrappedKey: bytea('wrapped_key'),
  wrappedBy: integer('wrapped_by'),
  status: text('status', { enum: ['active', 'retired'] }).notNull(),
  rotationId: uuid('rotation_id'),
  createdAt: createdAt(),
  retiredAt: timestamp('retired_at', { withTimezone: true }),
});

/** A key rotation (`key-rotation-{id}`) and its evidence: versions, counts, duration. */
export const keyRotations = pgTable('key_rotations', {
  id: uuid('id').primaryKey(),
  workflowId: text('workflow_id').notNull(),
  status: text('status', { enum: ['rewrapping', 'completed'] }).notNull(),
  requestedBy: text('requested_by').notNull(),
  fromVersions: jsonb('from_versions').$type<number[]>().notNull(),
  toVersion: integer('to_version').notNull(),
  keysRewrapped: integer('keys_rewrapped').notNull().default(0),
  keysVerified: integer('keys_verified').notNull().default(0),
  startedAt: timestamp('started_at', { withTimezone: true }).notNull(),
  completedAt: timestamp('completed_at', { withTimezone: true }),
});

/** One re-wrap batch, keyed by the key it starts after, committed in the same transaction as its re-wrapped keys. */
export const keyRotationBatches = pgTable(
  'key_rotation_batches',
  {
    rotationId: uuid('rotation_id').notNull(),
    startAfter: text('start_after').notNull(),
    nextAfter: text('next_after'),
    rewrapped: integer('rewrapped').notNull(),
    skipped: integer('skipped').notNull(),
    createdAt: createdAt(),
  },
  (t) => [primaryKey({ columns: [t.rotationId, t.startAfter] })],
);

/**
 * A console sign-in: the cookie carries a random token, only its SHA-256 is stored. The session lives no longer
 * than its key (checked against `api_keys.revoked_at` on every request), idles out and ends at `expires_at`.
 */
export const consoleSessions = pgTable(
  'console_sessions',
  {
    /** SHA-256 (hex) of the cookie's token. */
    idHash: text('id_hash').primaryKey(),
    userId: uuid('user_id')
      .notNull()
      .references(() => users.id),
    /** The key signed in with; null for a session a page's link started (scoped to `incidentId`). */
    apiKeyId: uuid('api_key_id').references(() => apiKeys.id),
    /** A page-link session: the one incident it may see and work (short-lived; no API key was presented). */
    incidentId: uuid('incident_id').references(() => incidents.id),
    /** The page whose single-use link started it (incident_pages.id). */
    pageId: uuid('page_id').references(() => incidentPages.id),
    /** The synchronizer CSRF token every form of this session carries (random, never derived from the cookie). */
    csrfSecret: text('csrf_secret').notNull(),
    createdAt: createdAt(),
    lastSeenAt: timestamp('last_seen_at', { withTimezone: true }).notNull(),
    idleExpiresAt: timestamp('idle_expires_at', { withTimezone: true }).notNull(),
    expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  },
  (t) => [
    index('console_sessions_key_idx').on(t.apiKeyId),
    index('console_sessions_expires_idx').on(t.expiresAt),
    // Either signed in with a key, or by a page's link for one incident: never both, never neither.
    check(
      'console_sessions_origin_ck',
      sql`(${t.apiKeyId} is not null and ${t.incidentId} is null and ${t.pageId} is null) or (${t.apiKeyId} is null and ${t.incidentId} is not null and ${t.pageId} is not null)`,
    ),
  ],
);
