export { selfCheck } from './self-check';
export { subjectImport } from './subject-import';
export { consent } from './consent';
export { campaign } from './campaign';
export { scheduledRun } from './scheduled-run';
export { backupRetention } from './backup-retention';
export { backupFreshness } from './backup-freshness';
export { restoreDrill } from './restore-drill';
