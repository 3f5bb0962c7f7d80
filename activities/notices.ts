import { randomUUID } from 'node:crypto';
import { and, asc, eq, sql } from 'drizzle-orm';
import type { Db } from '../db/client';
import { notices } from '../db/schema';
import { DomainError } from '../domain/errors';
import { noticeHashInput, type Notice, type NoticeInput } from '../domain/notice';
import { appendAudit } from './audit';
import { sha256Hex } from './crypto/signatures';
import type { Actor } from './users';

/** SHA-256 (hex) of the canonical JSON of a notice's texts and handlers: what a consent receipt cites. */
export const noticeTextSha256 = (n: Pick<NoticeInput, 'texts' | 'handler' | 'previousHandler'>): string =>
  sha256Hex(noticeHashInput(n));

const columns = {
  id: notices.id,
  purpose: notices.purpose,
  version: notices.version,
  texts: notices.texts,
  handler: notices.handler,
  previousHandler: notices.previousHandler,
  textSha256: notices.textSha256,
  createdBy: notices.createdBy,
  createdAt: notices.createdAt,
};

type Row = typeof notices.$inferSelect;

const toNotice = ({ previousHandler, ...row }: Row): Notice => ({
  ...row,
  texts: row.texts as Notice['texts'],
  ...(previousHandler ? { previousHandler: previousHandler as Notice['previousHandler'] } : {}),
});

/**
 * Stores a notice as the next version for its purpose. Versions are assigned under a transaction-scoped
 * advisory lock on the purpose, so concurrent creates queue rather than collide; the unique index
 * (purpose, version) is the backstop. Audited in the same transaction.
 */
export const createNotice = (db: Db, input: NoticeInput, by: Actor): Promise<Notice> =>
  db.transaction(async (tx) => {
    await tx.execute(sql`select pg_advisory_xact_lock(hashtextextended(${`notice:${input.purpose}`}, 0))`);
    const [{ next }] = (await tx
      .select({ next: sql<number>`coalesce(max(${notices.version}), 0)::int + 1` })
      .from(notices)
      .where(eq(notices.purpose, input.purpose))) as [{ next: number }];
    const [row] = await tx
      .insert(notices)
      .values({
        id: randomUUID(),
        purpose: input.purpose,
        version: next,
        texts: input.texts,
        handler: input.handler,
        previousHandler: input.previousHandler ?? null,
        textSha256: noticeTextSha256(input),
        createdBy: by.actor,
      })
      .returning(columns);
    const notice = toNotice(row!);
    await appendAudit(tx, {
      ...by,
      action: 'notice.created',
      targetType: 'notice',
      targetId: notice.id,
      details: { noticeId: notice.id, purpose: notice.purpose, version: notice.version, textSha256: notice.textSha256 },
      idempotencyKey: `notice.created:${notice.id}`,
    });
    return notice;
  });

export const getNotice = async (db: Db, id: string): Promise<Notice> => {
  const [row] = await db.select(columns).from(notices).where(eq(notices.id, id));
  if (!row) throw DomainError.notFound(`notice ${id}`);
  return toNotice(row);
};

/** Every notice (of a purpose), by purpose then version; notices are few, so there is no paging. */
export const listNotices = async (db: Db, filter: { purpose?: string } = {}): Promise<Notice[]> => {
  const rows = await db
    .select(columns)
    .from(notices)
    .where(and(filter.purpose === undefined ? undefined : eq(notices.purpose, filter.purpose)))
    .orderBy(asc(notices.purpose), asc(notices.version));
  return rows.map(toNotice);
};
