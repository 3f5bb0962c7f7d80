import { z } from 'zod';
import { StorableText } from './text';

/**
 * On-call rotations: an ordered list of responders handing off at an interval from a start time in a named
 * IANA time zone, plus overrides (someone covers from/to). Day and week handoffs keep their local wall-clock
 * time across DST changes (a daily 09:00 handoff stays at 09:00: that day's shift lasts 23 or 25 hours, no
 * gap, no overlap, nobody skipped — grafana/oncall#5455 lost an hour at the spring change); hour handoffs
 * count elapsed hours, so each shift lasts exactly its hours and the local handoff time moves with DST.
 * Zone arithmetic uses Intl.DateTimeFormat (the runtime's ICU data), no library.
 */

const HOUR = 3_600_000;
const DAY = 86_400_000;

const formatters = new Map<string, Intl.DateTimeFormat>();
const formatter = (timeZone: string): Intl.DateTimeFormat => {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    });
    formatters.set(timeZone, f);
  }
  return f;
};

/** The zone's canonical name, or undefined when the runtime does not know it. */
export const canonicalTimeZone = (name: string): string | undefined => {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
};

/**
 * A wall-clock reading as milliseconds on a UTC-like axis ("wall ms"): `Date.UTC` of the local fields.
 * Wall ms are never instants; `wallToInstant` turns them into one in a given zone.
 */
export const instantToWall = (timeZone: string, instant: number): number => {
  const whole = Math.floor(instant / 1000) * 1000;
  const parts: Record<string, number> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(whole)))
    if (p.type !== 'literal') parts[p.type] = Number(p.value);
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return wall + (instant - whole);
};

/** The zone's UTC offset at an instant, in milliseconds (east positive). */
export const offsetAt = (timeZone: string, instant: number): number => instantToWall(timeZone, instant) - instant;

/**
 * The instant a wall-clock reading names in the zone. A reading the zone repeats (the autumn overlap) takes its
 * first occurrence; one the zone skips (the spring gap) is moved forward by the gap, like Temporal's and
 * java.time's "compatible" rule (02:30 on a 02:00→03:00 spring change is 03:30).
 */
export const wallToInstant = (timeZone: string, wall: number): number => {
  const before = offsetAt(timeZone, wall - DAY);
  const after = offsetAt(timeZone, wall + DAY);
  const candidates = [wall - before, wall - after].filter((t) => instantToWall(timeZone, t) === wall);
  if (candidates.length > 0) return Math.min(...candidates);
  // In a gap: read with the offset in force before it, which lands after the gap.
  return wall - before;
};

/** `2025-03-01T09:00` or `2025-03-01T09:00:00`: a local date and time, no offset. */
const LOCAL_DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2})(?::(\d{2}))?$/;

/** Wall ms of a local date-time string, or undefined when it is not a real calendar date and time. */
export const parseLocalDateTime = (text: string): number | undefined => {
  const m = LOCAL_DATE_TIME.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map((v) => Number(v ?? 0)) as number[];
  const wall = Date.UTC(year!, month! - 1, day!, hour!, minute!, second!);
  const d = new Date(wall);
  if (d.getUTCFullYear() !== year || d.getUTCMonth() !== month! - 1 || d.getUTCDate() !== day) return undefined;
  if (hour! > 23 || minute! > 59 || second! > 59) return undefined;
  return wall;
};

export const HANDOFF_UNITS = ['hours', 'days', 'weeks'] as const;
export type HandoffUnit = (typeof HANDOFF_UNITS)[number];

const UserId = z.uuid().transform((id) => id.toLowerCase());
const Instant = z.iso.datetime({ offset: true }).transform((t) => new Date(t).getTime());

export const OncallOverride = z
  .object({
    userId: UserId,
    from: Instant,
    to: Instant,
  })
  .strict()
  .refine((o) => o.to > o.from, { error: 'must end after it starts', path: ['to'] });
export type OncallOverride = z.infer<typeof OncallOverride>;

