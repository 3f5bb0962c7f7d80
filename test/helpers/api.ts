import { createGrant } from '../../activities/access-grants';
import { createUser, issueApiKey } from '../../activities/users';
import type { Db } from '../../db/client';
import type { Role } from '../../domain/roles';

/** A user with the given role and a fresh API key, created the way the API does it (audited). */
export const seedPrincipal = async (db: Db, role: Role, name = `test ${role}`) => {
  const user = await createUser(db, { name, role }, { actor: 'test:seed' });
  const { key, id: keyId } = await issueApiKey(db, user.id, { actor: 'test:seed' });
  return { userId: user.id, keyId, key };
};

/**
 * A live grant (a day long, reviewed by a fresh approver) for `userId` to reveal `sensitive` fields for any purpose:
 * sensitive reveals need one by default (CUSTODIAN_SENSITIVE_REVEAL_NEEDS_GRANT). For tests of other rules.
 */
export const grantSensitiveReveal = async (db: Db, userId: string) => {
  const reviewer = await seedPrincipal(db, 'approver', 'test reviewer');
  const expiresAt = new Date(Date.now() + 86_400_000).toISOString();
  return createGrant(
    db,
    { userId, capability: 'reveal', classification: 'sensitive', expiresAt, reviewerId: reviewer.userId },
    { actor: 'test:seed' },
    new Date(),
  );
};

/** Headers for an authenticated JSON request. */
export const bearer = (key: string): Record<string, string> => ({
  authorization: `Bearer ${key}`,
  'content-type': 'application/json',
});

/** A response's JSON body, typed by the test that knows its shape. */
export const readJson = <T>(res: Response): Promise<T> => res.json() as Promise<T>;

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  fields?: { path: string; message: string }[];
}

/** The parts of an OpenAPI document the tests look at. */
export interface OpenApiDocument {
  openapi: string;
  paths: Record<string, Record<string, { security?: unknown; 'x-roles'?: string[] }>>;
  components: { schemas: Record<string, unknown>; securitySchemes: Record<string, unknown> };
}
