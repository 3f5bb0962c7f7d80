import { createHmac, hkdfSync, timingSafeEqual } from 'node:crypto';
import { linkBody, splitLink, type LinkClaims } from '../domain/request';
import type { Keyring } from '../runtime/keyring';

/** What a subject's link opens: each purpose has its own key, so one link never opens another. */
export type RequestLinkPurpose = 'form' | 'status' | 'verify' | 'export';

const linkKey = (keyring: Keyring, purpose: RequestLinkPurpose): Buffer =>
  Buffer.from(hkdfSync('sha256', keyring.blindIndexKey, Buffer.alloc(0), `custodian/request-${purpose}-link/v1`, 32));

const mac = (keyring: Keyring, purpose: RequestLinkPurpose, body: string) =>
  createHmac('sha256', linkKey(keyring, purpose)).update(body).digest('base64url');

export const requestLinkToken = (keyring: Keyring, purpose: RequestLinkPurpose, claims: LinkClaims): string => {
  const body = linkBody(claims);
  return `${body}.${mac(keyring, purpose, body)}`;
};

export type LinkVerdict =
  { valid: true; claims: LinkClaims } | { valid: false; reason: 'malformed' | 'signature' | 'expired' };

/** Checks the MAC's text in constant time (not its decoded bytes: base64url's last character has spare bits), then the expiry. */
export const verifyRequestLink = (
  keyring: Keyring,
  purpose: RequestLinkPurpose,
  token: string,
  now: Date,
): LinkVerdict => {
  const parts = splitLink(token);
  if (!parts) return { valid: false, reason: 'malformed' };
  const presented = Buffer.from(parts.mac, 'utf8');
  const expected = Buffer.from(mac(keyring, purpose, parts.body), 'utf8');
  if (presented.length !== expected.length || !timingSafeEqual(presented, expected))
    return { valid: false, reason: 'signature' };
  if (now.getTime() >= parts.claims.expiresAt) return { valid: false, reason: 'expired' };
  return { valid: true, claims: parts.claims };
};

/** The page URL of a link: `/requests/new?token=`, `/requests/{token}`, `/requests/verify/{token}`, `/requests/exports/{token}`. */
export const requestLinkUrl = (publicUrl: string, purpose: RequestLinkPurpose, token: string) => {
  const base = publicUrl.replace(/\/+$/, '');
  switch (purpose) {
    case 'form':
      return `${base}/requests/new?token=${token}`;
    case 'status':
      return `${base}/requests/${token}`;
    default:
      return `${base}/requests/${purpose === 'verify' ? 'verify' : 'exports'}/${token}`;
  }
};
