import {
  bigint,
  boolean,
  customType,
  date,
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

/** Records that a workflow step's side effect happened, so a retried activity does it once. */
export const activityEffects = pgTable('activity_effects', {
  idempotencyKey: text('idempotency_key').primaryKey(),
  result: jsonb('result').$type<unknown>(),
  createdAt: createdAt(),
});
