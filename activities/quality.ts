import { Context } from '@temporalio/activity';
import { and, asc, eq, gt, inArray, isNull, ne, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { blindIndexedFields, type Catalog } from '../domain/catalog';
import { qualityBatches, qualityReports, subjectFields, subjects, users } from '../db/schema';
import {
  addPageCounts,
  assessQuality,
  emptyCounts,
  renderQualityBreach,
  validate,
  type Consistency,
  type Duplicates,
  type PageCounts,
  type QualityAssessment,
  type QualityThresholds,
} from '../domain/quality';
import type { Config } from '../runtime/config';
import type { Keyring } from '../runtime/keyring';
import type { Logger } from '../runtime/logger';
import { appendAudit } from './audit';
import { decryptField } from './crypto/field-cipher';
import { dataKeys, type DataKey } from './keys';
import { staffMessenger } from './staff-messages';

export interface QualityDeps {
  db: Db;
  keyring: Keyring;
  catalog: Catalog;
  config: Config;
  logger: Logger;
  clock: () => Date;
}

const execution = () => {
  const e = Context.current().info.workflowExecution;
  return { workflowId: e?.workflowId ?? 'none', runId: e?.runId ?? null };
};

type FieldRow = Pick<
  typeof subjectFields.$inferSelect,
  'subjectId' | 'field' | 'keyVersion' | 'ciphertext' | 'plainValue'
>;

/** The value's text, or undefined when it cannot be read (no key, another key version, failed authentication). */
const readValue = (row: FieldRow, key: DataKey | undefined): string | undefined => {
  if (row.plainValue !== null) return row.plainValue;
  if (!key || !row.ciphertext || row.keyVersion !== key.keyVersion) return undefined;
  try {
    return decryptField(
      key.dek,
      { subjectId: row.subjectId, field: row.field, keyVersion: key.keyVersion },
      row.ciphertext,
    );
  } catch {
    return undefined;
  }
};

const count = (rows: { n: number | string }[]): number => Number(rows[0]?.n ?? 0);

/**
 * The quality check's reads and records. A page is a unit of work keyed by the subject it starts after: its counts
 * are one `quality_batches` row, so a retried or replayed page is read back, never counted twice. Values are
 * decrypted here and only counts leave.
 */
export const qualityActivities = (d: QualityDeps) => {
  const keys = dataKeys(d);

  /** Counts completeness, validity and timeliness over one page of subjects that are not destroyed. */
  const countPage = async (
    checkId: string,
    startAfter: string,
    pageSize: number,
    t: QualityThresholds,
  ): Promise<{ nextAfter: string | null; counts: PageCounts }> => {
    const page = await d.db
      .select({ id: subjects.id, updatedAt: subjects.updatedAt })
      .from(subjects)
      .where(and(ne(subjects.status, 'destroyed'), startAfter ? gt(subjects.id, startAfter) : undefined))
      .orderBy(asc(subjects.id))
      .limit(pageSize);
    const ids = page.map((s) => s.id);
    const rows: FieldRow[] = ids.length
      ? await d.db
          .select({
            subjectId: subjectFields.subjectId,
            field: subjectFields.field,
            keyVersion: subjectFields.keyVersion,
            ciphertext: subjectFields.ciphertext,
            plainValue: subjectFields.plainValue,
          })
          .from(subjectFields)
          .where(inArray(subjectFields.subjectId, ids))
      : [];
    Context.current().heartbeat({ checkId, startAfter });
    const dataKeyOf = await keys.loadDataKeys(ids);
    const now = d.clock();
    const staleBefore = now.getTime() - t.staleAfter;
    const counts: PageCounts = {
      subjects: page.length,
      stale: page.filter((s) => s.updatedAt.getTime() < staleBefore).length,
      fields: {},
    };
    for (const row of rows) {
      const c = (counts.fields[row.field] ??= { present: 0, invalid: 0 });
      const validator = t.validators[row.field];
      const value = validator || row.plainValue !== null ? readValue(row, dataKeyOf.get(row.subjectId)) : undefined;
      // An empty value is a missing one.
      if (row.plainValue !== null && value?.trim() === '') continue;
      c.present++;
      if (validator && (value === undefined || !validate(validator, value, t, now))) c.invalid++;
    }
    const nextAfter = page.length === pageSize ? ids[ids.length - 1]! : null;
    return { nextAfter, counts };
  };

  const duplicates = async (): Promise<Duplicates> => {
    const rows = await d.db.execute<{ field: string; duplicated: string; groups: string }>(sql`
      select field, count(*) as duplicated, count(distinct blind_index) as groups
      from (
        select f.field, f.blind_index, count(*) over (partition by f.field, f.blind_index) as n
        from subject_fields f join subjects s on s.id = f.subject_id and s.status <> 'destroyed'
        where f.blind_index is not null
      ) shared
      where n > 1
      group by field`);
    const found: Duplicates = Object.fromEntries(
      blindIndexedFields(d.catalog).map((field) => [field, { duplicated: 0, groups: 0 }]),
    );
    for (const r of rows) found[r.field] = { duplicated: Number(r.duplicated), groups: Number(r.groups) };
    return found;
  };

  const consistency = async (): Promise<Consistency> => {
    const [granted, destroyed, keyless] = await Promise.all([
      d.db.execute<{ n: string }>(sql`
        select count(*) as n from consents c join subjects s on s.id = c.subject_id
        where s.status = 'destroyed' and c.status = 'granted'`),
      d.db.execute<{ n: string }>(sql`
        select count(*) as n from subjects s where s.status = 'destroyed'
          and (exists (select 1 from subject_fields f where f.subject_id = s.id)
            or exists (select 1 from subject_keys k where k.subject_id = s.id))`),
      d.db.execute<{ n: string }>(sql`
        select count(*) as n from subjects s where s.status <> 'destroyed'
          and exists (select 1 from subject_fields f where f.subject_id = s.id and f.ciphertext is not null)
          and not exists (select 1 from subject_keys k where k.subject_id = s.id)`),
    ]);
    return {
      grantedConsentOnDestroyed: count([...granted]),
      destroyedWithData: count([...destroyed]),
      encryptedWithoutKey: count([...keyless]),
    };
  };

  return {
    /** Opens the report (once per check) with the thresholds it will be judged by: the input's or the configured. */
    async startQualityCheck(input: {
      checkId: string;
      requestedBy: string;
      thresholds?: QualityThresholds;
    }): Promise<QualityThresholds> {
      const { workflowId, runId } = execution();
      const thresholds = input.thresholds ?? d.config.CUSTODIAN_QUALITY_THRESHOLDS;
      await d.db.transaction(async (tx) => {
        const [created] = await tx
          .insert(qualityReports)
          .values({
            id: input.checkId,
            workflowId,
            requestedBy: input.requestedBy,
            thresholds: { ...thresholds },
            startedAt: d.clock(),
          })
          .onConflictDoNothing()
          .returning({ id: qualityReports.id });
        if (created)
          await appendAudit(tx, {
            actor: input.requestedBy,
            action: 'quality-check.started',
            targetType: 'quality-report',
            targetId: input.checkId,
            workflowId,
            runId,
            details: { thresholds },
            idempotencyKey: `${workflowId}:started`,
          });
      });
      const [report] = await d.db
        .select({ thresholds: qualityReports.thresholds })
        .from(qualityReports)
        .where(eq(qualityReports.id, input.checkId));
      return report!.thresholds as QualityThresholds;
    },

    /** One page: counted once (the batch row), read back on a retry. Returns where the next page starts. */
    async checkQualityPage(input: {
      checkId: string;
      startAfter: string;
      pageSize: number;
      thresholds: QualityThresholds;
    }): Promise<{ nextAfter: string | null; subjects: number }> {
      const done = async () =>
        (
          await d.db
            .select({ nextAfter: qualityBatches.nextAfter, subjects: qualityBatches.subjects })
            .from(qualityBatches)
            .where(and(eq(qualityBatches.checkId, input.checkId), eq(qualityBatches.startAfter, input.startAfter)))
        )[0];
      const previous = await done();
      if (previous) return previous;
      const { nextAfter, counts } = await countPage(input.checkId, input.startAfter, input.pageSize, input.thresholds);
      await d.db
        .insert(qualityBatches)
        .values({
          checkId: input.checkId,
          startAfter: input.startAfter,
          nextAfter,
          subjects: counts.subjects,
          counts: { ...counts },
        })
        .onConflictDoNothing();
      return (await done())!;
    },

    /**
     * Sums the pages, counts duplicates through the blind index and consistency over the registry, judges the
     * result by the thresholds and completes the report (once), audited. Returns the assessment (counts only).
     */
    async finishQualityCheck(input: { checkId: string }): Promise<QualityAssessment> {
      const { workflowId, runId } = execution();
      const [report] = await d.db.select().from(qualityReports).where(eq(qualityReports.id, input.checkId));
      if (!report) throw new Error(`quality report ${input.checkId} does not exist`);
      const stored = (r: typeof report): QualityAssessment => ({
        subjectsChecked: r.subjectsChecked,
        fields: r.fields as QualityAssessment['fields'],
        timeliness: r.timeliness as QualityAssessment['timeliness'],
        consistency: r.consistency as unknown as Consistency,
        breaches: r.breaches as QualityAssessment['breaches'],
      });
      if (report.status === 'completed') return stored(report);
      const pages = await d.db
        .select({ counts: qualityBatches.counts })
        .from(qualityBatches)
        .where(eq(qualityBatches.checkId, input.checkId));
      const counts = pages.reduce((sum, p) => addPageCounts(sum, p.counts as unknown as PageCounts), emptyCounts());
      const assessment = assessQuality(
        counts,
        await duplicates(),
        await consistency(),
        report.thresholds as QualityThresholds,
      );
      await d.db.transaction(async (tx) => {
        const [completed] = await tx
          .update(qualityReports)
          .set({
            status: 'completed',
            subjectsChecked: assessment.subjectsChecked,
            fields: { ...assessment.fields },
            timeliness: { ...assessment.timeliness },
            consistency: { ...assessment.consistency },
            breaches: assessment.breaches,
            completedAt: d.clock(),
          })
          .where(and(eq(qualityReports.id, input.checkId), eq(qualityReports.status, 'running')))
          .returning({ id: qualityReports.id });
        if (completed)
          await appendAudit(tx, {
            actor: 'system',
            action: 'quality-check.completed',
            targetType: 'quality-report',
            targetId: input.checkId,
            workflowId,
            runId,
            details: {
              subjectsChecked: assessment.subjectsChecked,
              pages: pages.length,
              breaches: assessment.breaches,
            },
            idempotencyKey: `${workflowId}:completed`,
          });
      });
      const [final] = await d.db.select().from(qualityReports).where(eq(qualityReports.id, input.checkId));
      return stored(final!);
    },

    /** Tells every active owner which thresholds the report breached (one outbox message per owner, counts only). */
    async notifyQualityOwners(input: { checkId: string }): Promise<{ sent: number; failed: number }> {
      const { workflowId } = execution();
      const [report] = await d.db.select().from(qualityReports).where(eq(qualityReports.id, input.checkId));
      if (!report) throw new Error(`quality report ${input.checkId} does not exist`);
      const owners = await d.db
        .select({ id: users.id })
        .from(users)
        .where(and(eq(users.role, 'owner'), isNull(users.disabledAt)))
        .orderBy(users.id);
      const send = staffMessenger(d);
      let sent = 0;
      let failed = 0;
      for (const owner of owners) {
        Context.current().heartbeat(owner.id);
        const outcome = await send({
          idempotencyKey: `${workflowId}:breach:user-${owner.id}`,
          template: 'quality-breach',
          userId: owner.id,
          about: { type: 'qualityReport', id: input.checkId },
          render: (locale) =>
            renderQualityBreach(locale, {
              checkId: input.checkId,
              subjectsChecked: report.subjectsChecked,
              breaches: report.breaches as QualityAssessment['breaches'],
            }),
        });
        if (outcome.status === 'failed') failed++;
        else sent++;
      }
      return { sent, failed };
    },

    /** Records the alert and incident a breached report raised (idempotent: set once, audited once). */
    async recordQualityEscalation(input: {
      checkId: string;
      alertId: string | null;
      incidentId: string | null;
    }): Promise<void> {
      const { workflowId, runId } = execution();
      await d.db.transaction(async (tx) => {
        await tx
          .update(qualityReports)
          .set({ alertId: input.alertId, incidentId: input.incidentId })
          .where(eq(qualityReports.id, input.checkId));
        await appendAudit(tx, {
          actor: 'system',
          action: 'quality-check.escalated',
          targetType: 'quality-report',
          targetId: input.checkId,
          workflowId,
          runId,
          details: { alertId: input.alertId, incidentId: input.incidentId },
          idempotencyKey: `${workflowId}:escalated`,
        });
      });
    },
  };
};
