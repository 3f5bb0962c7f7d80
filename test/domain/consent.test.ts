import { describe, expect, it } from 'vitest';
import { consentToken, verifyConsentToken } from '../../activities/consents';
import { defaultCatalog } from '../../domain/catalog';
import {
  ConsentConflict,
  ConsentRequest,
  SensitiveChoiceInvalid,
  decide,
  expire,
  parseDuration,
  sensitiveAnswer,
  sensitiveCategories,
  settleSensitive,
  subjectLanguage,
  withdraw,
  type ConsentState,
} from '../../domain/consent';
import { generateKeyFile, parseKeyring } from '../../runtime/keyring';

const keyring = parseKeyring(generateKeyFile(), 'test');
const consentId = '6f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
const now = new Date('2026-06-01T00:00:00Z');
const claims = { consentId, round: 1, expiresAt: now.getTime() + 60_000 };

describe('consent durations', () => {
  it('reads ISO 8601 and words, in milliseconds', () => {
    expect(parseDuration('P30D')).toBe(30 * 86_400_000);
    expect(parseDuration('PT1H30M')).toBe(5_400_000);
    expect(parseDuration('PT2S')).toBe(2000);
    expect(parseDuration('30 seconds')).toBe(30_000);
    expect(parseDuration('1 day')).toBe(86_400_000);
    expect(parseDuration('P1Y')).toBeUndefined();
    expect(parseDuration('soon')).toBeUndefined();
  });

  it('refuses a request with a duration under a second or unreadable', () => {
    const base = { subjectId: consentId, noticeId: consentId, channel: 'email', maxReminders: 2 };
    const ok = ConsentRequest.parse({ ...base, respondWithin: 'P14D', remindEvery: 'P3D', validFor: 'P365D' });
    expect(ok.respondWithin).toBe(14 * 86_400_000);
    expect(
      ConsentRequest.safeParse({ ...base, respondWithin: 'PT0S', remindEvery: '1 second', validFor: 'P1D' }).success,
    ).toBe(false);
    expect(
      ConsentRequest.safeParse({ ...base, respondWithin: 'P1M', remindEvery: '1 second', validFor: 'P1D' }).success,
    ).toBe(false);
  });
});

describe('consent transitions', () => {
  const open: ConsentState = { consentId, round: 1, status: 'requested', reminders: 0, respondBy: 1000 };
  const code = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(ConsentConflict);
      return (err as ConsentConflict).code;
    }
    return undefined;
  };

  it('grants within the window with a validity, and refuses every other move with a code', () => {
    const granted = decide(open, 'grant', 500, 100);
    expect(granted).toMatchObject({ status: 'granted', decidedAt: 500, validUntil: 600 });
    expect(code(() => decide(granted, 'grant', 501, 100))).toBe('consent-granted');
    expect(code(() => decide(granted, 'deny', 501, 100))).toBe('consent-granted');
    expect(code(() => decide(open, 'grant', 1000, 100))).toBe('consent-expired');
    expect(code(() => decide(expire(open), 'deny', 10, 100))).toBe('consent-expired');
    expect(code(() => withdraw(open, 10))).toBe('consent-not-granted');
    const withdrawn = withdraw(granted, 550);
    expect(withdrawn).toMatchObject({ status: 'withdrawn', withdrawnAt: 550 });
    expect(code(() => withdraw(withdrawn, 551))).toBe('consent-withdrawn');
    expect(code(() => expire(granted))).toBe('consent-granted');
  });
});

