import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  handoffsBetween,
  instantToWall,
  OncallSchedule,
  parseLocalDateTime,
  shiftAt,
  shiftStart,
  wallToInstant,
  whoIsOnCall,
  type OncallScheduleInput,
} from '../../domain/oncall';

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

/** Zones with DST (both hemispheres, a 30-minute one, a 2-hour one) and some without. */
const ZONES = [
  'Europe/Berlin',
  'Europe/London',
  'America/New_York',
  'America/Chicago',
  'America/Santiago',
  'Australia/Sydney',
  'Australia/Lord_Howe',
  'Pacific/Auckland',
  'Antarctica/Troll',
  'Asia/Shanghai',
  'Asia/Kolkata',
  'UTC',
];
const responders = ['a', 'b', 'c', 'd', 'e'].map((c) => `${c.repeat(8)}-0000-4000-8000-000000000000`);

const schedule = (o: Partial<OncallScheduleInput> = {}) =>
  OncallSchedule.parse({
    name: 'primary',
    timeZone: 'Europe/Berlin',
    start: '2025-03-01T09:00',
    handoff: { every: 1, unit: 'days' },
    responders: responders.slice(0, 3),
    ...o,
  });

const localTime = (zone: string, instant: number) => new Date(instantToWall(zone, instant)).toISOString().slice(0, 19);

const arbSchedule = fc.record({
  timeZone: fc.constantFrom(...ZONES),
  // 2014–2038: clear of the 2011 Samoa/Tokelau day-long skips, which no handoff rule can honour.
  startDay: fc.integer({ min: 0, max: 365 * 24 }),
  hour: fc.integer({ min: 0, max: 23 }),
  minute: fc.constantFrom(0, 15, 30, 45),
  every: fc.integer({ min: 1, max: 3 }),
  unit: fc.constantFrom('hours' as const, 'days' as const, 'weeks' as const),
  count: fc.integer({ min: 1, max: 5 }),
});
const build = (a: {
  timeZone: string;
  startDay: number;
  hour: number;
  minute: number;
  every: number;
  unit: 'hours' | 'days' | 'weeks';
  count: number;
}) => {
  const date = new Date(Date.UTC(2014, 0, 1) + a.startDay * DAY).toISOString().slice(0, 10);
  const time = `${String(a.hour).padStart(2, '0')}:${String(a.minute).padStart(2, '0')}`;
  return schedule({
    timeZone: a.timeZone,
    start: `${date}T${time}`,
    handoff: { every: a.every, unit: a.unit },
    responders: responders.slice(0, a.count),
  });
};

