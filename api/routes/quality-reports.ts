import { z } from '@hono/zod-openapi';
import { desc, eq } from 'drizzle-orm';
import { qualityReports } from '../../db/schema';
import type { Services } from '../../runtime/services';
import { defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';

const tags = ['quality-reports'];

const Counts = z.record(z.string(), z.unknown());

const QualityReportSummary = z
  .object({
    id: z.uuid(),
    workflowId: z.string(),
    status: z.enum(['running', 'completed']),
    requestedBy: z.string(),
    subjectsChecked: z.number().int(),
    breaches: z.number().int(),
    startedAt: z.iso.datetime(),
    completedAt: z.iso.datetime().nullable(),
  })
  .openapi('QualityReportSummary');

const QualityReport = QualityReportSummary.extend({
  thresholds: Counts.openapi({ description: 'What the report was judged by (domain/quality.ts QualityThresholds)' }),
  fields: Counts.openapi({
    description:
      'Per field: present, missing, completeness; invalid (validated fields); duplicated, duplicateGroups (blind-indexed fields)',
  }),
  timeliness: Counts.openapi({ description: 'stale subjects (not updated for staleAfterMs) and their share' }),
  consistency: Counts.openapi({ description: 'grantedConsentOnDestroyed, destroyedWithData, encryptedWithoutKey' }),
  breachedThresholds: z.array(Counts).openapi({ description: 'check, field, measured value and threshold' }),
  alertId: z.string().nullable(),
  incidentId: z.string().nullable(),
}).openapi('QualityReport');

const ListQuery = z.object({ limit: z.coerce.number().int().min(1).max(500).default(50) }).strict();

const list = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/quality-reports',
  tags,
  summary: 'Data-quality reports, newest first (counts only)',
  request: { query: ListQuery },
  responses: {
    200: jsonResponse(z.object({ reports: z.array(QualityReportSummary) }).openapi('QualityReportList'), 'Reports'),
  },
});

const getOne = defineRoute({
  roles: ['owner', 'auditor'],
  method: 'get',
  path: '/quality-reports/{id}',
  tags,
  summary: 'A data-quality report: per-field completeness, validity and uniqueness, timeliness, consistency, breaches',
  request: { params: IdParam },
  responses: { 200: jsonResponse(QualityReport, 'The report'), 404: problemResponse('No such report') },
});

type Row = typeof qualityReports.$inferSelect;
const summary = (r: Row): z.infer<typeof QualityReportSummary> => ({
  id: r.id,
  workflowId: r.workflowId,
  status: r.status,
  requestedBy: r.requestedBy,
  subjectsChecked: r.subjectsChecked,
  breaches: r.breaches.length,
  startedAt: r.startedAt.toISOString(),
  completedAt: r.completedAt?.toISOString() ?? null,
});

export const qualityReportRoutes = ({ database: { db } }: Services) =>
  v1Resource(
    endpoint(list, async (c) => {
      const { limit } = c.req.valid('query');
      const rows = await db
        .select()
        .from(qualityReports)
        .orderBy(desc(qualityReports.startedAt), desc(qualityReports.id))
        .limit(limit);
      return c.json({ reports: rows.map(summary) }, 200);
    }),
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const [r] = await db.select().from(qualityReports).where(eq(qualityReports.id, id));
      if (!r) throw ApiError.notFound(`quality report ${id}`);
      return c.json(
        {
          ...summary(r),
          thresholds: r.thresholds,
          fields: r.fields,
          timeliness: r.timeliness,
          consistency: r.consistency,
          breachedThresholds: r.breaches as Record<string, unknown>[],
          alertId: r.alertId,
          incidentId: r.incidentId,
        },
        200,
      );
    }),
  );
