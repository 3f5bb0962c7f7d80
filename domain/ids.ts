import { z } from 'zod';

/** Workflow IDs derive from business keys, here and nowhere else. */
export const selfCheckWorkflowId = (checkId: string) => `self-check-${checkId}`;
export const importWorkflowId = (importId: string) => `import-${importId}`;

export const Uuid = z.uuid();
export const TASK_QUEUE_DEFAULT = 'custodian';
