/**
 * Regulatory deadlines for incidents, as data with their sources (../shared/REGULATIONS.md, "Incidents and
 * breaches"). "checked" figures were read in the text or an official reprint; "secondary" ones only in a
 * translation or summary. None of this is legal advice: every window is overridable per incident and the
 * CN operator type and grade thresholds are configuration.
 */

export const CLOCK_JURISDICTIONS = ['EU', 'CN'] as const;
export type ClockJurisdiction = (typeof CLOCK_JURISDICTIONS)[number];

/**
 * CN incident grades (国家网络安全事件报告管理办法, annex): 一般, 较大, 重大, 特别重大. Reports are owed for
 * 较大 and above (Art. 4).
 */
export const CN_GRADES = ['general', 'relatively-major', 'major', 'especially-major'] as const;
export type CnGrade = (typeof CN_GRADES)[number];
export const CN_GRADE_LABELS: Record<CnGrade, string> = {
  general: '一般',
  'relatively-major': '较大',
  major: '重大',
  'especially-major': '特别重大',
};

export type GradeThresholds = Record<Exclude<CnGrade, 'general'>, number>;

/**
 * People whose personal data leaked, from which a grade is suggested: ≥ 1 M 较大, ≥ 10 M 重大, ≥ 100 M 特别重大.
 * Source: 国家网络安全事件报告管理办法 (CAC, effective 2025-11-01), annex — secondary, so configurable.
 */
export const DEFAULT_GRADE_THRESHOLDS: GradeThresholds = {
  'relatively-major': 1_000_000,
  major: 10_000_000,
  'especially-major': 100_000_000,
};

/** The grade the affected count suggests; a responder confirms or changes it. */
export const suggestGrade = (affected: number, t: GradeThresholds = DEFAULT_GRADE_THRESHOLDS): CnGrade =>
  affected >= t['especially-major']
    ? 'especially-major'
    : affected >= t.major
      ? 'major'
      : affected >= t['relatively-major']
        ? 'relatively-major'
        : 'general';

export const gradeAtLeast = (grade: CnGrade, floor: CnGrade) => CN_GRADES.indexOf(grade) >= CN_GRADES.indexOf(floor);

/** Critical-information-infrastructure operator or any other: configured once per deployment. */
export const CN_OPERATOR_TYPES = ['cii', 'other'] as const;
export type CnOperatorType = (typeof CN_OPERATOR_TYPES)[number];

export const DEADLINE_KINDS = ['gdpr-art33', 'pipl-art57', 'cn-cac-report', 'cn-cac-summary'] as const;
export type DeadlineKind = (typeof DEADLINE_KINDS)[number];

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

export interface DeadlineRule {
  kind: DeadlineKind;
  jurisdiction: ClockJurisdiction;
  /** What is owed, and to whom. */
  duty: string;
  authority: string;
  /** From the moment of awareness, or from the end of handling (resolution). */
  from: 'awareAt' | 'resolvedAt';
  /** A figure, or "immediately" where the text gives none (then no reminders and no overdue escalation). */
  window: number | 'immediately';
  source: string;
  sourceStatus: 'checked' | 'secondary';
  /** A notification after the deadline must give the reasons for the delay. */
  lateNeedsReasons: boolean;
}

/** The rules, one per duty. The CN report's window depends on the operator type: see `cnReportWindow`. */
export const DEADLINE_RULES: Record<DeadlineKind, DeadlineRule> = {
  // GDPR Art. 33(1): "without undue delay and, where feasible, not later than 72 hours after having become
  // aware of it"; later notifications "shall be accompanied by reasons for the delay". Checked.
  'gdpr-art33': {
    kind: 'gdpr-art33',
    jurisdiction: 'EU',
    duty: 'notify the personal data breach to the supervisory authority',
    authority: 'supervisory authority (GDPR Art. 55/56)',
    from: 'awareAt',
    window: 72 * HOUR,
    source: 'GDPR Art. 33(1)',
    sourceStatus: 'checked',
    lateNeedsReasons: true,
  },
  // PIPL Art. 57: take remedial measures at once and notify the authority and individuals (types of data,
  // cause, possible harm, remedies, contact). The text gives no figure: "immediately" (立即). Secondary.
  'pipl-art57': {
    kind: 'pipl-art57',
    jurisdiction: 'CN',
    duty: 'take remedial measures and notify the personal-information protection authority and individuals',
    authority: 'departments performing personal-information protection duties',
    from: 'awareAt',
    window: 'immediately',
    source: 'PIPL Art. 57',
    sourceStatus: 'secondary',
    lateNeedsReasons: false,
  },
  // 国家网络安全事件报告管理办法 (CAC, effective 2025-11-01) Art. 4: incidents graded 较大 or above, within 1 h
  // for critical-information-infrastructure operators, within 4 h to the provincial CAC for others. Checked.
  'cn-cac-report': {
    kind: 'cn-cac-report',
    jurisdiction: 'CN',
    duty: 'report the network security incident (unit, system, discovery time, type, grade, impact, measures; Art. 7)',
    authority: 'provincial CAC (省级网信部门); for CII operators also the protecting department',
    from: 'awareAt',
    window: 4 * HOUR,
    source: '国家网络安全事件报告管理办法 Art. 4 (CAC, effective 2025-11-01)',
    sourceStatus: 'checked',
    lateNeedsReasons: false,
  },
  // Same measures, Art. 8: a summary report within 30 days after handling ends (cause, measures, harm,
  // accountability, remediation, lessons). Secondary.
  'cn-cac-summary': {
    kind: 'cn-cac-summary',
    jurisdiction: 'CN',
    duty: 'send the summary report (cause, measures, harm, accountability, remediation, lessons)',
    authority: 'provincial CAC (省级网信部门)',
    from: 'resolvedAt',
    window: 30 * DAY,
    source: '国家网络安全事件报告管理办法 Art. 8 (CAC, effective 2025-11-01)',
    sourceStatus: 'secondary',
    lateNeedsReasons: false,
  },
};

