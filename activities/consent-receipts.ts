import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { ConsentReceipt, SignedReceipt, type ConsentReceipt as Receipt } from '../domain/consent-receipt';
import { publicKeyPem, type Keyring } from '../runtime/keyring';
import { sign, verifySignature } from './crypto/signatures';

export interface ReceiptVerification {
  valid: boolean;
  /** Why not, in terms of the receipt's structure and keys: it never quotes a value. */
  reason?: string;
  keyId?: string;
  /** `given`: checked under a key the verifier supplied; `embedded`: only under the key the receipt carries. */
  checkedWith?: 'given' | 'embedded';
}

/** The keyring's key ID formula (runtime/keyring.ts): the first 16 hex of SHA-256 over the raw Ed25519 key. */
export const signingKeyId = (publicKey: KeyObject): string =>
  createHash('sha256')
    .update(Buffer.from(publicKey.export({ format: 'jwk' }).x ?? '', 'base64url'))
    .digest('hex')
    .slice(0, 16);

/** Ed25519 over the canonical JSON of the receipt, with the key ID and the public key to check it. */
export const signReceipt = (keyring: Keyring, receipt: Receipt): SignedReceipt => {
  const valid = ConsentReceipt.parse(receipt);
  const { signature, keyId, algorithm } = sign(keyring, valid);
  return { receipt: valid, algorithm, signature, keyId, publicKey: publicKeyPem(keyring) };
};

const parseKey = (pem: string): KeyObject | undefined => {
  try {
    const key = createPublicKey(pem);
    return key.asymmetricKeyType === 'ed25519' ? key : undefined;
  } catch {
    return undefined;
  }
};

const fail = (reason: string, extra: Partial<ReceiptVerification> = {}): ReceiptVerification => ({
  valid: false,
  reason,
  ...extra,
});

/**
 * Checks a signed receipt offline: its shape, that its key ID names its public key, and the signature over
 * the canonical JSON of the receipt, under `trusted` (PEM or key) when given (which then must be the key that
 * signed), else under the key the receipt carries (which proves integrity, not who signed).
 */
export const verifyReceipt = (signed: unknown, trusted?: string | KeyObject): ReceiptVerification => {
  const envelope = SignedReceipt.safeParse(signed);
  if (!envelope.success) {
    const paths = [...new Set(envelope.error.issues.map((i) => i.path.join('.') || '(root)'))];
    return fail(`not a signed receipt: ${paths.join(', ')}`);
  }
  const { receipt, signature, keyId, publicKey } = envelope.data;
  const shape = ConsentReceipt.safeParse(receipt);
  if (!shape.success) {
    // Paths only: an unknown key is reported as such, never by its name (a name could be a value).
    const paths = [
      ...new Set(
        shape.error.issues.map(
          (i) => ['receipt', ...i.path].join('.') + (i.code === 'unrecognized_keys' ? ' (unknown fields)' : ''),
        ),
      ),
    ];
    return fail(`the receipt does not match its schema: ${paths.join(', ')}`, { keyId });
  }
  // Canonical base64 only: a changed padding bit decodes to the same bytes and must not pass as the original.
  if (!/^[A-Za-z0-9+/]{86}==$/.test(signature) || Buffer.from(signature, 'base64').toString('base64') !== signature) {
    return fail('the signature is not a canonical base64 Ed25519 signature', { keyId });
  }
  const embedded = parseKey(publicKey);
  if (!embedded) return fail('publicKey is not an Ed25519 public key (SPKI PEM)', { keyId });
  if (signingKeyId(embedded) !== keyId) return fail('keyId does not name the embedded public key', { keyId });
  const checkedWith = trusted === undefined ? 'embedded' : 'given';
  const key = trusted === undefined ? embedded : typeof trusted === 'string' ? parseKey(trusted) : trusted;
  if (!key) return fail('the given public key is not an Ed25519 public key (SPKI PEM)', { keyId, checkedWith });
  if (checkedWith === 'given' && signingKeyId(key) !== keyId) {
    return fail(`signed with key ${keyId}, not with the given key ${signingKeyId(key)}`, { keyId, checkedWith });
  }
  // Verify what was received, not the parsed copy: parsing must not be able to repair a tampered receipt.
  if (!verifySignature(key, receipt, signature)) {
    return fail('the signature does not match the receipt', { keyId, checkedWith });
  }
  return { valid: true, keyId, checkedWith };
};
