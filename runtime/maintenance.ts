import { auditCheckpointFile, startAuditCheckpointer } from '../activities/audit-checkpoints';
import { sweepImportStaging } from '../activities/import-sweep';
import type { Services } from './services';

export interface Maintenance {
  /** Stops the timers, waits for a running sweep and writes a last audit checkpoint. Call before the pool closes. */
  stop(): Promise<void>;
}

/**
 * The housekeeping a worker process does beside its task queue: signed audit checkpoints at an interval
 * (and at shutdown), and the staging sweep at start and at an interval. Both are idempotent, so any
 * number of worker processes may run them.
 */
export const startMaintenance = (s: Services): Maintenance => {
  const { config, database, keyring, logger, temporal, stagingDir } = s;
  const checkpointer = startAuditCheckpointer({
    db: database.db,
    keyring,
    clock: s.clock,
    sinkFile: auditCheckpointFile(config),
    webhookUrl: config.CUSTODIAN_AUDIT_CHECKPOINT_WEBHOOK,
    intervalMs: config.CUSTODIAN_AUDIT_CHECKPOINT_INTERVAL_MS,
    logger,
  });
  const sweep = () =>
    sweepImportStaging({
      db: database.db,
      stagingDir,
      client: temporal,
      olderThanMs: config.CUSTODIAN_STAGING_GRACE_MS,
    })
      .then((result) => {
        if (result.partialsRemoved || result.stagedRemoved || result.closed.length) {
          logger.info(
            {
              partialsRemoved: result.partialsRemoved,
              stagedRemoved: result.stagedRemoved,
              closed: result.closed.length,
            },
            'staging sweep',
          );
        }
      })
      .catch((err: Error) => logger.error({ err: { name: err.name, message: err.message } }, 'staging sweep failed'));
  let sweeping = sweep();
  const timer = setInterval(() => {
    sweeping = sweeping.then(sweep);
  }, config.CUSTODIAN_STAGING_SWEEP_INTERVAL_MS);
  timer.unref();
  return {
    async stop() {
      clearInterval(timer);
      await sweeping;
      await checkpointer.stop();
    },
  };
};
