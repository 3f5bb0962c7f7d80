import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { join } from 'node:path';
import type { Client, WorkflowHandle } from '@temporalio/client';
import { stageImportFile } from '../../activities/import-staging';
import { campaignConsentId } from '../../activities/campaigns';
import type { Database } from '../../db/client';
import type { CampaignInput } from '../../domain/campaign';
import type { ConsentInput } from '../../domain/consent';
import { campaignWorkflowId, consentWorkflowId, importWorkflowId, selfCheckWorkflowId } from '../../domain/ids';
import type { SubjectImportInput } from '../../domain/subject-import';
import type { Keyring } from '../../runtime/keyring';
import { campaign, consent, selfCheck, subjectImport } from '../../workflows';
import { campaignProgressQuery, cancelUpdate, pauseUpdate, resumeUpdate } from '../../workflows/campaign';
import { consentStateQuery, denyUpdate, grantUpdate, withdrawUpdate } from '../../workflows/consent';
import { importProgressQuery } from '../../workflows/subject-import';
import { insertSubjects } from '../helpers/campaign-subjects';
import { insertNotice, insertSubject } from '../helpers/notifications';
import { writeSubjectFile } from '../helpers/subject-files';
import { waitFor } from '../helpers/wait';
import { accessReviewScenarios, obligationsCheckScenarios } from './access-review-scenarios';
import { backupReviewScenarios } from './backup-review-scenarios';
import { backupScenarios } from './backup-scenarios';
import { destructionScenarios } from './destruction-scenarios';
import { retentionSweepScenarios } from './retention-sweep-scenarios';
import { incidentScenarios, systemIncidentScenarios } from './incident-scenarios';
import { qualityScenarios } from './quality-scenarios';
import { requestScenarios } from './request-scenarios';

export interface ScenarioContext {
  client: Client;
  taskQueue: string;
  database: Database;
  keyring: Keyring;
  stagingDir: string;
}

/** Runs one branch of a workflow to its end and returns the handle of the run whose history is recorded. */
export type Scenario = (ctx: ScenarioContext) => Promise<WorkflowHandle>;

const example = new URL('../../examples/subjects.ndjson', import.meta.url).pathname;

const settled = async (handle: WorkflowHandle): Promise<WorkflowHandle> => {
  await handle.result().catch(() => {});
  return handle;
};

/** Stages `file` (unless `staged` is false) and starts an import of it with the given options. */
const startImport = async (
  { client, taskQueue, stagingDir }: ScenarioContext,
  options: Partial<SubjectImportInput> & { file?: string; staged?: boolean } = {},
) => {
  const { file = example, staged: stage = true, ...input } = options;
  const importId = randomUUID();
  const staged = stage
    ? await stageImportFile(stagingDir, importId, createReadStream(file), { maxBytes: 1e9 })
    : { lines: 5, bytes: 1 };
  return client.workflow.start(subjectImport, {
    taskQueue,
    workflowId: importWorkflowId(importId),
    args: [
      {
        importId,
        mode: 'insert',
        requestedBy: 'recorded',
        totalLines: staged.lines,
        stagedBytes: staged.bytes,
        batchLines: 2,
        batchesPerActivity: 1,
        ...input,
      },
    ],
  });
};

/** Starts a consent request for a new subject and notice, and waits until the request is recorded and sent. */
const startConsent = async (
  { client, taskQueue, database, keyring }: ScenarioContext,
  o: Partial<ConsentInput> = {},
) => {
  const subjectId = await insertSubject(database.db, keyring, { locale: 'en', email: 'recorded@example.com' });
  const noticeId = await insertNotice(database.db, { purpose: o.purpose });
  const consentId = randomUUID();
  const handle = await client.workflow.start(consent, {
    taskQueue,
    workflowId: consentWorkflowId(consentId),
    args: [
      {
        consentId,
        subjectId,
        noticeId,
        purpose: 'marketing',
        channel: 'email',
        respondWithinMs: 60_000,
        remindEveryMs: 60_000,
        maxReminders: 0,
        validForMs: 86_400_000,
        requestedBy: 'recorded',
        round: 1,
        ...o,
      },
    ],
  });
  await waitFor(async () => {
    const history = await handle.fetchHistory();
    const done = history.events?.filter((e) => e.activityTaskCompletedEventAttributes).length ?? 0;
    return done >= 2 ? true : undefined;
  }, 'the request recorded and sent');
  return handle;
};

