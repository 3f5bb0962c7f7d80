/**
 * A business rule refused the request. The API maps `kind` to a status and `code` to the problem's
 * stable code; the message is shown to the caller, so it names IDs and rules, never personal data.
 */
export class DomainError extends Error {
  override name = 'DomainError';
  constructor(
    readonly kind: 'not-found' | 'conflict' | 'invalid',
    readonly code: string,
    message: string,
  ) {
    super(message);
  }

  static notFound = (what: string) => new DomainError('not-found', 'not-found', `${what} was not found`);
  static conflict = (code: string, message: string) => new DomainError('conflict', code, message);
}
