import type { Resource } from './resource';
import { accessGrantRoutes } from './routes/access-grants';
import { accessReviewRoutes } from './routes/access-reviews';
import { auditRoutes } from './routes/audit';
import { backupRoutes } from './routes/backups';
import { campaignRoutes } from './routes/campaigns';
import { certificateRoutes } from './routes/certificates';
import { consentRoutes } from './routes/consents';
import { destructionRoutes } from './routes/destructions';
import { escalationPolicyRoutes } from './routes/escalation-policies';
import { incidentRoutes } from './routes/incidents';
import { legalHoldRoutes } from './routes/legal-holds';
import { notificationRoutes } from './routes/notifications';
import { qualityReportRoutes } from './routes/quality-reports';
import { oncallScheduleRoutes } from './routes/oncall-schedules';
import { noticeRoutes } from './routes/notices';
import { obligationRoutes } from './routes/obligations';
import { receiptRoutes } from './routes/receipts';
import { requestRoutes } from './routes/requests';
import { scheduleRoutes } from './routes/schedules';
import { subjectImportRoutes } from './routes/subject-imports';
import { subjectRoutes } from './routes/subjects';
import { userContactRoutes } from './routes/user-contacts';
import { userRoutes } from './routes/users';

/** Every /v1 resource, mounted by createApp; a new process adds its route module here, one line. */
export const resources: Resource[] = [
  userRoutes,
  auditRoutes,
  subjectRoutes,
  subjectImportRoutes,
  noticeRoutes,
  notificationRoutes,
  receiptRoutes,
  consentRoutes,
  backupRoutes,
  scheduleRoutes,
  userContactRoutes,
  oncallScheduleRoutes,
  escalationPolicyRoutes,
  incidentRoutes,
  requestRoutes,
  campaignRoutes,
  accessGrantRoutes,
  accessReviewRoutes,
  obligationRoutes,
  qualityReportRoutes,
  legalHoldRoutes,
  destructionRoutes,
  certificateRoutes,
];
