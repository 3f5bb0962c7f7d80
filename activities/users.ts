import { createHash, randomBytes } from 'node:crypto';
import { and, eq, isNull } from 'drizzle-orm';
import type { Db } from '../db/client';
import { apiKeys, users } from '../db/schema';
import { DomainError } from '../domain/errors';
import type { Role } from '../domain/roles';
import { appendAudit } from './audit';

/** Who made a change: the audit actor (`user:<id>`, `cli`, `system:…`) and the API key used, if any. */
export interface Actor {
  actor: string;
  apiKeyId?: string;
}

export interface User {
  id: string;
  name: string;
  role: Role;
  createdAt: Date;
}

/** `cust_<8 hex>_<32 random bytes, base64url>`: the prefix identifies a key in lists without revealing it. */
export const API_KEY_PATTERN = /^cust_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$/;

export const hashApiKey = (key: string): string => createHash('sha256').update(key).digest('hex');

export const createUser = (db: Db, input: { name: string; role: Role }, by: Actor): Promise<User> =>
  db.transaction(async (tx) => {
    const [user] = await tx
      .insert(users)
      .values({ name: input.name, role: input.role })
      .returning({ id: users.id, name: users.name, role: users.role, createdAt: users.createdAt });
    await appendAudit(tx, {
      ...by,
      action: 'user.created',
      targetType: 'user',
      targetId: user!.id,
      details: { userId: user!.id, role: user!.role },
      idempotencyKey: `user.created:${user!.id}`,
    });
    return user!;
  });

/**
 * Issues a key for an active user; the key is returned once and only its SHA-256 hash is stored. The key
 * records who issued it; issuing a key for someone else is audited as its own action, so an admin who
 * gives themselves a way to act as an owner leaves that trace.
 */
export const issueApiKey = (db: Db, userId: string, by: Actor): Promise<{ id: string; key: string; prefix: string }> =>
  db.transaction(async (tx) => {
    const [user] = await tx
      .select({ role: users.role, disabledAt: users.disabledAt })
      .from(users)
      .where(eq(users.id, userId))
      .for('update');
    if (!user) throw DomainError.notFound(`user ${userId}`);
    if (user.disabledAt) throw DomainError.conflict('user-disabled', `user ${userId} is disabled`);
    const prefix = randomBytes(4).toString('hex');
    const key = `cust_${prefix}_${randomBytes(32).toString('base64url')}`;
    const [row] = await tx
      .insert(apiKeys)
      .values({ userId, prefix, keyHash: hashApiKey(key), issuedBy: by.actor })
      .returning({ id: apiKeys.id });
    const forOther = by.actor !== `user:${userId}`;
    await appendAudit(tx, {
      ...by,
      action: forOther ? 'api-key.issued-for-user' : 'api-key.issued',
      targetType: 'api-key',
      targetId: row!.id,
      details: { apiKeyId: row!.id, userId, role: user.role },
      idempotencyKey: `api-key.issued:${row!.id}`,
    });
    return { id: row!.id, key, prefix };
  });

/** Revokes a key; revoking it again is a no-op that returns the original revocation time. */
export const revokeApiKey = (db: Db, keyId: string, by: Actor): Promise<{ id: string; revokedAt: Date }> =>
  db.transaction(async (tx) => {
    const [revoked] = await tx
      .update(apiKeys)
      .set({ revokedAt: new Date() })
      .where(and(eq(apiKeys.id, keyId), isNull(apiKeys.revokedAt)))
      .returning({ userId: apiKeys.userId, revokedAt: apiKeys.revokedAt });
    if (!revoked) {
      const [existing] = await tx.select({ revokedAt: apiKeys.revokedAt }).from(apiKeys).where(eq(apiKeys.id, keyId));
      if (!existing) throw DomainError.notFound(`API key ${keyId}`);
      return { id: keyId, revokedAt: existing.revokedAt! };
    }
    await appendAudit(tx, {
      ...by,
      action: 'api-key.revoked',
      targetType: 'api-key',
      targetId: keyId,
      details: { apiKeyId: keyId, userId: revoked.userId },
      idempotencyKey: `api-key.revoked:${keyId}`,
    });
    return { id: keyId, revokedAt: revoked.revokedAt! };
  });

export interface Principal {
  userId: string;
  role: Role;
  keyId: string;
}

/** The principal behind a presented key, or undefined when the key is malformed, unknown, revoked or its user disabled. */
export const findPrincipal = async (db: Db, key: string): Promise<Principal | undefined> => {
  if (!API_KEY_PATTERN.test(key)) return undefined;
  const [row] = await db
    .select({ userId: users.id, role: users.role, keyId: apiKeys.id })
    .from(apiKeys)
    .innerJoin(users, eq(users.id, apiKeys.userId))
    .where(and(eq(apiKeys.keyHash, hashApiKey(key)), isNull(apiKeys.revokedAt), isNull(users.disabledAt)));
  return row;
};
