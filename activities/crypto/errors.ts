export type CryptoErrorCode =
  | 'INVALID_KEY'
  | 'UNKNOWN_KEK_VERSION'
  | 'UNWRAP_FAILED'
  | 'MALFORMED_CIPHERTEXT'
  | 'UNSUPPORTED_FORMAT'
  | 'KEY_VERSION_MISMATCH'
  | 'DECRYPT_FAILED';

/** A crypto failure with a stable code. Messages never carry plaintext or key bytes. */
export class CryptoError extends Error {
  constructor(
    readonly code: CryptoErrorCode,
    message: string,
  ) {
    super(message);
    // The name is the Temporal failure type, so workflows can list it in nonRetryableErrorTypes.
    this.name = 'CryptoError';
  }
}
