import { proxyActivities, type ActivityOptions } from '@temporalio/workflow';
import type { Activities } from '../activities';
import type { ObligationCheckInput, ObligationCheckResult } from '../domain/obligations';

export const io = {
  startToCloseTimeout: '5 minutes',
  heartbeatTimeout: '30 seconds',
  retry: { maximumAttempts: 20 },
} satisfies ActivityOptions;

const { checkObligations } = proxyActivities<Activities>(io);

/** The daily compliance-calendar check: reminders before due dates, notices for overdue obligations. */
export async function obligationsCheck(input: ObligationCheckInput): Promise<ObligationCheckResult> {
  return checkObligations(input);
}
