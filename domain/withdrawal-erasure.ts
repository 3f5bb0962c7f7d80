import { classifyField, legalBasisOf, type Catalog } from './catalog';

/** What a subject holds that a withdrawal may leave without a legal basis. */
export interface SubjectBases {
  /** The names of the subject's stored field values. */
  fields: readonly string[];
  /** Consent-based purposes the subject has another consent granted (and not expired) for. */
  grantedPurposes: ReadonlySet<string>;
  /** A retention date not yet reached: the data is kept under a retention obligation. */
  retained: boolean;
}

export type WithdrawalErasure =
  | { kind: 'none'; reason: 'not-consent-based' | 'other-basis' | 'retention-obligation' | 'no-data' }
  /** Nothing the subject holds has a basis left: the whole subject. */
  | { kind: 'subject' }
  /** These values rested on the withdrawn consent alone; the subject's other values keep a basis. */
  | { kind: 'fields'; fields: string[] };

/**
 * Whether withdrawing consent for `purpose` leaves data of the subject without a legal basis (GDPR Art. 17(1)(b),
 * PIPL Art. 47(3)). A value keeps a basis while one of its catalog purposes is not consent-based (contract, legal
 * obligation …) or is consent-based with another consent granted. The withdrawal concerns the values whose entry
 * names the purpose: those left without a basis go; when no value of the subject keeps one, the subject goes.
 */
export const erasureAfterWithdrawal = (catalog: Catalog, purpose: string, s: SubjectBases): WithdrawalErasure => {
  if (legalBasisOf(catalog, purpose) !== 'consent') return { kind: 'none', reason: 'not-consent-based' };
  if (s.fields.length === 0) return { kind: 'none', reason: 'no-data' };
  if (s.retained) return { kind: 'none', reason: 'retention-obligation' };
  const basisLeft = (p: string) => (legalBasisOf(catalog, p) ?? 'consent') !== 'consent' || s.grantedPurposes.has(p);
  const kept = (f: string) => classifyField(catalog, f).entry.purposes.some(basisLeft);
  const concerned = (f: string) => classifyField(catalog, f).entry.purposes.includes(purpose);
  const orphaned = [...new Set(s.fields)].filter((f) => concerned(f) && !kept(f)).sort();
  if (orphaned.length === 0) return { kind: 'none', reason: 'other-basis' };
  return s.fields.some(kept) ? { kind: 'fields', fields: orphaned } : { kind: 'subject' };
};
