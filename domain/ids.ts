/** Workflow IDs derive from business keys, here and nowhere else. */
export const selfCheckWorkflowId = (checkId: string) => `self-check-${checkId}`;
export const importWorkflowId = (importId: string) => `import-${importId}`;

export const TASK_QUEUE_DEFAULT = 'custodian';
export const consentWorkflowId = (consentId: string) => `consent-${consentId}`;
export const incidentWorkflowId = (incidentId: string) => `incident-${incidentId}`;
export const requestWorkflowId = (requestId: string) => `request-${requestId}`;
export const backupWorkflowId = (backupId: string) => `backup-${backupId}`;
export const restoreTestWorkflowId = (restoreTestId: string) => `restore-test-${restoreTestId}`;
export const campaignWorkflowId = (campaignId: string) => `campaign-${campaignId}`;
export const backupRetentionWorkflowId = (retentionId: string) => `backup-retention-${retentionId}`;
export const backupFreshnessWorkflowId = (checkId: string) => `backup-freshness-${checkId}`;
export const restoreDrillWorkflowId = (drillId: string) => `restore-drill-${drillId}`;
export const qualityCheckWorkflowId = (checkId: string) => `quality-check-${checkId}`;
export const keyRotationWorkflowId = (rotationId: string) => `key-rotation-${rotationId}`;
/** A recurring review's Temporal schedule; its runs are workflows `schedule-{name}-{scheduled time}` (Temporal appends the time). */
export const scheduleIdOf = (name: string) => `schedule-${name}`;
export const accessReviewWorkflowId = (reviewId: string) => `access-review-${reviewId}`;
export const obligationsCheckWorkflowId = (checkId: string) => `obligations-check-${checkId}`;
export const destructionWorkflowId = (destructionId: string) => `destruction-${destructionId}`;
export const retentionSweepWorkflowId = (sweepId: string) => `retention-sweep-${sweepId}`;