/** Art. 4: 1 h for a critical-information-infrastructure operator, 4 h for any other. */
export const cnReportWindow = (operator: CnOperatorType) => (operator === 'cii' ? 1 : 4) * HOUR;

/** Reminders at these fractions of each window (a product choice, not a legal figure). */
export const REMINDER_FRACTIONS = [0.5, 0.75, 0.9] as const;

/** What an incident's clocks are computed from (times are epoch ms). */
export interface ClockFacts {
  personalData: boolean;
  jurisdictions: readonly string[];
  awareAt: number;
  resolvedAt?: number;
  /** The confirmed grade, else the suggested one: the clock runs on the suggestion until someone confirms. */
  grade: CnGrade;
  cnOperator: CnOperatorType;
  /** Per-incident overrides of a window (ms); an override turns "immediately" into a figure. */
  windows?: Partial<Record<DeadlineKind, number>>;
}

export interface Deadline {
  kind: DeadlineKind;
  jurisdiction: ClockJurisdiction;
  duty: string;
  authority: string;
  startsAt: number;
  /** Epoch ms; for "immediately", the start (owed at once, but with no figure to be late against). */
  dueAt: number;
  windowMs: number | null;
  immediate: boolean;
  source: string;
  sourceStatus: 'checked' | 'secondary';
  lateNeedsReasons: boolean;
  overridden: boolean;
}

const deadline = (rule: DeadlineRule, startsAt: number, window: number | 'immediately', overridden: boolean) => ({
  kind: rule.kind,
  jurisdiction: rule.jurisdiction,
  duty: rule.duty,
  authority: rule.authority,
  startsAt,
  dueAt: window === 'immediately' ? startsAt : startsAt + window,
  windowMs: window === 'immediately' ? null : window,
  immediate: window === 'immediately',
  source: rule.source,
  sourceStatus: rule.sourceStatus,
  lateNeedsReasons: rule.lateNeedsReasons,
  overridden,
});

/**
 * The incident's deadlines. EU with personal data: GDPR Art. 33. CN with personal data: PIPL Art. 57. CN at a
 * grade of 较大 or above (personal data or not — the CAC measures cover every network security incident): the
 * CAC report from awareness and, once resolved, the CAC summary.
 */
export const deadlinesFor = (f: ClockFacts): Deadline[] => {
  const out: Deadline[] = [];
  const add = (kind: DeadlineKind, startsAt: number | undefined, base: number | 'immediately') => {
    if (startsAt === undefined) return;
    const override = f.windows?.[kind];
    out.push(deadline(DEADLINE_RULES[kind], startsAt, override ?? base, override !== undefined));
  };
  const has = (j: ClockJurisdiction) => f.jurisdictions.includes(j);
  if (has('EU') && f.personalData) add('gdpr-art33', f.awareAt, DEADLINE_RULES['gdpr-art33'].window);
  if (has('CN') && f.personalData) add('pipl-art57', f.awareAt, DEADLINE_RULES['pipl-art57'].window);
  if (has('CN') && gradeAtLeast(f.grade, 'relatively-major')) {
    add('cn-cac-report', f.awareAt, cnReportWindow(f.cnOperator));
    add('cn-cac-summary', f.resolvedAt, DEADLINE_RULES['cn-cac-summary'].window);
  }
  return out;
};

export interface ClockMark {
  at: number;
  /** `reminder-50`, `reminder-75`, `reminder-90`, `overdue`. */
  mark: string;
  fraction: number;
}

/** The reminders and the overdue moment of a window, in order; nothing for "immediately". */
export const clockMarks = (startsAt: number, dueAt: number, immediate = false): ClockMark[] => {
  if (immediate) return [];
  const window = dueAt - startsAt;
  return [
    ...REMINDER_FRACTIONS.map((fraction) => ({
      at: startsAt + Math.round(window * fraction),
      mark: `reminder-${Math.round(fraction * 100)}`,
      fraction,
    })),
    { at: dueAt, mark: 'overdue', fraction: 1 },
  ];
};

/** Whether a notification at `notifiedAt` is late against the deadline ("immediately" has no figure to miss). */
export const isLate = (d: Pick<Deadline, 'immediate' | 'dueAt'>, notifiedAt: number) =>
  !d.immediate && notifiedAt > d.dueAt;
