import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { and, eq, exists, gt, isNotNull, isNull } from 'drizzle-orm';
import { appendAudit } from '../../activities/audit';
import type { Principal } from '../../activities/users';
import type { Db } from '../../db/client';
import type { Role } from '../../domain/roles';
import type { Config } from '../../runtime/config';
import { apiKeys, consoleSessions, incidentPages, users } from '../../db/schema';

const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/** Constant-time equality of two strings of any length (a CSRF token against the session's). */
export const sameSecret = (presented: string | undefined, expected: string): boolean => {
  if (presented === undefined) return false;
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
};

export interface ConsoleSession {
  principal: Principal;
  csrf: string;
  /** The SHA-256 of the cookie's token: the row's key. */
  idHash: string;
}

/**
 * A session a page's signed link started: the paged responder, for that one incident only, short-lived, with no
 * API key behind it (it ends when the user is disabled or holds no live key any more).
 */
export interface LinkSession {
  userId: string;
  role: Role;
  incidentId: string;
  csrf: string;
  idHash: string;
}

export interface SessionTerms {
  idleMs: number;
  lifetimeMs: number;
  /** The absolute lifetime of a page-link session. */
  linkLifetimeMs: number;
}

export const sessionTerms = (config: Config): SessionTerms => ({
  idleMs: config.CUSTODIAN_CONSOLE_IDLE_TIMEOUT,
  lifetimeMs: config.CUSTODIAN_CONSOLE_SESSION_LIFETIME,
  linkLifetimeMs: config.CUSTODIAN_CONSOLE_LINK_SESSION_LIFETIME,
});

/** The cookie's attributes: HttpOnly, SameSite=Strict, Secure when the public URL is https. */
export const sessionCookieOptions = (config: Config) =>
  ({
    path: '/',
    httpOnly: true,
    secure: config.CUSTODIAN_PUBLIC_URL.startsWith('https:'),
    sameSite: 'Strict',
  }) as const;

/** The user still holds a live API key: a page-link session lives no longer than the user's last key. */
const holdsLiveKey = (db: Db) =>
  exists(
    db
      .select({ id: apiKeys.id })
      .from(apiKeys)
      .where(and(eq(apiKeys.userId, users.id), isNull(apiKeys.revokedAt))),
  );

/** The session cookie: `__Host-` (Secure, Path=/, no Domain) when the public URL is https. */
export const sessionCookieName = (config: Config) =>
  config.CUSTODIAN_PUBLIC_URL.startsWith('https:') ? '__Host-custodian-console' : 'custodian-console';

/**
 * Signs a principal in: a random token for the cookie (only its hash is stored), a random CSRF secret, and an
 * audited `console.signed-in` in the same transaction.
 */
export const startSession = (
  db: Db,
  principal: Principal,
  terms: SessionTerms,
  now: Date,
): Promise<{ token: string; expiresAt: Date }> =>
  db.transaction(async (tx) => {
    const token = randomBytes(32).toString('base64url');
    const idHash = hashToken(token);
    const expiresAt = new Date(now.getTime() + terms.lifetimeMs);
    const idleExpiresAt = new Date(Math.min(now.getTime() + terms.idleMs, expiresAt.getTime()));
    await tx.insert(consoleSessions).values({
      idHash,
      userId: principal.userId,
      apiKeyId: principal.keyId,
      csrfSecret: randomBytes(32).toString('base64url'),
      createdAt: now,
      lastSeenAt: now,
      idleExpiresAt,
      expiresAt,
    });
    await appendAudit(tx, {
      actor: `user:${principal.userId}`,
      apiKeyId: principal.keyId,
      action: 'console.signed-in',
      targetType: 'user',
      targetId: principal.userId,
      // The hash's first 16 hex digits name the session in the trail without letting anyone present it.
      details: { session: idHash.slice(0, 16), role: principal.role },
      idempotencyKey: `console.signed-in:${idHash}`,
    });
    return { token, expiresAt };
  });

/**
 * The live session behind a cookie token, its idle expiry pushed on: none when the token is unknown, idle or past
 * its lifetime, or its API key revoked or user disabled since (checked here, on every request).
 */
export const findSession = async (
  db: Db,
  token: string | undefined,
  terms: SessionTerms,
  now: Date,
): Promise<ConsoleSession | undefined> => {
  if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  const idHash = hashToken(token);
  const [row] = await db
    .select({
      userId: consoleSessions.userId,
      keyId: apiKeys.id,
      role: users.role,
      csrf: consoleSessions.csrfSecret,
      expiresAt: consoleSessions.expiresAt,
    })
    .from(consoleSessions)
    .innerJoin(apiKeys, and(eq(apiKeys.id, consoleSessions.apiKeyId), isNull(apiKeys.revokedAt)))
    .innerJoin(users, and(eq(users.id, consoleSessions.userId), isNull(users.disabledAt)))
    .where(
      and(
        eq(consoleSessions.idHash, idHash),
        gt(consoleSessions.idleExpiresAt, now),
        gt(consoleSessions.expiresAt, now),
      ),
    );
  if (!row) return undefined;
  const idleExpiresAt = new Date(Math.min(now.getTime() + terms.idleMs, row.expiresAt.getTime()));
  await db.update(consoleSessions).set({ lastSeenAt: now, idleExpiresAt }).where(eq(consoleSessions.idHash, idHash));
  return { principal: { userId: row.userId, role: row.role, keyId: row.keyId }, csrf: row.csrf, idHash };
};

