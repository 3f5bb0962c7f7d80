/**
 * Deadlines of data-subject requests, as data with their sources (../shared/REGULATIONS.md, "Requests, objections,
 * complaints"). "checked" figures were read in the text or an official reprint; "secondary" ones only in a
 * translation, summary or standard. None of this is legal advice: every window is overridable per request, and the
 * CN default for other requests is configuration.
 */

export const REQUEST_TYPES = [
  'access',
  'portability',
  'correction',
  'erasure',
  'restriction',
  'objection',
  'complaint',
] as const;
export type RequestType = (typeof REQUEST_TYPES)[number];

export const REQUEST_CLOCK_KINDS = ['gdpr-art12', 'cn-credit-objection', 'cn-credit-complaint', 'cn-request'] as const;
export type RequestClockKind = (typeof REQUEST_CLOCK_KINDS)[number];

const DAY = 86_400_000;

export interface RequestClockRule {
  kind: RequestClockKind;
  jurisdiction: 'EU' | 'CN';
  /** A calendar month from receipt, or a figure in ms (null: the deployment's configured default). */
  window: 'one-month' | number | null;
  /** At most one extension, of at most two months, told to the subject within the first period (EU only). */
  extendable: boolean;
  source: string;
  sourceStatus: 'checked' | 'secondary';
  /** A refusal must give reasons (and how to complain or sue). */
  refusalNeedsReasons: boolean;
}

export const REQUEST_CLOCK_RULES: Record<RequestClockKind, RequestClockRule> = {
  // GDPR Art. 12(3): "without undue delay and in any event within one month of receipt … may be extended by two
  // further months where necessary … The controller shall inform the data subject of any such extension within one
  // month of receipt of the request, together with the reasons for the delay." Checked.
  'gdpr-art12': {
    kind: 'gdpr-art12',
    jurisdiction: 'EU',
    window: 'one-month',
    extendable: true,
    source: 'GDPR Art. 12(3)',
    sourceStatus: 'checked',
    refusalNeedsReasons: true,
  },
  // 征信业管理条例 Art. 25: the objection is marked, checked and answered in writing within 20 days. Checked.
  'cn-credit-objection': {
    kind: 'cn-credit-objection',
    jurisdiction: 'CN',
    window: 20 * DAY,
    extendable: false,
    source: '征信业管理条例 Art. 25',
    sourceStatus: 'checked',
    refusalNeedsReasons: true,
  },
  // 征信业管理条例 Art. 26: a complaint is handled and answered within 30 days. Checked.
  'cn-credit-complaint': {
    kind: 'cn-credit-complaint',
    jurisdiction: 'CN',
    window: 30 * DAY,
    extendable: false,
    source: '征信业管理条例 Art. 26',
    sourceStatus: 'checked',
    refusalNeedsReasons: true,
  },
  // PIPL Art. 50 sets no figure (a convenient mechanism; a refusal gives reasons). The default, 30 days, follows
  // GB/T 35273-2020 §8.7 c) (answer within 30 days or the period the law sets); a national standard, so secondary
  // and configurable (CUSTODIAN_CN_REQUEST_WINDOW).
  'cn-request': {
    kind: 'cn-request',
    jurisdiction: 'CN',
    window: null,
    extendable: false,
    source: 'PIPL Art. 50; default window GB/T 35273-2020 §8.7 c)',
    sourceStatus: 'secondary',
    refusalNeedsReasons: true,
  },
};

/** The EU and EEA states (and `EU` itself): a subject there gets the GDPR clock. */
const EEA = new Set(
  'EU AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO'.split(' '),
);

/** The rule for a request: EU/EEA subjects get GDPR Art. 12(3); every other subject the CN rules. */
export const requestClockRule = (jurisdiction: string, type: RequestType): RequestClockRule => {
  if (EEA.has(jurisdiction.toUpperCase())) return REQUEST_CLOCK_RULES['gdpr-art12'];
  if (type === 'objection') return REQUEST_CLOCK_RULES['cn-credit-objection'];
  if (type === 'complaint') return REQUEST_CLOCK_RULES['cn-credit-complaint'];
  return REQUEST_CLOCK_RULES['cn-request'];
};

/** `at` plus `months` calendar months (UTC), clamped to the target month's last day (31 Jan + 1 month = 28/29 Feb). */
export const addMonths = (at: number, months: number): number => {
  const d = new Date(at);
  const target = new Date(
    Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + months, 1, d.getUTCHours(), d.getUTCMinutes(), d.getUTCSeconds()),
  );
  const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
  target.setUTCDate(Math.min(d.getUTCDate(), lastDay));
  target.setUTCMilliseconds(d.getUTCMilliseconds());
  return target.getTime();
};

/** A request's clock as it starts: times in epoch ms, every figure resolved. */
export interface RequestClock {
  kind: RequestClockKind;
  jurisdiction: 'EU' | 'CN';
  source: string;
  sourceStatus: 'checked' | 'secondary';
  receivedAt: number;
  /** The first period (one month, 20 days …). */
  windowMs: number;
  /** The most an extension may add (two months for GDPR; 0 where none is allowed). */
  maxExtensionMs: number;
  /** An unverified request expires this long after receipt. */
  verifyWithinMs: number;
  overridden: boolean;
}

export interface RequestClockOptions {
  /** Per-request overrides (tests pass seconds). */
  windowMs?: number;
  maxExtensionMs?: number;
  verifyWithinMs?: number;
  /** The deployment's window for CN requests without a figure of their own. */
  cnDefaultMs: number;
}

/**
 * The clock from the rule. Without overrides the EU window is one calendar month and the extension two further
 * months; with a window override the extension may add twice the window. Unverified requests expire at half the
 * window (a product choice: the other half is left to work the case).
 */
export const requestClock = (
  jurisdiction: string,
  type: RequestType,
  receivedAt: number,
  o: RequestClockOptions,
): RequestClock => {
  const rule = requestClockRule(jurisdiction, type);
  const base =
    rule.window === 'one-month'
      ? addMonths(receivedAt, 1) - receivedAt
      : rule.window === null
        ? o.cnDefaultMs
        : rule.window;
  const windowMs = o.windowMs ?? base;
  const maxExtensionMs = !rule.extendable
    ? 0
    : (o.maxExtensionMs ??
      (o.windowMs === undefined ? addMonths(receivedAt + windowMs, 2) - (receivedAt + windowMs) : 2 * windowMs));
  return {
    kind: rule.kind,
    jurisdiction: rule.jurisdiction,
    source: rule.source,
    sourceStatus: rule.sourceStatus,
    receivedAt,
    windowMs,
    maxExtensionMs,
    verifyWithinMs: o.verifyWithinMs ?? Math.round(windowMs / 2),
    overridden: o.windowMs !== undefined || o.maxExtensionMs !== undefined,
  };
};
