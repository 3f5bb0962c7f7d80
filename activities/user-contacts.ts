import { hkdfSync, randomUUID } from 'node:crypto';
import { eq } from 'drizzle-orm';
import type { Db } from '../db/client';
import { userContacts, users } from '../db/schema';
import { DomainError } from '../domain/errors';
import { notificationLocale, type NotificationLocale } from '../domain/notification-templates';
import type { Keyring } from '../runtime/keyring';
import { appendAudit } from './audit';
import { decryptField, encryptField } from './crypto/field-cipher';
import type { Actor } from './users';

/**
 * A user's page address (mail address, or whatever the configured channel routes on) is personal data: it is
 * stored only as AES-256-GCM ciphertext under a key derived from the current KEK with its own HKDF label, the
 * AAD binding `user:<id>` and the field, so it cannot be moved to another user or read with a subject's key.
 */
const contactKey = (keyring: Keyring, kekVersion: number): Buffer => {
  const kek = keyring.keks.get(kekVersion);
  if (!kek) throw new Error(`KEK version ${kekVersion} is not in the keyring`);
  return Buffer.from(hkdfSync('sha256', kek, Buffer.alloc(0), 'custodian/user-contact/v1', 32));
};
const ref = (userId: string, keyVersion: number) => ({ subjectId: `user:${userId}`, field: 'contact', keyVersion });

export const setUserContact = async (
  db: Db,
  keyring: Keyring,
  userId: string,
  input: { address: string; locale: NotificationLocale },
  by: Actor,
): Promise<{ userId: string; locale: NotificationLocale }> =>
  db.transaction(async (tx) => {
    const [user] = await tx.select({ id: users.id }).from(users).where(eq(users.id, userId));
    if (!user) throw DomainError.notFound(`user ${userId}`);
    const kekVersion = keyring.currentKekVersion;
    const ciphertext = encryptField(contactKey(keyring, kekVersion), ref(userId, kekVersion), input.address);
    await tx
      .insert(userContacts)
      .values({ userId, kekVersion, ciphertext, locale: input.locale })
      .onConflictDoUpdate({
        target: userContacts.userId,
        set: { kekVersion, ciphertext, locale: input.locale, updatedAt: new Date() },
      });
    await appendAudit(tx, {
      ...by,
      action: 'user.contact-set',
      targetType: 'user',
      targetId: userId,
      details: { userId, locale: input.locale, kekVersion },
      // A route's change, not a retried activity: each call is its own entry.
      idempotencyKey: `user.contact-set:${userId}:${randomUUID()}`,
    });
    return { userId, locale: input.locale };
  });

/** The user's address in clear and their page locale, or undefined when none is set or it cannot be read. */
export const readUserContact = async (
  db: Db,
  keyring: Keyring,
  userId: string,
): Promise<{ address: string; locale: NotificationLocale } | undefined> => {
  const [row] = await db.select().from(userContacts).where(eq(userContacts.userId, userId));
  if (!row || !keyring.keks.has(row.kekVersion)) return undefined;
  const address = decryptField(contactKey(keyring, row.kekVersion), ref(userId, row.kekVersion), row.ciphertext);
  return { address, locale: notificationLocale(row.locale) };
};
