import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { Duration } from '../domain/consent';
import { TASK_QUEUE_DEFAULT } from '../domain/ids';
import { parseJsonText, QualityThresholds } from '../domain/quality';

const Port = z.coerce.number().int().min(1).max(65535);
const optionalString = z
  .string()
  .trim()
  .transform((v) => (v === '' ? undefined : v))
  .optional();

const Env = z.object({
  CUSTODIAN_DATA_DIR: z.string().trim().min(1).default('.data'),
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  /** The owning role, for migrations only; the service (DATABASE_URL) then gets its grants after each. */
  CUSTODIAN_MIGRATION_DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  /** Separate pools, so a stuck import cannot starve the API; timeouts are enforced by the server. */
  CUSTODIAN_API_DB_POOL_MAX: z.coerce.number().int().min(1).default(10),
  CUSTODIAN_API_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(15_000),
  CUSTODIAN_API_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(0).default(10_000),
  CUSTODIAN_WORKER_DB_POOL_MAX: z.coerce.number().int().min(1).default(10),
  CUSTODIAN_WORKER_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(120_000),
  CUSTODIAN_WORKER_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
  /**
   * Workflow runs a worker keeps in memory. A cached run costs ~1.6 MiB (each evaluates the bundle, zod included);
   * the SDK's heap-derived default (~2,300 here) exhausted the workflow thread's heap at ~4,000 waiting consents,
   * 500 held 10,000 waiting ones at 2.7 GiB (bench consent-memory). Evicted runs replay when their next task comes.
   */
  CUSTODIAN_WORKER_MAX_CACHED_WORKFLOWS: z.coerce.number().int().min(0).default(500),
  TEMPORAL_ADDRESS: optionalString.pipe(
    z
      .string()
      .regex(/^[^\s:/]+:\d{1,5}$/, 'must be host:port')
      .optional(),
  ),
  TEMPORAL_NAMESPACE: z.string().trim().min(1).default('default'),
  TEMPORAL_TASK_QUEUE: z.string().trim().min(1).default(TASK_QUEUE_DEFAULT),
  TEMPORAL_UI_PORT: Port.default(8233),
  PORT: Port.default(3000),
  HOST: z.string().trim().min(1).default('127.0.0.1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  CUSTODIAN_BODY_LIMIT_BYTES: z.coerce.number().int().positive().default(1_048_576),
  /** How long one request (a streamed import upload above all) may take; headers must still come within 60 s. */
  CUSTODIAN_REQUEST_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(6 * 3600_000),
  /** Bearer token for GET /metrics (Prometheus `authorization: credentials`); unset, /metrics refuses every request. */
  CUSTODIAN_METRICS_TOKEN: optionalString.pipe(z.string().min(16, 'must be at least 16 characters').optional()),
  /** Blind-index searches per API key per window, counted by each API process (a token bucket in memory). */
  CUSTODIAN_SEARCH_RATE_LIMIT: z.coerce.number().int().min(1).default(60),
  CUSTODIAN_SEARCH_RATE_WINDOW_SECONDS: z.coerce.number().int().min(1).default(3600),
  /** Signed audit checkpoints: the append-only sink file (default `<data dir>/audit-checkpoints.jsonl`), interval, optional webhook. */
  CUSTODIAN_AUDIT_CHECKPOINT_FILE: optionalString,
  CUSTODIAN_AUDIT_CHECKPOINT_INTERVAL_MS: z.coerce.number().int().min(1000).default(60_000),
  CUSTODIAN_AUDIT_CHECKPOINT_WEBHOOK: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  /** How often the staging sweep runs (worker side), and how old a stray upload must be before it goes. */
  CUSTODIAN_STAGING_SWEEP_INTERVAL_MS: z.coerce.number().int().min(1000).default(600_000),
  // At least a minute: an upload in progress writes far more often, so the sweep never takes a live one.
  CUSTODIAN_STAGING_GRACE_MS: z.coerce.number().int().min(60_000).default(3_600_000),
  /** Largest accepted import upload; default 10 GiB. */
  CUSTODIAN_IMPORT_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(10 * 2 ** 30),
  /** Threads that validate and encrypt import batches; default one per core but one. */
  CUSTODIAN_IMPORT_THREADS: z.preprocess(
    (v) => (typeof v === 'string' && v.trim() === '' ? undefined : v),
    z.coerce.number().int().min(0).max(256).optional(),
  ),
  /** A JSON data-catalog override (field → classification, purposes, blind index). */
  CUSTODIAN_CATALOG_FILE: optionalString,
  /** The keyring inline as JSON, or a 0600 key file; else `<data dir>/keyring.json` on the embedded default. */
  CUSTODIAN_KEYRING: optionalString,
  CUSTODIAN_KEY_FILE: optionalString,
  /** Where subjects reach this deployment: consent links are `<this>/consent/<token>`. */
  CUSTODIAN_PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).default('http://localhost:3000')),
  /** Console sessions: idle timeout and absolute lifetime (ISO 8601 or words); default 30 min and 12 h. */
  CUSTODIAN_CONSOLE_IDLE_TIMEOUT: z.string().trim().default('PT30M').pipe(Duration),
  CUSTODIAN_CONSOLE_SESSION_LIFETIME: z.string().trim().default('PT12H').pipe(Duration),
  /** A session a page's link starts (one incident, no API key): absolute lifetime; default 1 h. */
  CUSTODIAN_CONSOLE_LINK_SESSION_LIFETIME: z.string().trim().default('PT1H').pipe(Duration),
  /** The Temporal UI's origin, allowed (CORS) to call /codec; default the dev server's UI (localhost and 127.0.0.1). */
  CUSTODIAN_CODEC_CORS_ORIGIN: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  /** The notifier: `log` (default: a line per message, no address or text), `webhook` (signed JSON POST) or `smtp`. */
  CUSTODIAN_NOTIFY_CHANNEL: z.enum(['log', 'webhook', 'smtp']).default('log'),
  CUSTODIAN_NOTIFY_WEBHOOK_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  /** The HMAC-SHA256 key of `X-Custodian-Signature`; required with the webhook channel. */
  CUSTODIAN_NOTIFY_WEBHOOK_SECRET: optionalString.pipe(z.string().min(32, 'must be at least 32 characters').optional()),
  /** Per request to the webhook or SMTP server. */
  CUSTODIAN_NOTIFY_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  /** Where operator alerts (pages) go: a mail address (the smtp channel's recipient; the webhook's `to`). */
  CUSTODIAN_ALERT_TO: optionalString.pipe(
    z
      .string()
      .regex(/^[^\r\n@]*[^\s@<>]+@[^\s@<>]+>?$/, 'must be an address, or Name <address>')
      .optional(),
  ),
  /** Backup storage: a directory, default `<data dir>/backups`. */
  BACKUP_DIR: optionalString,
  /** How long a keyring backup (the wrapped data keys) is kept: ISO 8601 (`P7D`) or words; default 7 days. */
  CUSTODIAN_KEYRING_BACKUP_RETENTION: z.string().trim().default('P7D').pipe(Duration),
  /** GFS retention of data backups: the newest backup of each of the last N days, ISO weeks and months is kept. */
  CUSTODIAN_BACKUP_KEEP_DAILY: z.coerce.number().int().min(0).max(10_000).default(7),
  CUSTODIAN_BACKUP_KEEP_WEEKLY: z.coerce.number().int().min(0).max(10_000).default(4),
  CUSTODIAN_BACKUP_KEEP_MONTHLY: z.coerce.number().int().min(0).max(10_000).default(12),
  /** The freshness alarm fires when the newest verified backup is older than this (ISO 8601 or words); default 26 h. */
  CUSTODIAN_BACKUP_FRESHNESS_THRESHOLD: z.string().trim().default('PT26H').pipe(Duration),
  /** Data-quality thresholds and validators as JSON (domain/quality.ts QualityThresholds); `{}` takes every default. */
  CUSTODIAN_QUALITY_THRESHOLDS: z.string().trim().default('{}').transform(parseJsonText).pipe(QualityThresholds),
  /** Upsert the recurring reviews' Temporal Schedules at worker start; `false` leaves Temporal's schedules alone. */
  CUSTODIAN_SCHEDULES_ENABLED: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** The operator's overrides of the declared schedules (JSON by name: cron or every, paused, note, catchupWindow). */
  CUSTODIAN_SCHEDULES_FILE: optionalString.pipe(z.string().refine(existsSync, 'no such file').optional()),
  /** A reveal whose purpose reaches a `sensitive` field needs the owner's live reveal grant (access grants); default on. */
  CUSTODIAN_SENSITIVE_REVEAL_NEEDS_GRANT: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** CN incident reports (CAC measures Art. 4): `cii` (critical-information-infrastructure operator, 1 h) or `other` (4 h). */
  CUSTODIAN_CN_OPERATOR_TYPE: z.enum(['cii', 'other']).default('other'),
  /** How long the acknowledgement link in an incident page stays valid (ISO 8601 or words); default 24 h. */
  CUSTODIAN_ACK_LINK_TTL: z.string().trim().default('PT24H').pipe(Duration),
  /** Data-subject requests: how long the subject's links (verification, status, export) stay valid; default 7 days. */
  CUSTODIAN_REQUEST_LINK_TTL: z.string().trim().default('P7D').pipe(Duration),
  /** The window of CN requests without a figure of their own (PIPL Art. 50; GB/T 35273-2020 §8.7 c): 30 days). */
  CUSTODIAN_CN_REQUEST_WINDOW: z.string().trim().default('P30D').pipe(Duration),
  /** The escalation policy of incidents other processes open (a failed restore test); default the newest policy. */
  CUSTODIAN_SYSTEM_ESCALATION_POLICY: optionalString.pipe(z.uuid().optional()),
  /** Destruction requests: the approval window and the grace window before shredding (ISO 8601 or words). */
  CUSTODIAN_DESTRUCTION_APPROVAL_WINDOW: z.string().trim().default('P14D').pipe(Duration),
  CUSTODIAN_DESTRUCTION_GRACE: z.string().trim().default('P7D').pipe(Duration),
  /** A withdrawn consent that was a subject's only legal basis opens a destruction request (still two approvals); default on. */
  CUSTODIAN_DESTRUCTION_ON_CONSENT_WITHDRAWAL: z
    .enum(['true', 'false'])
    .default('true')
    .transform((v) => v === 'true'),
  /** The retention sweep's destruction requests skip the two approvals (recorded on the certificate); default off. */
  CUSTODIAN_RETENTION_SWEEP_AUTO_APPROVE: z
    .enum(['true', 'false'])
    .default('false')
    .transform((v) => v === 'true'),
  SMTP_URL: optionalString.pipe(z.url({ protocol: /^smtps?$/ }).optional()),
  SMTP_FROM: optionalString.pipe(
    z
      .string()
      .regex(/^[^\r\n@]*[^\s@<>]+@[^\s@<>]+>?$/, 'must be an address, or Name <address>')
      .optional(),
  ),
});

