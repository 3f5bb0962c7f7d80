import type { Role } from '../../domain/roles';

/**
 * What the console shows and does, each with the API route whose roles it follows: the console hides what a role
 * may not do, and the console's own handlers refuse it too (403). test/console/capabilities.test.ts checks every
 * entry against the `x-roles` of the route in /openapi.json, so the two cannot drift apart.
 */
export const CAPABILITIES = {
  viewIncidents: { route: 'GET /v1/incidents/{id}', roles: ['responder', 'owner'] },
  ackIncident: { route: 'POST /v1/incidents/{id}/ack', roles: ['responder'] },
  noteIncident: { route: 'POST /v1/incidents/{id}/notes', roles: ['responder'] },
  statusIncident: { route: 'POST /v1/incidents/{id}/status', roles: ['responder'] },
  regulatorIncident: { route: 'POST /v1/incidents/{id}/regulator-notifications', roles: ['responder'] },
  resolveIncident: { route: 'POST /v1/incidents/{id}/resolve', roles: ['responder'] },
  postmortemIncident: { route: 'POST /v1/incidents/{id}/postmortem', roles: ['responder'] },
  gradeIncident: { route: 'POST /v1/incidents/{id}/grade', roles: ['responder'] },
  noticeSubjects: { route: 'POST /v1/incidents/{id}/subject-notices', roles: ['responder', 'owner'] },
  findSubjects: { route: 'GET /v1/subjects', roles: ['owner', 'auditor'] },
  searchSubjects: { route: 'GET /v1/subjects/search', roles: ['owner'] },
  viewSubject: { route: 'GET /v1/subjects/{id}', roles: ['owner', 'auditor'] },
  revealSubject: { route: 'GET /v1/subjects/{id}/reveal', roles: ['owner'] },
  viewDestruction: { route: 'GET /v1/destructions/{id}', roles: ['owner', 'approver', 'auditor'] },
  approveDestruction: { route: 'POST /v1/destructions/{id}/approvals', roles: ['approver'] },
  cancelDestruction: { route: 'POST /v1/destructions/{id}/cancel', roles: ['owner'] },
  verifyCertificate: { route: 'GET /v1/certificates/{id}/verify', roles: ['auditor', 'owner'] },
  listRequests: { route: 'GET /v1/requests', roles: ['owner', 'auditor'] },
  viewRequest: { route: 'GET /v1/requests/{id}', roles: ['owner', 'auditor'] },
  verifyRequest: { route: 'POST /v1/requests/{id}/verify', roles: ['owner'] },
  noteRequest: { route: 'POST /v1/requests/{id}/notes', roles: ['owner'] },
  extendRequest: { route: 'POST /v1/requests/{id}/extend', roles: ['owner'] },
  fulfilRequest: { route: 'POST /v1/requests/{id}/fulfil', roles: ['owner'] },
  refuseRequest: { route: 'POST /v1/requests/{id}/refuse', roles: ['owner'] },
  viewAudit: { route: 'GET /v1/audit', roles: ['auditor'] },
  verifyAudit: { route: 'GET /v1/audit/verify', roles: ['auditor'] },
  viewBackups: { route: 'GET /v1/backups', roles: ['owner', 'auditor'] },
  restoreTest: { route: 'POST /v1/backups/{id}/restore-tests', roles: ['owner'] },
  viewCampaigns: { route: 'GET /v1/campaigns/{id}', roles: ['owner'] },
  viewImports: { route: 'GET /v1/subject-imports/{id}', roles: ['owner'] },
  viewSchedules: { route: 'GET /v1/schedules', roles: ['admin'] },
  changeSchedule: { route: 'PATCH /v1/schedules/{id}', roles: ['admin'] },
  triggerSchedule: { route: 'POST /v1/schedules/{id}/trigger', roles: ['admin'] },
  viewObligations: { route: 'GET /v1/obligations', roles: ['owner', 'auditor'] },
  viewObligation: { route: 'GET /v1/obligations/{id}', roles: ['owner', 'auditor'] },
  completeObligation: { route: 'POST /v1/obligations/{id}/complete', roles: ['owner'] },
} as const satisfies Record<string, { route: string; roles: readonly Role[] }>;

export type Capability = keyof typeof CAPABILITIES;

export const can = (role: Role, capability: Capability): boolean =>
  (CAPABILITIES[capability].roles as readonly Role[]).includes(role);
