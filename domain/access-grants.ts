import { z } from 'zod';
import { Classification, Purpose, type Catalog } from './catalog';

/**
 * Access grants: a user may use a capability (`reveal`) on a data classification and/or a purpose until the grant
 * expires or is revoked. Grants narrow roles, never widen them: the reveal route still needs the role `owner`, and
 * (with CUSTODIAN_SENSITIVE_REVEAL_NEEDS_GRANT) a reveal that would decrypt a `sensitive` field also needs a live
 * grant that covers `sensitive` and the purpose.
 */

export const CAPABILITIES = ['reveal'] as const;
export const Capability = z.enum(CAPABILITIES);
export type Capability = z.infer<typeof Capability>;

const UserId = z.uuid().transform((id) => id.toLowerCase());

export const AccessGrantRequest = z
  .object({
    userId: UserId,
    capability: Capability,
    classification: Classification.optional(),
    purpose: Purpose.optional(),
    expiresAt: z.iso.datetime({ offset: true }),
    reviewerId: UserId,
  })
  .strict()
  .refine((g) => g.classification !== undefined || g.purpose !== undefined, {
    error: 'give a classification, a purpose or both',
    path: ['classification'],
  })
  .refine((g) => g.reviewerId !== g.userId, {
    error: 'the reviewer must not be the grantee',
    path: ['reviewerId'],
  });
export type AccessGrantRequest = z.infer<typeof AccessGrantRequest>;

/** What a grant covers, as stored (null: any). */
export interface GrantScope {
  classification: Classification | null;
  purpose: string | null;
}

/** Whether a grant's scope covers using `classification` data for `purpose`. */
export const grantCovers = (grant: GrantScope, classification: Classification, purpose: string): boolean =>
  (grant.classification === null || grant.classification === classification) &&
  (grant.purpose === null || grant.purpose === purpose);

/** Whether a reveal for the purpose would decrypt a field the catalog classifies `sensitive`. */
export const purposeTouchesSensitive = (catalog: Catalog, purpose: string): boolean =>
  Object.values(catalog.fields).some((f) => f.classification === 'sensitive' && f.purposes.includes(purpose));

export const GRANT_REVOKE_REASONS = ['revoked', 'review-revoked', 'not-certified'] as const;
export type GrantRevokeReason = (typeof GRANT_REVOKE_REASONS)[number];