describe('the separate consent for sensitive data (PIPL Art. 29)', () => {
  const refusal = (f: () => unknown) => {
    try {
      f();
    } catch (err) {
      expect(err).toBeInstanceOf(SensitiveChoiceInvalid);
      return (err as SensitiveChoiceInvalid).code;
    }
    return undefined;
  };

  it('knows which purposes touch sensitive catalog fields', () => {
    expect(sensitiveCategories(defaultCatalog, 'credit-assessment')).toEqual([
      'bankAccount',
      'creditHistory',
      'creditScore',
      'idNumber',
      'loanBalance',
    ]);
    expect(sensitiveCategories(defaultCatalog, 'marketing')).toEqual([]);
    expect(sensitiveCategories(defaultCatalog, 'customer-service')).toEqual([]);
  });

  it('needs an explicit answer with a grant where the purpose touches sensitive data, and none elsewhere', () => {
    expect(sensitiveAnswer(true, 'grant', true)).toBe('granted');
    expect(sensitiveAnswer(true, 'grant', false)).toBe('refused');
    expect(sensitiveAnswer(true, 'deny', undefined)).toBe('refused');
    expect(sensitiveAnswer(true, 'deny', false)).toBe('refused');
    expect(refusal(() => sensitiveAnswer(true, 'grant', undefined))).toBe('sensitive-choice');
    expect(refusal(() => sensitiveAnswer(true, 'deny', true))).toBe('sensitive-choice');
    expect(sensitiveAnswer(false, 'grant', undefined)).toBeUndefined();
    expect(sensitiveAnswer(false, 'deny', undefined)).toBeUndefined();
    expect(refusal(() => sensitiveAnswer(false, 'grant', true))).toBe('sensitive-choice');
    expect(refusal(() => sensitiveAnswer(false, 'grant', false))).toBe('sensitive-choice');
    // Before the request is recorded the purpose is unknown: only the contradiction is refused.
    expect(sensitiveAnswer(undefined, 'grant', true)).toBeUndefined();
    expect(refusal(() => sensitiveAnswer(undefined, 'deny', true))).toBe('sensitive-choice');
  });

  it('settles an early answer safely: nothing but an explicit true grants it', () => {
    expect(settleSensitive(true, 'grant', undefined)).toBe('refused');
    expect(settleSensitive(true, 'grant', true)).toBe('granted');
    expect(settleSensitive(false, 'grant', true)).toBeUndefined();
  });

  it('is withdrawn with the consent', () => {
    const open: ConsentState = { consentId, round: 1, status: 'requested', reminders: 0, respondBy: 1000 };
    const granted: ConsentState = { ...decide(open, 'grant', 500, 100), sensitive: true, sensitiveDecision: 'granted' };
    expect(withdraw(granted, 550).sensitiveDecision).toBeUndefined();
  });

  it('addresses the subject in their language, zh-CN when they have none', () => {
    expect(subjectLanguage('en')).toBe('en');
    expect(subjectLanguage('en-GB')).toBe('en');
    expect(subjectLanguage('zh-CN')).toBe('zh-CN');
    expect(subjectLanguage(null)).toBe('zh-CN');
    expect(subjectLanguage('')).toBe('zh-CN');
  });
});

describe('consent link tokens', () => {
  const token = consentToken(keyring, claims);

  it('verifies its own token and reads the consent, round and expiry from it', () => {
    expect(token.startsWith(`${consentId}.1.`)).toBe(true);
    expect(verifyConsentToken(keyring, token, now)).toEqual({ valid: true, claims });
  });

  it('refuses a tampered token: another consent, round, expiry or MAC', () => {
    const [id, round, exp, mac] = token.split('.') as [string, string, string, string];
    const other = '7f1c2a34-5b6d-4e7f-8a9b-0c1d2e3f4a5b';
    const flipped = (mac[0] === 'A' ? 'B' : 'A') + mac.slice(1);
    // The last character's two low bits are unused: a decoder maps both spellings to the same bytes.
    const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const sameBytes = mac.slice(0, -1) + B64URL[B64URL.indexOf(mac.at(-1)!) ^ 1];
    expect(Buffer.from(sameBytes, 'base64url')).toEqual(Buffer.from(mac, 'base64url'));
    for (const tampered of [
      [other, round, exp, mac],
      [id, '2', exp, mac],
      [id, round, String(Number(exp) + 3600), mac],
      [id, round, exp, flipped],
      [id, round, exp, sameBytes],
    ])
      expect(verifyConsentToken(keyring, tampered.join('.'), now)).toEqual({ valid: false, reason: 'signature' });
    expect(verifyConsentToken(keyring, `${token}x`, now)).toEqual({ valid: false, reason: 'malformed' });
    expect(verifyConsentToken(keyring, '', now)).toEqual({ valid: false, reason: 'malformed' });
  });

  it('refuses a token of another keyring, and an expired one', () => {
    const foreign = parseKeyring(generateKeyFile(), 'other');
    expect(verifyConsentToken(foreign, token, now)).toEqual({ valid: false, reason: 'signature' });
    // Expired but ours: the claims come back (the page still lets a grant be withdrawn), marked invalid.
    expect(verifyConsentToken(keyring, token, new Date(claims.expiresAt))).toEqual({
      valid: false,
      reason: 'expired',
      claims,
    });
  });
});
