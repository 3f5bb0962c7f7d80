import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  acknowledge,
  addNote,
  close,
  exhaust,
  IncidentConflict,
  IncidentRequest,
  INCIDENT_STATUSES,
  reescalate,
  resolve,
  setStatus,
  splitAckToken,
  ackTokenBody,
  TRANSITIONS,
  type IncidentActor,
  type IncidentState,
  type IncidentStatus,
} from '../../domain/incident';

const by: IncidentActor = { actor: 'user:r', userId: 'r', role: 'responder', method: 'api' };
const state = (status: IncidentStatus = 'triggered'): IncidentState => ({
  incidentId: 'i',
  status,
  late: false,
  round: 1,
  lastUpdateAt: 0,
  affectedCount: 0,
  grade: { suggested: 'general' },
  deadlines: [],
  postmortemFired: [],
  events: 0,
});

type Move = (s: IncidentState) => IncidentState;
const MOVES: Record<string, { to: IncidentStatus; move: Move }> = {
  ack: { to: 'acknowledged', move: (s) => acknowledge(s, by, 1) },
  exhaust: { to: 'unacknowledged', move: exhaust },
  reescalate: { to: 'triggered', move: reescalate },
  investigate: { to: 'investigating', move: (s) => setStatus(s, 'investigating', 1) },
  contain: { to: 'contained', move: (s) => setStatus(s, 'contained', 1) },
  resolve: { to: 'resolved', move: (s) => resolve(s, 1, 10) },
  close: { to: 'closed', move: (s) => close(s, 1) },
};

const code = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(IncidentConflict);
    return (err as IncidentConflict).code;
  }
  return undefined;
};

describe('incident transitions', () => {
  it('the lifecycle: triggered → acknowledged → investigating → contained → resolved → closed', () => {
    let s = state();
    for (const m of ['ack', 'investigate', 'contain', 'resolve', 'close']) s = MOVES[m]!.move(s);
    expect(s).toMatchObject({
      status: 'closed',
      acknowledgedBy: 'user:r',
      resolvedAt: 1,
      postmortemDueAt: 11,
      closedAt: 1,
    });
  });

  it('every move is legal exactly where the table says, and a refusal is incident-<status>', () => {
    fc.assert(
      fc.property(fc.constantFrom(...INCIDENT_STATUSES), fc.constantFrom(...Object.keys(MOVES)), (from, name) => {
        const { to, move } = MOVES[name]!;
        const legal = TRANSITIONS[from].includes(to);
        const refused = code(() => move(state(from)));
        if (name === 'ack' && !legal && from !== 'closed') {
          // A second acknowledgement is harmless: nothing changes.
          expect(refused).toBeUndefined();
          expect(move(state(from))).toEqual(state(from));
        } else if (legal) {
          expect(refused).toBeUndefined();
          expect(move(state(from)).status).toBe(to);
        } else {
          expect(refused).toMatch(from === to ? `incident-${to}` : `incident-${from}`);
        }
      }),
    );
  });

  it('keeps the first acknowledgement; re-escalation clears it and starts a new round', () => {
    const first = acknowledge(state(), by, 5);
    const again = acknowledge(first, { ...by, actor: 'user:other' }, 9);
    expect(again).toEqual(first);
    const re = reescalate(first);
    expect(re).toMatchObject({ status: 'triggered', round: 2, acknowledgedBy: undefined });
    expect(code(() => reescalate(setStatus(first, 'investigating', 6)))).toBe('incident-investigating');
  });

  it('notes are taken until closed and count as an update', () => {
    expect(addNote(state('investigating'), 42).lastUpdateAt).toBe(42);
    expect(code(() => addNote(state('closed'), 1))).toBe('incident-closed');
  });
});

describe('incident request', () => {
  it('defaults awareness, jurisdictions and the postmortem window; refuses unknown fields and jurisdictions', () => {
    const parsed = IncidentRequest.parse({
      title: 'Leaked export',
      severity: 'sev1',
      category: 'data-breach',
      escalationPolicyId: '6f1c2a47-0000-4000-8000-000000000000',
    });
    expect(parsed).toMatchObject({ personalData: false, jurisdictions: [], postmortemWithin: 5 * 86_400_000 });
    expect(IncidentRequest.safeParse({ ...parsed, jurisdictions: ['US'] }).success).toBe(false);
    expect(IncidentRequest.safeParse({ ...parsed, jurisdictions: ['EU', 'EU'] }).success).toBe(false);
    expect(IncidentRequest.safeParse({ ...parsed, priority: 1 }).success).toBe(false);
    const windows = IncidentRequest.parse({
      ...parsed,
      postmortemWithin: 'P5D',
      regulatory: { windows: { 'gdpr-art33': '10 seconds' } },
    });
    expect(windows.regulatory.windows).toEqual({ 'gdpr-art33': 10_000 });
  });
});

describe('ack token format', () => {
  it('round-trips and refuses anything else', () => {
    const body = ackTokenBody({ pageId: 'ABCDEF01-0000-4000-8000-000000000000', expiresAt: 1_700_000_000_999 });
    const token = `${body}.${'A'.repeat(43)}`;
    expect(splitAckToken(token)?.claims).toEqual({
      pageId: 'abcdef01-0000-4000-8000-000000000000',
      expiresAt: 1_700_000_000_000,
    });
    expect(splitAckToken(`${body}.${'A'.repeat(42)}`)).toBeUndefined();
    expect(splitAckToken(`x${token}`)).toBeUndefined();
  });
});
