import { describe, expect, it } from 'vitest';
import { consentGate, type ConsentGateInput, type PurposeConsent } from '../../domain/consent-gate';

const now = new Date('2026-11-30T10:00:00Z');
const consent = (o: Partial<PurposeConsent> = {}): PurposeConsent => ({
  consentId: 'c-1',
  status: 'granted',
  validUntil: new Date('2027-11-30T10:00:00Z'),
  sensitiveDecision: null,
  ...o,
});
const gate = (o: Partial<ConsentGateInput>) =>
  consentGate({ purpose: 'marketing', legalBasis: 'consent', touchesSensitive: false, now, ...o });

describe('consent gate', () => {
  it('lets a granted, unexpired consent through, and a grant without an end', () => {
    expect(gate({ consent: consent() })).toEqual({ allowed: true, legalBasis: 'consent' });
    expect(gate({ consent: consent({ validUntil: null }) }).allowed).toBe(true);
  });

  it('refuses a consent-based purpose in every other state, naming the state and the purpose', () => {
    const cases = [
      [undefined, 'consent-not-granted', 'none'],
      [consent({ status: 'requested' }), 'consent-requested', 'requested'],
      [consent({ status: 'denied' }), 'consent-denied', 'denied'],
      [consent({ status: 'expired' }), 'consent-expired', 'expired'],
      [consent({ status: 'withdrawn' }), 'consent-withdrawn', 'withdrawn'],
      [consent({ validUntil: now }), 'consent-expired', 'lapsed'],
    ] as const;
    for (const [c, code, state] of cases) {
      const verdict = gate({ consent: c });
      expect(verdict, code).toMatchObject({ allowed: false, code, state, legalBasis: 'consent' });
      expect(!verdict.allowed && verdict.message).toMatch(/^purpose marketing \(legal basis consent\): /);
    }
  });

  it('does not gate another legal basis by consent state', () => {
    for (const legalBasis of [
      'contract',
      'legal-obligation',
      'legitimate-interest',
      'vital-interest',
      'public-task',
    ] as const) {
      expect(gate({ legalBasis }).allowed).toBe(true);
      expect(gate({ legalBasis, consent: consent({ status: 'denied' }), touchesSensitive: true }).allowed).toBe(true);
    }
  });

  it('refuses a restricted purpose whatever its legal basis', () => {
    const restriction = { consentId: 'c-0', reason: 'consent-withdrawn' } as const;
    for (const legalBasis of ['consent', 'contract', 'legal-obligation'] as const)
      expect(gate({ legalBasis, restriction, consent: consent() })).toMatchObject({
        allowed: false,
        code: 'consent-withdrawn',
        state: 'restricted',
        consentId: 'c-0',
      });
  });

  it('needs the separate sensitive grant only where a sensitive field would be decrypted', () => {
    for (const sensitiveDecision of [null, 'refused'] as const)
      expect(gate({ consent: consent({ sensitiveDecision }), touchesSensitive: true })).toMatchObject({
        allowed: false,
        code: 'consent-sensitive-not-granted',
      });
    expect(gate({ consent: consent({ sensitiveDecision: 'granted' }), touchesSensitive: true }).allowed).toBe(true);
    expect(gate({ consent: consent({ sensitiveDecision: 'refused' }), touchesSensitive: false }).allowed).toBe(true);
  });
});
