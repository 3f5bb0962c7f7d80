import type { LegalBasis } from './catalog';
import type { ConsentStatus } from './consent';

/**
 * Whether a subject's data may be used (revealed) for a purpose, from the purpose's legal basis, the subject's
 * latest consent for it and any restriction a withdrawal left. Pure: the registry reads the rows, this decides.
 */

/** The subject's latest consent for a purpose (by creation), as the consents table holds it. */
export interface PurposeConsent {
  consentId: string;
  status: ConsentStatus;
  validUntil: Date | null;
  /** The separate answer for sensitive fields (PIPL Art. 29); null when not asked or unanswered. */
  sensitiveDecision: 'granted' | 'refused' | null;
}

/** A purpose the subject's data may not be processed for (purpose_restrictions, or a data-subject request's). */
export type PurposeRestriction =
  | { consentId: string; reason: 'consent-withdrawn' }
  | { consentId?: undefined; requestId: string; reason: 'restricted-by-request' };

export const CONSENT_REFUSAL_CODES = [
  'consent-withdrawn',
  'consent-denied',
  'consent-not-granted',
  'consent-expired',
  'consent-requested',
  'consent-sensitive-not-granted',
  'restricted-by-request',
] as const;
export type ConsentRefusalCode = (typeof CONSENT_REFUSAL_CODES)[number];

/** What a reveal for the purpose would meet. `state` names the consent state; nothing in it is a personal value. */
export type ConsentGateVerdict =
  | { allowed: true; legalBasis: LegalBasis }
  | {
      allowed: false;
      legalBasis: LegalBasis;
      code: ConsentRefusalCode;
      /** `restricted`, `none`, `lapsed` (a grant past its validity) or the consent's status. */
      state: 'restricted' | 'none' | 'lapsed' | ConsentStatus;
      consentId: string | null;
      message: string;
    };

export interface ConsentGateInput {
  purpose: string;
  legalBasis: LegalBasis;
  consent?: PurposeConsent;
  restriction?: PurposeRestriction;
  /** The use would decrypt a field the catalog classifies `sensitive`. */
  touchesSensitive: boolean;
  now: Date;
}

const STATUS_CODE: Record<Exclude<ConsentStatus, 'granted'>, ConsentRefusalCode> = {
  requested: 'consent-requested',
  denied: 'consent-denied',
  expired: 'consent-expired',
  withdrawn: 'consent-withdrawn',
};

const STATUS_WORDS: Record<Exclude<ConsentStatus, 'granted'>, string> = {
  requested: 'was requested and not yet answered',
  denied: 'was denied',
  expired: 'expired unanswered',
  withdrawn: 'was withdrawn',
};

/**
 * A restriction blocks the purpose whatever its legal basis; otherwise only a `consent` purpose needs a granted,
 * unexpired consent (and, to decrypt a sensitive field, the separate sensitive grant).
 */
export const consentGate = (g: ConsentGateInput): ConsentGateVerdict => {
  const refuse = (
    code: ConsentRefusalCode,
    state: Extract<ConsentGateVerdict, { allowed: false }>['state'],
    consentId: string | null,
    why: string,
  ): ConsentGateVerdict => ({
    allowed: false,
    legalBasis: g.legalBasis,
    code,
    state,
    consentId,
    message: `purpose ${g.purpose} (legal basis ${g.legalBasis}): ${why}`,
  });

  if (g.restriction?.reason === 'restricted-by-request')
    return refuse(
      g.restriction.reason,
      'restricted',
      null,
      `restricted for this subject by data-subject request ${g.restriction.requestId}`,
    );
  if (g.restriction)
    return refuse(
      g.restriction.reason,
      'restricted',
      g.restriction.consentId,
      `restricted for this subject since consent ${g.restriction.consentId} was withdrawn`,
    );
  if (g.legalBasis !== 'consent') return { allowed: true, legalBasis: g.legalBasis };
  const c = g.consent;
  if (!c) return refuse('consent-not-granted', 'none', null, 'the subject has never granted consent for it');
  if (c.status !== 'granted')
    return refuse(STATUS_CODE[c.status], c.status, c.consentId, `consent ${c.consentId} ${STATUS_WORDS[c.status]}`);
  if (c.validUntil && c.validUntil.getTime() <= g.now.getTime())
    return refuse(
      'consent-expired',
      'lapsed',
      c.consentId,
      `consent ${c.consentId} was valid until ${c.validUntil.toISOString()}`,
    );
  if (g.touchesSensitive && c.sensitiveDecision !== 'granted')
    return refuse(
      'consent-sensitive-not-granted',
      c.status,
      c.consentId,
      `consent ${c.consentId} has no separate consent for sensitive fields (${c.sensitiveDecision ?? 'not given'})`,
    );
  return { allowed: true, legalBasis: g.legalBasis };
};
