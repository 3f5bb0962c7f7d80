import type { CatalogEntry, Classification, MaskStyle } from './catalog';

/** A fixed-width mask: a fully masked value shows neither its content nor its length. */
export const FULL_MASK = '******';

const stars = (n: number) => '*'.repeat(Math.max(n, 0));

const tail = (value: string, keep: number): string => {
  const chars = Array.from(value);
  if (chars.length <= keep) return stars(chars.length);
  return stars(chars.length - keep) + chars.slice(-keep).join('');
};

const maskName = (value: string): string => {
  const chars = Array.from(value.trim());
  if (chars.length <= 1) return stars(chars.length);
  return chars[0] + stars(chars.length - 1);
};

/** 13812341234 → 138****1234; short numbers keep only their last two digits. */
const maskPhone = (value: string): string => {
  const digits = value.replace(/\D/g, '');
  if (digits.length >= 8) return `${digits.slice(0, 3)}${stars(digits.length - 7)}${digits.slice(-4)}`;
  return tail(digits, 2);
};

/** zhang.san@example.com → z***@example.com */
const maskEmail = (value: string): string => {
  const at = value.lastIndexOf('@');
  if (at < 1) return FULL_MASK;
  return `${Array.from(value)[0]}***${value.slice(at)}`;
};

const maskPrefix3 = (value: string): string => {
  const chars = Array.from(value);
  if (chars.length <= 3) return stars(chars.length);
  return chars.slice(0, 3).join('') + stars(chars.length - 3);
};

const styles: Record<MaskStyle, (value: string) => string> = {
  none: (v) => v,
  name: maskName,
  phone: maskPhone,
  email: maskEmail,
  tail4: (v) => tail(v.replace(/\s/g, ''), 4),
  prefix3: maskPrefix3,
  full: () => FULL_MASK,
};

const defaultStyle = (classification: Classification): MaskStyle =>
  classification === 'general' ? 'none' : classification === 'personal' ? 'prefix3' : 'full';

/** The style a field is shown in: the catalog's choice, else one derived from the classification. */
export const maskStyleOf = (entry: Pick<CatalogEntry, 'mask'>, classification: Classification): MaskStyle =>
  // A general style on an encrypted value would print it in full: fall back to the classification's.
  entry.mask && !(entry.mask === 'none' && classification !== 'general') ? entry.mask : defaultStyle(classification);

export const maskValue = (style: MaskStyle, value: string): string => styles[style](value);