/** Starts a campaign over `subjects` new subjects (their own import), with small batches. */
const startCampaign = async (
  { client, taskQueue, database, keyring }: ScenarioContext,
  subjects: number,
  o: Partial<CampaignInput> = {},
) => {
  const { importId, ids } = await insertSubjects(database.db, keyring, subjects);
  const campaignId = randomUUID();
  const handle = await client.workflow.start(campaign, {
    taskQueue,
    workflowId: campaignWorkflowId(campaignId),
    args: [
      {
        campaignId,
        noticeId: await insertNotice(database.db),
        purposeChanged: false,
        filter: { importId },
        batchSize: 2,
        requestedBy: 'recorded',
        ...o,
      },
    ],
  });
  return { handle, campaignId, subjectIds: ids };
};

const batchesDone = (handle: WorkflowHandle, n: number) =>
  waitFor(async () => ((await handle.query(campaignProgressQuery)).batches >= n ? true : undefined), `${n} batches`);

const onBehalf = { actor: 'recorded', method: 'on-behalf' as const };

/**
 * Named scenarios per workflow type exported from workflows/: one per branch of the workflow (happy
 * path, continue-as-new, cancellation, each failure path). `npm run replay:record` runs them on a real
 * dev server and saves `histories/<type>/<scenario>.json`; the replay test fails when an exported type
 * has no scenario or a declared scenario has no history.
 */
