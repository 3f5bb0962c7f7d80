import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bearer, readJson } from '../helpers/api';
import { pagesOf, seedPolicy, seedStaff, user } from '../helpers/incidents';
import { startTestApp } from '../helpers/running-app';
import type { TestApp } from '../helpers/services';
import { waitFor } from '../helpers/wait';
import { request, signIn } from './session';

/** An incident worked from open to closed through the console's forms, the same actions as the API. */
let api: TestApp;
let stop: () => Promise<void>;
beforeAll(async () => {
  ({ api, stop } = await startTestApp());
}, 120_000);
afterAll(() => stop?.());

interface Incident {
  status: string;
  regulatorNotifications: { deadline: string; authority: string; reference: string; late: boolean }[];
  timeline: { type: string; actor: string; details: Record<string, unknown>; text: string | null }[];
  resolutionSummary: string | null;
}

describe('console: an incident from acknowledgement to postmortem', () => {
  it('acknowledges, sets a status with a note, records the regulator notification, resolves and closes', async () => {
    const { db } = api.database;
    const owner = await seedStaff(db, api.keyring, 'owner');
    const responder = await seedStaff(db, api.keyring, 'responder');
    const policy = await seedPolicy(db, [{ targets: [user(responder.userId)], waitSeconds: 600 }]);
    const opened = await api.app.request('/v1/incidents', {
      method: 'POST',
      headers: bearer(owner.key),
      body: JSON.stringify({
        title: 'Mis-sent statement batch',
        severity: 'sev2',
        category: 'data-breach',
        escalationPolicyId: policy.id,
        personalData: true,
        jurisdictions: ['EU'],
        regulatory: { windows: { 'gdpr-art33': '1 hour' } },
      }),
    });
    const { id } = await readJson<{ id: string }>(opened);
    await waitFor(async () => ((await pagesOf(db, id)).length ? true : undefined), 'the first page');
    const get = async () =>
      readJson<Incident>(await api.app.request(`/v1/incidents/${id}`, { headers: bearer(owner.key) }));

    const r = await signIn(api, responder.key);
    const page = async () => (await request(api, r.jar, `/console/incidents/${id}`)).text();
    const post = (action: string, form: Record<string, string> = {}) =>
      request(api, r.jar, `/console/incidents/${id}/${action}`, { form: { _csrf: r.csrf, ...form } });

    let html = await page();
    expect(html).toContain('Acknowledge');
    expect(html).toContain('<option value="gdpr-art33">');
    expect(html).not.toContain('Record postmortem and close');

    expect((await post('ack')).headers.get('location')).toBe(`/console/incidents/${id}?done=acked`);
    expect((await post('status', { status: 'investigating', note: 'scope: 40 letters' })).status).toBe(303);
    const missing = await post('regulator-notifications', { deadline: 'gdpr-art33', authority: 'CNIL' });
    expect(missing.status).toBe(400);
    expect(await missing.text()).toContain('reference');
    const notified = await post('regulator-notifications', {
      deadline: 'gdpr-art33',
      authority: 'CNIL',
      reference: 'CNIL-2026-0007',
      reasonsForDelay: '',
    });
    expect(notified.status).toBe(303);
    expect((await get()).regulatorNotifications).toEqual([
      expect.objectContaining({ deadline: 'gdpr-art33', authority: 'CNIL', reference: 'CNIL-2026-0007', late: false }),
    ]);

    expect((await post('resolve', { summary: 'letters recalled, printer mapping fixed' })).status).toBe(303);
    await waitFor(async () => ((await get()).status === 'resolved' ? true : undefined), 'resolved');
    html = await page();
    expect(html).toContain('Record postmortem and close');
    expect(html).not.toContain('>Resolve<');

    const pm = { impact: '40 letters', timeline: 'sent 09:00, recalled 11:00', rootCause: 'mapping', actions: 'test' };
    expect((await post('postmortem', pm)).status).toBe(303);
    const closed = await waitFor(async () => {
      const i = await get();
      return i.status === 'closed' ? i : undefined;
    }, 'closed');
    expect(closed.resolutionSummary).toBe('letters recalled, printer mapping fixed');
    expect(closed.timeline.find((e) => e.type === 'acknowledged')?.details).toMatchObject({ method: 'console' });
    const byResponder = closed.timeline.filter((e) => e.actor === `user:${responder.userId}`).map((e) => e.type);
    expect(byResponder).toEqual(expect.arrayContaining(['acknowledged', 'status-changed', 'resolved', 'postmortem']));
    expect(closed.timeline.find((e) => e.type === 'status-changed')?.text).toBe('scope: 40 letters');

    // Closed: no forms, and a stale form is refused with the incident's state.
    expect(await page()).not.toContain('<form method="post" action="/console/incidents');
    const late = await post('notes', { text: 'too late' });
    expect(late.status).toBe(409);
    expect(await late.text()).toContain('incident-closed');
  }, 120_000);
});
