import { z } from 'zod';

/**
 * Text PostgreSQL cannot store as sent: a NUL (refused in any text value) or an unpaired surrogate (no
 * UTF-8 form; Node would silently replace it). One rule for API inputs and import lines alike.
 */
// eslint-disable-next-line no-control-regex -- NUL is exactly what is refused
const SUSPECT = /[\u0000\ud800-\udfff]/;
// eslint-disable-next-line no-control-regex -- NUL is exactly what is refused
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

export const UNSTORABLE_TEXT = 'contains a NUL character or an unpaired surrogate';

/** The quick test first: nearly every string has neither a NUL nor a surrogate at all. */
export const isUnstorableText = (text: string): boolean => SUSPECT.test(text) && UNSTORABLE.test(text);

/**
 * Free text from an API body, trimmed, within `min`–`max` characters, that PostgreSQL can store: the refusal is an
 * issue of this field even when other fields of the body fail too.
 */
export const StorableText = (min: number, max: number) =>
  z
    .string()
    .trim()
    .min(min)
    .max(max)
    .refine((text) => !isUnstorableText(text), UNSTORABLE_TEXT);