export const scenarios: Record<string, Record<string, Scenario>> = {
  selfCheck: {
    'round-trip': async ({ client, taskQueue }) => {
      const checkId = randomUUID();
      return settled(
        await client.workflow.start(selfCheck, {
          taskQueue,
          workflowId: selfCheckWorkflowId(checkId),
          args: [{ checkId, token: 'recorded' }],
        }),
      );
    },
  },
  consent: {
    /** Reminded, then granted: the run waits for withdrawal or the end of the validity (recorded while it waits). */
    granted: async (ctx) => {
      const handle = await startConsent(ctx, { remindEveryMs: 1_000, maxReminders: 3 });
      await waitFor(
        async () => ((await handle.query(consentStateQuery)).reminders >= 1 ? true : undefined),
        'a reminder',
      );
      await handle.executeUpdate(grantUpdate, { args: [onBehalf] });
      return handle;
    },
    /** Refused: the receipt is issued and the run ends. */
    denied: async (ctx) => {
      const handle = await startConsent(ctx);
      await handle.executeUpdate(denyUpdate, { args: [onBehalf] });
      return settled(handle);
    },
    /** Unanswered: one reminder, then the window closes. */
    expired: async (ctx) =>
      settled(await startConsent(ctx, { respondWithinMs: 2_500, remindEveryMs: 1_000, maxReminders: 1 })),
    /** Granted, then withdrawn: the purpose is restricted and the run ends. */
    withdrawn: async (ctx) => {
      const handle = await startConsent(ctx);
      await handle.executeUpdate(grantUpdate, { args: [onBehalf] });
      await handle.executeUpdate(withdrawUpdate, { args: [onBehalf] });
      return settled(handle);
    },
    /** A purpose touching sensitive data: granted with the separate sensitive answer, then both withdrawn. */
    'sensitive-withdrawn': async (ctx) => {
      const handle = await startConsent(ctx, { purpose: 'credit-assessment' });
      await handle.executeUpdate(grantUpdate, { args: [{ ...onBehalf, sensitive: true }] });
      await handle.executeUpdate(withdrawUpdate, { args: [onBehalf] });
      return settled(handle);
    },
    /** Granted until the validity ends: the first run continues as new with the renewal request. */
    renewed: async (ctx) => {
      const handle = await startConsent(ctx, { validForMs: 1_500 });
      await handle.executeUpdate(grantUpdate, { args: [onBehalf] });
      const first = ctx.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId, { followRuns: false });
      await first.result().catch(() => {});
      await handle.terminate('recorded');
      return first;
    },
  },
  subjectImport: {
    /** Begin, batches to the end, finish: a single run. */
    completed: async (ctx) => settled(await startImport(ctx)),
    /** The first run of a chain: it stops after `batchesPerRun` batches and continues as new. */
    'continue-as-new': async (ctx) => {
      const handle = await startImport(ctx, { batchesPerRun: 1 });
      await handle.result();
      return ctx.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
    },
    /** The last run of such a chain: it resumes from the cursor without beginning again, and finishes. */
    'resumed-after-continue-as-new': async (ctx) => settled(await startImport(ctx, { batchesPerRun: 2 })),
    /** Cancelled while batches run: the batch activity stops at a boundary, the import closes as cancelled. */
    cancelled: async (ctx) => {
      const file = join(ctx.stagingDir, `cancel-${randomUUID()}.src`);
      await writeSubjectFile(file, 5_000, { prefix: `RC${Date.now()}` });
      const handle = await startImport(ctx, { file, batchLines: 50, batchesPerActivity: 2 });
      await waitFor(
        async () => ((await handle.query(importProgressQuery)).counts.imported > 0 ? true : undefined),
        'the first batch',
      );
      await handle.cancel();
      return settled(handle);
    },
    /** Beginning fails (the staged file is missing): closed as failed with that cause. */
    'begin-fails': async (ctx) => settled(await startImport(ctx, { staged: false })),
    /** A batch fails without retry (the staged file vanished after beginning): closed as failed. */
    'batches-fail': async (ctx) =>
      settled(
        await startImport(ctx, {
          staged: false,
          resume: { cursor: { offset: 0, line: 1 }, counts: { imported: 0, updated: 0, duplicates: 0, rejected: 0 } },
        }),
      ),
  },
  campaign: {
    /** Begin, batches to the end, the report: a single run. */
    completed: async (ctx) => settled((await startCampaign(ctx, 5)).handle),
    /** The first run of a chain: it stops after `batchesPerRun` batches and continues as new with the cursor. */
    'continued-as-new': async (ctx) => {
      const { handle } = await startCampaign(ctx, 5, { batchesPerRun: 1 });
      await handle.result();
      return ctx.client.workflow.getHandle(handle.workflowId, handle.firstExecutionRunId);
    },
    /** Paced, paused after a batch, resumed, completed. */
    'paused-resumed': async (ctx) => {
      const { handle } = await startCampaign(ctx, 8, { ratePerSecond: 4 });
      await batchesDone(handle, 1);
      await handle.executeUpdate(pauseUpdate);
      await handle.executeUpdate(resumeUpdate);
      return settled(handle);
    },
    /** Cancelled between batches: the report is stored and returned by the update. */
    cancelled: async (ctx) => {
      const { handle } = await startCampaign(ctx, 40, { ratePerSecond: 4 });
      await batchesDone(handle, 1);
      await handle.executeUpdate(cancelUpdate);
      return settled(handle);
    },
    /** The purpose changed: one consent workflow per subject, started from the batch activity. */
    're-consent': async (ctx) => {
      const consent = { respondWithinMs: 60_000, remindEveryMs: 60_000, maxReminders: 0, validForMs: 86_400_000 };
      const { handle, campaignId, subjectIds } = await startCampaign(ctx, 3, { purposeChanged: true, consent });
      await handle.result();
      await Promise.all(
        subjectIds.map((s) =>
          ctx.client.workflow
            .getHandle(consentWorkflowId(campaignConsentId(campaignId, s)))
            .terminate('recorded')
            .catch(() => {}),
        ),
      );
      return handle;
    },
    /** Beginning fails (no such notice): closed as failed with that cause. */
    'begin-fails': async (ctx) => settled((await startCampaign(ctx, 1, { noticeId: randomUUID() })).handle),
  },
  incident: incidentScenarios,
  request: requestScenarios,
  destruction: destructionScenarios,
  retentionSweep: retentionSweepScenarios,
  systemIncident: systemIncidentScenarios,
  accessReview: accessReviewScenarios,
  obligationsCheck: obligationsCheckScenarios,
  ...backupScenarios,
  // Last: their setup changes every backup row of the recording database.
  ...backupReviewScenarios,
  ...qualityScenarios,
};