export type PageLinkSignIn =
  { signedIn: true; token: string; expiresAt: Date } | { signedIn: false; reason: 'used' | 'not-responder' };

/**
 * Signs the paged responder in for one incident with the page's link: claims the link (single use, shared with the
 * link's acknowledge button) and starts a session scoped to the incident, short-lived, in one transaction with its
 * audited `console.signed-in` (`via: page-link`). Refused when the link was used, or the user is not an active
 * responder holding a live API key.
 */
export const startLinkSession = (
  db: Db,
  page: { pageId: string; incidentId: string; userId: string },
  terms: SessionTerms,
  now: Date,
): Promise<PageLinkSignIn> =>
  db.transaction(async (tx) => {
    const [user] = await tx
      .select({ role: users.role })
      .from(users)
      .where(and(eq(users.id, page.userId), isNull(users.disabledAt), holdsLiveKey(db)));
    if (user?.role !== 'responder') return { signedIn: false, reason: 'not-responder' };
    const [claimed] = await tx
      .update(incidentPages)
      .set({ linkUsedAt: now })
      .where(and(eq(incidentPages.id, page.pageId), isNull(incidentPages.linkUsedAt)))
      .returning({ id: incidentPages.id });
    if (!claimed) return { signedIn: false, reason: 'used' };
    const token = randomBytes(32).toString('base64url');
    const idHash = hashToken(token);
    const expiresAt = new Date(now.getTime() + Math.min(terms.linkLifetimeMs, terms.lifetimeMs));
    await tx.insert(consoleSessions).values({
      idHash,
      userId: page.userId,
      apiKeyId: null,
      incidentId: page.incidentId,
      pageId: page.pageId,
      csrfSecret: randomBytes(32).toString('base64url'),
      createdAt: now,
      lastSeenAt: now,
      idleExpiresAt: new Date(Math.min(now.getTime() + terms.idleMs, expiresAt.getTime())),
      expiresAt,
    });
    await appendAudit(tx, {
      actor: `user:${page.userId}`,
      action: 'console.signed-in',
      targetType: 'user',
      targetId: page.userId,
      details: { session: idHash.slice(0, 16), role: user.role, via: 'page-link', incident: page.incidentId },
      idempotencyKey: `console.signed-in:${idHash}`,
    });
    return { signedIn: true, token, expiresAt };
  });

/** The live page-link session behind a cookie token (see `findSession`; no key, so the user's live keys count). */
export const findLinkSession = async (
  db: Db,
  token: string | undefined,
  terms: SessionTerms,
  now: Date,
): Promise<LinkSession | undefined> => {
  if (!token || !/^[A-Za-z0-9_-]{43}$/.test(token)) return undefined;
  const idHash = hashToken(token);
  const [row] = await db
    .select({
      userId: consoleSessions.userId,
      role: users.role,
      incidentId: consoleSessions.incidentId,
      csrf: consoleSessions.csrfSecret,
      expiresAt: consoleSessions.expiresAt,
    })
    .from(consoleSessions)
    .innerJoin(users, and(eq(users.id, consoleSessions.userId), isNull(users.disabledAt)))
    .where(
      and(
        eq(consoleSessions.idHash, idHash),
        isNotNull(consoleSessions.incidentId),
        gt(consoleSessions.idleExpiresAt, now),
        gt(consoleSessions.expiresAt, now),
        holdsLiveKey(db),
      ),
    );
  if (!row?.incidentId) return undefined;
  const idleExpiresAt = new Date(Math.min(now.getTime() + terms.idleMs, row.expiresAt.getTime()));
  await db.update(consoleSessions).set({ lastSeenAt: now, idleExpiresAt }).where(eq(consoleSessions.idHash, idHash));
  return { userId: row.userId, role: row.role, incidentId: row.incidentId, csrf: row.csrf, idHash };
};

/** Signs out: the row goes, with an audited `console.signed-out` in the same transaction (once). */
export const endSession = (
  db: Db,
  session: { idHash: string; principal: { userId: string; keyId: string | null } },
): Promise<void> =>
  db.transaction(async (tx) => {
    const [gone] = await tx
      .delete(consoleSessions)
      .where(eq(consoleSessions.idHash, session.idHash))
      .returning({ idHash: consoleSessions.idHash });
    if (!gone) return;
    await appendAudit(tx, {
      actor: `user:${session.principal.userId}`,
      ...(session.principal.keyId && { apiKeyId: session.principal.keyId }),
      action: 'console.signed-out',
      targetType: 'user',
      targetId: session.principal.userId,
      details: { session: session.idHash.slice(0, 16) },
      idempotencyKey: `console.signed-out:${session.idHash}`,
    });
  });