export const OncallSchedule = z
  .object({
    name: StorableText(1, 200),
    /** An IANA zone name (`Asia/Shanghai`, `Europe/Berlin`); stored in its canonical spelling. */
    timeZone: z
      .string()
      .max(64)
      .transform((name, ctx) => {
        const zone = canonicalTimeZone(name);
        if (!zone) {
          ctx.addIssue({ code: 'custom', message: 'must be an IANA time zone name, e.g. Asia/Shanghai' });
          return z.NEVER;
        }
        return zone;
      }),
    /** The first handoff, as a local date and time in the zone (`2025-03-03T09:00`). */
    start: z.string().refine((t) => parseLocalDateTime(t) !== undefined, {
      error: 'must be a local date and time, YYYY-MM-DDTHH:MM[:SS], without an offset',
    }),
    handoff: z
      .object({
        every: z.number().int().min(1).max(366),
        unit: z.enum(HANDOFF_UNITS),
      })
      .strict(),
    /** In order: the first takes the shift that starts at `start`, the next the one after, and round again. */
    responders: z.array(UserId).min(1).max(100),
    overrides: z.array(OncallOverride).max(500).default([]),
  })
  .strict();
export type OncallSchedule = z.infer<typeof OncallSchedule>;
export type OncallScheduleInput = z.input<typeof OncallSchedule>;

export interface OnCall {
  userId: string;
  source: 'rotation' | 'override';
  /** The rotation shift's number (0 from `start`) and its responder's place in the list. */
  shift?: number;
  responderIndex?: number;
  /** This stretch of cover: from when, until the next handoff or override edge (epoch ms). */
  from: number;
  until: number;
}

/** The start instant of rotation shift `k` (0 is `start`). */
export const shiftStart = (s: Pick<OncallSchedule, 'timeZone' | 'start' | 'handoff'>, k: number): number => {
  const startWall = parseLocalDateTime(s.start)!;
  const { every, unit } = s.handoff;
  if (unit === 'hours') return wallToInstant(s.timeZone, startWall) + k * every * HOUR;
  const days = unit === 'weeks' ? every * 7 : every;
  return wallToInstant(s.timeZone, startWall + k * days * DAY);
};

/** The rotation shift covering `at`, or undefined before the first handoff. */
export const shiftAt = (
  s: Pick<OncallSchedule, 'timeZone' | 'start' | 'handoff'>,
  at: number,
): { shift: number; from: number; until: number } | undefined => {
  const first = shiftStart(s, 0);
  if (at < first) return undefined;
  const { every, unit } = s.handoff;
  const length = (unit === 'hours' ? HOUR : unit === 'days' ? DAY : 7 * DAY) * every;
  // An estimate from elapsed time; wall-clock shifts differ from it by at most the DST shifts, so walk to fit.
  let k = Math.max(0, Math.floor((at - first) / length));
  while (k > 0 && shiftStart(s, k) > at) k--;
  while (shiftStart(s, k + 1) <= at) k++;
  return { shift: k, from: shiftStart(s, k), until: shiftStart(s, k + 1) };
};

/**
 * Who is on call at `at`: the latest-listed override covering it, else the rotation's responder for the shift
 * (responders in turn). Undefined before the rotation starts when no override covers the time.
 */
export const whoIsOnCall = (s: OncallSchedule, at: number): OnCall | undefined => {
  const overrides = s.overrides;
  for (let i = overrides.length - 1; i >= 0; i--) {
    const o = overrides[i]!;
    if (o.from <= at && at < o.to) {
      // Cover ends at its own end or where a later-listed override takes over.
      const cut = overrides.slice(i + 1).filter((l) => l.from > at && l.from < o.to);
      return { userId: o.userId, source: 'override', from: o.from, until: Math.min(o.to, ...cut.map((l) => l.from)) };
    }
  }
  const shift = shiftAt(s, at);
  if (!shift) return undefined;
  const responderIndex = shift.shift % s.responders.length;
  const nextOverride = overrides.filter((o) => o.from > at && o.from < shift.until).map((o) => o.from);
  return {
    userId: s.responders[responderIndex]!,
    source: 'rotation',
    shift: shift.shift,
    responderIndex,
    from: shift.from,
    until: Math.min(shift.until, ...nextOverride),
  };
};

/** Every handoff instant in [from, to): the shift boundaries a rotation produces (for tests and previews). */
export const handoffsBetween = (
  s: Pick<OncallSchedule, 'timeZone' | 'start' | 'handoff'>,
  from: number,
  to: number,
): number[] => {
  const out: number[] = [];
  const first = shiftAt(s, from);
  for (let k = first ? first.shift + 1 : 0; ; k++) {
    const t = shiftStart(s, k);
    if (t >= to) break;
    if (t >= from) out.push(t);
  }
  return out;
};
