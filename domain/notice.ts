import { z } from 'zod';
import { canonicalJson } from './canonical-json';
import { Purpose } from './catalog';

/** The locales every notice is written in: the subjects are in China, the handlers may not be. */
export const NOTICE_LOCALES = ['zh-CN', 'en'] as const;
export const NoticeLocale = z.enum(NOTICE_LOCALES);
export type NoticeLocale = z.infer<typeof NoticeLocale>;

export const NOTICE_LIMITS = { title: 200, body: 20_000, name: 200, contact: 320, address: 500 } as const;

const bounded = (max: number) => z.string().trim().min(1).max(max);

export const NoticeText = z.object({ title: bounded(NOTICE_LIMITS.title), body: bounded(NOTICE_LIMITS.body) }).strict();
export type NoticeText = z.infer<typeof NoticeText>;

/** The handler the notice names (PIPL Art. 22: the recipient's name and contact). */
export const NoticeHandler = z
  .object({
    name: bounded(NOTICE_LIMITS.name),
    contact: bounded(NOTICE_LIMITS.contact),
    address: bounded(NOTICE_LIMITS.address).optional(),
  })
  .strict();
export type NoticeHandler = z.infer<typeof NoticeHandler>;

/** The handler the data came from, for a transfer notice. */
export const PreviousHandler = z
  .object({ name: bounded(NOTICE_LIMITS.name), contact: bounded(NOTICE_LIMITS.contact).optional() })
  .strict();
export type PreviousHandler = z.infer<typeof PreviousHandler>;

export const NoticeTexts = z.object({ 'zh-CN': NoticeText, en: NoticeText }).strict();
export type NoticeTexts = z.infer<typeof NoticeTexts>;

/** A new notice (or a new version of one: versions are per purpose and assigned by the registry). */
export const NoticeInput = z
  .object({
    purpose: Purpose,
    texts: NoticeTexts,
    handler: NoticeHandler,
    previousHandler: PreviousHandler.optional(),
  })
  .strict();
export type NoticeInput = z.infer<typeof NoticeInput>;

export interface Notice extends NoticeInput {
  id: string;
  version: number;
  /** SHA-256 (hex) of `noticeHashInput`: what a consent receipt cites. */
  textSha256: string;
  createdBy: string;
  createdAt: Date;
}

/**
 * The bytes a notice's hash covers: the canonical JSON of the texts and the handlers, the words and the
 * names a subject was shown. The purpose and version are the notice's identity and are cited beside it.
 */
export const noticeHashInput = (n: Pick<NoticeInput, 'texts' | 'handler' | 'previousHandler'>): string =>
  canonicalJson({ texts: n.texts, handler: n.handler, previousHandler: n.previousHandler ?? null });
