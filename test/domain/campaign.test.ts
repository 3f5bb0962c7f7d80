import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { campaignConsentId } from '../../activities/campaigns';
import {
  CAMPAIGN_CONSENT_NAMESPACE,
  CampaignRequest,
  campaignConsentName,
  observedRate,
  paceMs,
  uuidFromSha256,
} from '../../domain/campaign';

const campaignId = '3d6f2b1e-8c4a-4f0e-9b7d-1a2b3c4d5e6f';
const subjectId = '9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d';

describe('campaign consent IDs (RFC 9562 name-based, SHA-256)', () => {
  it('builds the RFC 9562 appendix B.2 example UUIDv8 from its SHA-256', () => {
    const dns = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');
    const digest = createHash('sha256')
      .update(Buffer.concat([dns, Buffer.from('www.example.com')]))
      .digest();
    expect(uuidFromSha256(digest)).toBe('5c146b14-3c52-8afd-938a-375d0df1fbf6');
  });

  it('hashes the namespace bytes then "<campaign>:<subject>", and is the same for every attempt and case', () => {
    const expected = createHash('sha256')
      .update(Buffer.from(CAMPAIGN_CONSENT_NAMESPACE.replace(/-/g, ''), 'hex'))
      .update(`${campaignId}:${subjectId}`)
      .digest();
    expect(Buffer.from(campaignConsentName(campaignId, subjectId))).toEqual(
      Buffer.concat([
        Buffer.from(CAMPAIGN_CONSENT_NAMESPACE.replace(/-/g, ''), 'hex'),
        Buffer.from(`${campaignId}:${subjectId}`),
      ]),
    );
    const id = campaignConsentId(campaignId, subjectId);
    expect(id).toBe(uuidFromSha256(expected));
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-8[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(campaignConsentId(campaignId.toUpperCase(), subjectId.toUpperCase())).toBe(id);
    expect(campaignConsentId(campaignId, subjectId)).toBe(id);
  });

  it('differs per campaign and per subject, and is not symmetric', () => {
    const id = campaignConsentId(campaignId, subjectId);
    expect(campaignConsentId(subjectId, campaignId)).not.toBe(id);
    expect(campaignConsentId(campaignId, campaignId)).not.toBe(id);
    expect(new Set(Array.from({ length: 1000 }, (_, i) => campaignConsentId(campaignId, `${i}`))).size).toBe(1000);
  });

  it('refuses a digest shorter than 128 bits', () => {
    expect(() => uuidFromSha256(new Uint8Array(15))).toThrow(RangeError);
  });
});

describe('pacing', () => {
  it('waits what is left of subjects ÷ rate after the batch’s own time; no limit, no wait', () => {
    expect(paceMs(100, 50, 500)).toBe(1_500);
    expect(paceMs(100, 50, 2_500)).toBe(0);
    expect(paceMs(1, 3, 0)).toBe(334);
    expect(paceMs(100, undefined, 0)).toBe(0);
  });

  it('reports the observed rate over active time', () => {
    expect(observedRate(500, 2_000)).toBe(250);
    expect(observedRate(0, 0)).toBe(0);
  });
});

describe('campaign request', () => {
  const noticeId = '5B0E8F5A-1C2D-4E3F-9A8B-7C6D5E4F3A2B';
  const issues = (input: unknown) =>
    (CampaignRequest.safeParse(input).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);

  it('parses a notice-only campaign with defaults and lower-cased IDs', () => {
    expect(CampaignRequest.parse({ noticeId, purposeChanged: false, filter: { jurisdiction: 'CN' } })).toEqual({
      noticeId: noticeId.toLowerCase(),
      purposeChanged: false,
      filter: { jurisdiction: 'CN' },
      batchSize: 500,
    });
  });

  it('needs every consent term for a re-consent campaign and refuses them otherwise, by name', () => {
    expect(issues({ noticeId, purposeChanged: true, respondWithin: 'P14D' })).toEqual([
      'remindEvery: required when purposeChanged is true',
      'maxReminders: required when purposeChanged is true',
      'validFor: required when purposeChanged is true',
    ]);
    expect(issues({ noticeId, purposeChanged: false, validFor: 'P1D' })).toEqual([
      'validFor: only for a re-consent campaign (purposeChanged)',
    ]);
    expect(
      CampaignRequest.parse({
        noticeId,
        purposeChanged: true,
        respondWithin: 'P14D',
        remindEvery: '30 seconds',
        maxReminders: 2,
        validFor: 'P365D',
      }),
    ).toMatchObject({ respondWithin: 14 * 86_400_000, remindEvery: 30_000, validFor: 365 * 86_400_000 });
  });

  it('refuses bad values naming the field', () => {
    expect(issues({ noticeId, purposeChanged: false, ratePerSecond: 0 })[0]).toMatch(/^ratePerSecond: /);
    expect(issues({ noticeId, purposeChanged: false, batchSize: 0 })[0]).toMatch(/^batchSize: /);
    expect(issues({ noticeId, purposeChanged: false, filter: { jurisdiction: 'cn' } })[0]).toMatch(
      /^filter\.jurisdiction: /,
    );
    expect(issues({ noticeId, purposeChanged: false, filter: { importId: 'x' } })[0]).toMatch(/^filter\.importId: /);
    expect(issues({ noticeId, purposeChanged: false, filter: { name: 'x' } })[0]).toMatch(/^filter: /);
    expect(issues({ noticeId: 'nope', purposeChanged: false })[0]).toMatch(/^noticeId: /);
  });
});