describe('zone arithmetic', () => {
  it('resolves a skipped local time forward by the gap and a repeated one to its first occurrence', () => {
    // Berlin: 2025-03-30 02:00 CET → 03:00 CEST; 2025-10-26 03:00 CEST → 02:00 CET.
    expect(new Date(wallToInstant('Europe/Berlin', parseLocalDateTime('2025-03-30T02:30')!)).toISOString()).toBe(
      '2025-03-30T01:30:00.000Z',
    );
    expect(new Date(wallToInstant('Europe/Berlin', parseLocalDateTime('2025-10-26T02:30')!)).toISOString()).toBe(
      '2025-10-26T00:30:00.000Z',
    );
    expect(new Date(wallToInstant('Asia/Shanghai', parseLocalDateTime('2025-06-01T09:00')!)).toISOString()).toBe(
      '2025-06-01T01:00:00.000Z',
    );
  });

  it('round-trips every instant through its wall-clock reading where the reading is unique', () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.integer({ min: Date.UTC(2014, 0, 1), max: Date.UTC(2038, 0, 1) }),
        (zone, t) => {
          const instant = Math.floor(t / 1000) * 1000;
          const back = wallToInstant(zone, instantToWall(zone, instant));
          // In an overlap the first occurrence is chosen: never later than the instant, at most the overlap earlier.
          expect(back).toBeLessThanOrEqual(instant);
          expect(instant - back).toBeLessThanOrEqual(2 * HOUR);
          expect(instantToWall(zone, back)).toBe(instantToWall(zone, instant));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('refuses unknown zones and impossible local times', () => {
    expect(OncallSchedule.safeParse({ ...schedule(), timeZone: 'Mars/Olympus' }).success).toBe(false);
    expect(OncallSchedule.safeParse({ ...schedule(), start: '2025-02-30T09:00' }).success).toBe(false);
    expect(OncallSchedule.safeParse({ ...schedule(), start: '2025-03-01T09:00+01:00' }).success).toBe(false);
    expect(schedule({ timeZone: 'asia/shanghai' }).timeZone).toBe('Asia/Shanghai');
  });
});

describe('rotation across DST', () => {
  it('a daily 09:00 handoff stays at 09:00 local across both Berlin changes (grafana/oncall#5455)', () => {
    const s = schedule();
    const from = Date.parse('2025-03-27T00:00:00Z');
    const to = Date.parse('2025-11-01T00:00:00Z');
    const handoffs = handoffsBetween(s, from, to);
    expect(handoffs.length).toBe(219);
    for (const h of handoffs) expect(localTime('Europe/Berlin', h).slice(11)).toBe('09:00:00');
    // The shift over the spring change lasts 23 h, the one over the autumn change 25 h: no gap, nobody skipped.
    const spring = shiftAt(s, Date.parse('2025-03-30T06:00:00Z'))!;
    expect(spring.until - spring.from).toBe(23 * HOUR);
    const autumn = shiftAt(s, Date.parse('2025-10-26T06:00:00Z'))!;
    expect(autumn.until - autumn.from).toBe(25 * HOUR);
    expect(whoIsOnCall(s, Date.parse('2025-03-30T06:59:59Z'))!.shift).toBe(28);
    expect(whoIsOnCall(s, Date.parse('2025-03-30T07:00:00Z'))!.shift).toBe(29);
    expect(whoIsOnCall(s, Date.parse('2025-03-30T07:00:00Z'))!.userId).toBe(responders[29 % 3]);
  });

  it('an hourly rotation keeps exact shift lengths; the local handoff time moves with the change', () => {
    const s = schedule({ handoff: { every: 12, unit: 'hours' }, start: '2025-03-29T09:00' });
    const [a, b, c] = handoffsBetween(s, Date.parse('2025-03-29T12:00:00Z'), Date.parse('2025-03-31T00:00:00Z'));
    expect(b! - a!).toBe(12 * HOUR);
    expect(c! - b!).toBe(12 * HOUR);
    expect(localTime('Europe/Berlin', a!).slice(11)).toBe('21:00:00');
    expect(localTime('Europe/Berlin', c!).slice(11)).toBe('22:00:00');
  });

  it('every instant after the start is covered by the responder whose turn it is; shifts are never empty', () => {
    fc.assert(
      fc.property(arbSchedule, fc.integer({ min: 0, max: 400 * DAY }), (a, after) => {
        const s = build(a);
        const start = shiftStart(s, 0);
        const at = start + after;
        const on = whoIsOnCall(s, at)!;
        expect(on).toBeDefined();
        expect(on.from).toBeLessThanOrEqual(at);
        expect(on.until).toBeGreaterThan(at);
        expect(on.userId).toBe(s.responders[on.shift! % s.responders.length]);
        // The next shift starts where this one ends and belongs to the next responder: none skipped.
        const next = whoIsOnCall(s, on.until)!;
        expect(next.shift).toBe(on.shift! + 1);
        expect(next.from).toBe(on.until);
        expect(whoIsOnCall(s, on.until - 1)!.shift).toBe(on.shift);
      }),
      { numRuns: 1500 },
    );
  });

  it('day and week handoffs keep the start’s local time wherever it exists; lengths are within the DST shift', () => {
    fc.assert(
      fc.property(
        arbSchedule.filter((a) => a.unit !== 'hours'),
        fc.integer({ min: 0, max: 200 }),
        (a, k) => {
          const s = build(a);
          const length = (a.unit === 'weeks' ? 7 : 1) * a.every * DAY;
          const from = shiftStart(s, k);
          const until = shiftStart(s, k + 1);
          expect(Math.abs(until - from - length)).toBeLessThanOrEqual(2 * HOUR);
          const wanted = s.start.slice(11, 16);
          const wall = parseLocalDateTime(s.start)! + k * length;
          // Where the local time exists that day it is the handoff time exactly.
          if (instantToWall(s.timeZone, wallToInstant(s.timeZone, wall)) === wall)
            expect(localTime(s.timeZone, from).slice(11, 16)).toBe(wanted);
        },
      ),
      { numRuns: 1500 },
    );
  });

  it('hour handoffs last exactly their hours', () => {
    fc.assert(
      fc.property(
        arbSchedule.filter((a) => a.unit === 'hours'),
        fc.integer({ min: 0, max: 2000 }),
        (a, k) => {
          const s = build(a);
          expect(shiftStart(s, k + 1) - shiftStart(s, k)).toBe(a.every * HOUR);
        },
      ),
    );
  });
});

describe('overrides', () => {
  it('an override covers its window, the rotation resumes after it, and the later-listed override wins', () => {
    const s = schedule({
      overrides: [
        { userId: responders[3]!, from: '2025-03-05T10:00:00Z', to: '2025-03-05T14:00:00Z' },
        { userId: responders[4]!, from: '2025-03-05T12:00:00Z', to: '2025-03-05T13:00:00Z' },
      ],
    });
    expect(whoIsOnCall(s, Date.parse('2025-03-05T09:59:59Z'))).toMatchObject({
      source: 'rotation',
      until: Date.parse('2025-03-05T10:00:00Z'),
    });
    expect(whoIsOnCall(s, Date.parse('2025-03-05T10:00:00Z'))).toMatchObject({
      userId: responders[3],
      source: 'override',
      until: Date.parse('2025-03-05T12:00:00Z'),
    });
    expect(whoIsOnCall(s, Date.parse('2025-03-05T12:30:00Z'))!.userId).toBe(responders[4]);
    expect(whoIsOnCall(s, Date.parse('2025-03-05T13:30:00Z'))!.userId).toBe(responders[3]);
    expect(whoIsOnCall(s, Date.parse('2025-03-05T14:00:00Z'))!.source).toBe('rotation');
  });

  it('whoever an override names is on call inside it; outside, the rotation is untouched', () => {
    fc.assert(
      fc.property(
        arbSchedule,
        fc.integer({ min: 0, max: 100 * DAY }),
        fc.integer({ min: 1, max: 3 * DAY }),
        fc.integer({ min: -4 * DAY, max: 4 * DAY }),
        (a, offset, length, probe) => {
          const base = build(a);
          const from = shiftStart(base, 0) + offset;
          const override = {
            userId: responders[4]!,
            from: new Date(from).toISOString(),
            to: new Date(from + length).toISOString(),
          };
          const s = OncallSchedule.parse({ ...base, overrides: [override] });
          const at = from + probe;
          const inside = at >= from && at < from + length;
          const on = whoIsOnCall(s, at);
          if (inside) expect(on).toMatchObject({ userId: responders[4], source: 'override' });
          else expect(on?.userId).toBe(whoIsOnCall(base, at)?.userId);
        },
      ),
    );
  });

  it('nobody is on call before the rotation starts unless an override says so', () => {
    const s = schedule();
    expect(whoIsOnCall(s, Date.parse('2025-03-01T07:59:59Z'))).toBeUndefined();
    expect(whoIsOnCall(s, Date.parse('2025-03-01T08:00:00Z'))!.userId).toBe(responders[0]);
  });
});