/** What each notification channel needs: refused at start-up, not at the first message. */
const NOTIFY_NEEDS = {
  log: [],
  webhook: ['CUSTODIAN_NOTIFY_WEBHOOK_URL', 'CUSTODIAN_NOTIFY_WEBHOOK_SECRET'],
  smtp: ['SMTP_URL', 'SMTP_FROM'],
} as const;

export type Config = z.infer<typeof Env> & { dataDir: string };

/** Every environment variable Custodian reads; nothing else reads `process.env` for configuration. */
export const ENV_VARIABLES = Object.keys(Env.shape) as (keyof typeof Env.shape)[];

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Parses the environment once; a wrong value stops start-up with one line naming the variable. */
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): Config => {
  const parsed = Env.safeParse(env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const value = env[String(issue.path[0])];
    // Secrets and URLs with passwords stay out of the message; a short scalar helps the operator.
    const shown = value && value.length <= 32 && !/KEYRING|KEY_FILE|URL|TOKEN|SECRET/.test(String(issue.path[0]));
    throw new ConfigError(`${String(issue.path[0])}: ${issue.message}${shown ? ` (got '${value}')` : ''}`);
  }
  const channel = parsed.data.CUSTODIAN_NOTIFY_CHANNEL;
  const missing = NOTIFY_NEEDS[channel].find((name) => !parsed.data[name]);
  if (missing) throw new ConfigError(`${missing}: required with CUSTODIAN_NOTIFY_CHANNEL=${channel}`);
  return { ...parsed.data, dataDir: resolve(parsed.data.CUSTODIAN_DATA_DIR) };
};

/** Uploads staged for import; the API writes and the workers read it, so it must be shared storage. */
export const importStagingDir = (config: Config): string => join(config.dataDir, 'imports');

/** Backup storage (`BACKUP_DIR`, default `<data dir>/backups`). */
export const backupDir = (config: Config): string =>
  config.BACKUP_DIR ? resolve(config.BACKUP_DIR) : join(config.dataDir, 'backups');
