import { ParentClosePolicy, proxyActivities, startChild, uuid4, workflowInfo } from '@temporalio/workflow';
import type { Activities } from '../activities';
import { incidentWorkflowId } from '../domain/ids';
import type { SystemIncidentSpec } from '../domain/incident';
import { incident, io } from './incident';

const { prepareSystemIncident } = proxyActivities<Activities>(io);

/**
 * Opens an incident from inside another workflow (a failed restore test, a stale backup): the incident runs as an
 * abandoned child, so it outlives the workflow that found the problem. Returns the incident's ID, or null when
 * no escalation policy exists yet (the caller then keeps its operator alert).
 */
export const openIncidentFrom = async (spec: SystemIncidentSpec): Promise<string | null> => {
  const incidentId = uuid4();
  const input = await prepareSystemIncident({
    ...spec,
    incidentId,
    openedBy: `system:${workflowInfo().workflowType}`,
  });
  if (!input) return null;
  await startChild(incident, {
    workflowId: incidentWorkflowId(incidentId),
    args: [input],
    parentClosePolicy: ParentClosePolicy.ABANDON,
  });
  return incidentId;
};

/** `openIncidentFrom` as a workflow of its own, for a caller that prefers `executeChild`. */
export async function systemIncident(spec: SystemIncidentSpec): Promise<string | null> {
  return openIncidentFrom(spec);
}
