import { ApplicationFailure, executeChild, uuid4 } from '@temporalio/workflow';
import { scheduleDeclaration, type ScheduledRunInput, type ScheduledRunResult } from '../domain/schedules';

/**
 * One run of a recurring review, started by its Temporal Schedule. A schedule's arguments are fixed, so this gives
 * the run its fresh business IDs and starts the process under its usual workflow ID; it waits for the process, so
 * the schedule's overlap policy (skip) covers the whole run and its result is the schedule's last result.
 */
export async function scheduledRun(input: ScheduledRunInput): Promise<ScheduledRunResult> {
  const declaration = scheduleDeclaration(input.schedule);
  if (!declaration) throw ApplicationFailure.nonRetryable(`no schedule '${input.schedule}'`, 'UnknownSchedule');
  const ids = Object.fromEntries(declaration.ids.map((field) => [field, uuid4()]));
  const workflowId = declaration.workflowId(ids[declaration.ids[0]]!);
  const result: unknown = await executeChild(declaration.workflowType, {
    workflowId,
    args: [{ ...input.input, ...ids }],
  });
  return { schedule: input.schedule, workflowType: declaration.workflowType, workflowId, result };
}
