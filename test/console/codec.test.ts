import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupWorkflowId } from '../../domain/ids';
import { bearer, readJson, seedPrincipal, type Problem } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';
import { signIn } from './session';

/** The Temporal remote codec at /codec: a real workflow's encrypted input, read back as JSON. */
let api: TestApp;
let admin: string;
let auditor: string;
let owner: string;
const UI = 'http://localhost:8233';

beforeAll(async () => {
  api = await createTestApp();
  const { db } = api.database;
  admin = (await seedPrincipal(db, 'admin')).key;
  auditor = (await seedPrincipal(db, 'auditor')).key;
  owner = (await seedPrincipal(db, 'owner')).key;
}, 120_000);
afterAll(async () => {
  await api?.close();
});

interface WirePayload {
  metadata: Record<string, string>;
  data: string;
}
const b64 = (bytes: Uint8Array | null | undefined) => Buffer.from(bytes ?? new Uint8Array()).toString('base64');
const text = (base64: string | undefined) => Buffer.from(base64 ?? '', 'base64').toString('utf8');
const codec = (path: 'decode' | 'encode', body: unknown, headers: Record<string, string>) =>
  api.app.request(`/codec/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify(body),
  });

/** Starts a backup through the API (no worker: the start is enough) and returns its first event's raw input. */
const realInput = async () => {
  const res = await api.app.request('/v1/backups', { method: 'POST', headers: bearer(owner), body: '{}' });
  expect(res.status).toBe(202);
  const { id } = await readJson<{ id: string }>(res);
  const workflowId = backupWorkflowId(id);
  const history = await api.temporal.workflowService.getWorkflowExecutionHistory({
    namespace: api.config.TEMPORAL_NAMESPACE,
    execution: { workflowId },
  });
  await api.temporal.workflow.getHandle(workflowId).terminate('codec test done');
  const payloads = history.history!.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads!;
  const wire: WirePayload[] = payloads.map((p) => ({
    metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([k, v]) => [k, b64(v)])),
    data: b64(p.data),
  }));
  return { id, wire };
};

describe('POST /codec/decode and /codec/encode', () => {
  it('decodes a real workflow input to its JSON for an admin (bearer) and an auditor (console session)', async () => {
    const { id, wire } = await realInput();
    expect(text(wire[0]!.metadata.encoding)).toBe('binary/encrypted');
    expect(text(wire[0]!.data)).not.toContain(id);

    const res = await codec(
      'decode',
      { payloads: wire },
      { authorization: `Bearer ${admin}`, 'x-namespace': 'default' },
    );
    expect(res.status).toBe(200);
    const { payloads } = await readJson<{ payloads: WirePayload[] }>(res);
    expect(text(payloads[0]!.metadata.encoding)).toBe('json/plain');
    expect(JSON.parse(text(payloads[0]!.data))).toMatchObject({ backupId: id });

    const session = await signIn(api, auditor);
    const cookie = [...session.jar].map(([k, v]) => `${k}=${v}`).join('; ');
    const bySession = await codec('decode', { payloads: wire }, { cookie, origin: UI });
    expect(bySession.status).toBe(200);
    expect(bySession.headers.get('access-control-allow-origin')).toBe(UI);
    expect(bySession.headers.get('access-control-allow-credentials')).toBe('true');
  });

  it('encodes, and decodes what it encoded; an unencrypted payload passes through decode unchanged', async () => {
    const plain = { metadata: { encoding: b64(Buffer.from('json/plain')) }, data: b64(Buffer.from('{"n":1}')) };
    const encoded = await readJson<{ payloads: WirePayload[] }>(
      await codec('encode', { payloads: [plain] }, { authorization: `Bearer ${auditor}` }),
    );
    expect(text(encoded.payloads[0]!.metadata.encoding)).toBe('binary/encrypted');
    const decoded = await readJson<{ payloads: WirePayload[] }>(
      await codec('decode', encoded, { authorization: `Bearer ${auditor}` }),
    );
    expect(decoded.payloads).toEqual([plain]);
    const through = await readJson<{ payloads: WirePayload[] }>(
      await codec('decode', { payloads: [plain] }, { authorization: `Bearer ${auditor}` }),
    );
    expect(through.payloads).toEqual([plain]);
  });

  it('refuses other roles (403), no credentials (401), a bad body (400 naming the field) and a forged payload (422)', async () => {
    const { wire } = await realInput();
    const forbidden = await codec('decode', { payloads: wire }, { authorization: `Bearer ${owner}` });
    expect(forbidden.status).toBe(403);
    expect((await codec('decode', { payloads: wire }, {})).status).toBe(401);
    const asText = await codec(
      'decode',
      { payloads: wire },
      { authorization: `Bearer ${admin}`, 'content-type': 'text/plain' },
    );
    expect(asText.status).toBe(415);
    const bad = await codec('decode', { payloads: [{ data: 'not base64!' }] }, { authorization: `Bearer ${admin}` });
    expect(bad.status).toBe(400);
    expect((await readJson<Problem>(bad)).fields?.[0]?.path).toBe('payloads.0.data');
    const flipped = [
      {
        ...wire[0]!,
        data: b64(Buffer.from(Buffer.from(wire[0]!.data, 'base64').map((x, i) => (i === 20 ? x ^ 1 : x)))),
      },
    ];
    const refused = await codec('decode', { payloads: flipped }, { authorization: `Bearer ${admin}` });
    expect(refused.status).toBe(422);
  });

  it('answers the Temporal UI’s CORS preflight for its origin only', async () => {
    const preflight = (origin: string) =>
      api.app.request('/codec/decode', {
        method: 'OPTIONS',
        headers: {
          origin,
          'access-control-request-method': 'POST',
          'access-control-request-headers': 'content-type,x-namespace',
        },
      });
    const ok = await preflight(UI);
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI);
    expect(ok.headers.get('access-control-allow-credentials')).toBe('true');
    expect(ok.headers.get('access-control-allow-methods')).toContain('POST');
    expect(ok.headers.get('access-control-allow-headers')?.toLowerCase()).toContain('x-namespace');
    expect((await preflight('http://127.0.0.1:8233')).headers.get('access-control-allow-origin')).toBe(
      'http://127.0.0.1:8233',
    );
    const other = await preflight('https://evil.example');
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });
});
