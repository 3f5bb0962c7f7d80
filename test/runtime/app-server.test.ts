import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type RunningApi } from '../../runtime/app-server';
import { freePort } from '../../runtime/ports';
import { bearer, seedPrincipal } from '../helpers/api';
import { createTestServices, type TestServices } from '../helpers/services';

let services: TestServices;
let owner: string;
const running: RunningApi[] = [];

beforeAll(async () => {
  services = await createTestServices();
  owner = (await seedPrincipal(services.database.db, 'owner')).key;
});
afterAll(async () => {
  for (const api of running) await api.close();
  await services?.close();
});

/** Streams an NDJSON upload in `chunks` pieces, `gapMs` apart, over a real socket; resolves with the status. */
const slowUpload = (url: string, chunks: number, gapMs: number) =>
  new Promise<number>((resolve, reject) => {
    const req = request(`${url}/v1/subject-imports`, {
      method: 'POST',
      headers: { ...bearer(owner), 'content-type': 'application/x-ndjson' },
    });
    req.on('response', (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', reject);
    let sent = 0;
    const next = () => {
      if (sent === chunks) return req.end();
      req.write(`{"externalRef":"SLOW-${sent++}","jurisdiction":"CN"}\n`);
      setTimeout(next, gapMs);
    };
    next();
  });

const listen = async (requestTimeoutMs: number) => {
  const config = { ...services.config, PORT: await freePort(), CUSTODIAN_REQUEST_TIMEOUT_MS: requestTimeoutMs };
  const api = await startApi({ ...services, config });
  running.push(api);
  return api.url;
};

describe('the API server', () => {
  it('lets an upload run as long as CUSTODIAN_REQUEST_TIMEOUT_MS allows, not Node’s 5-minute default', async () => {
    // The same 1.5 s upload: cut off under a 1 s limit, accepted under the default.
    expect(await slowUpload(await listen(1000), 6, 300)).toBe(408);
    expect(await slowUpload(await listen(services.config.CUSTODIAN_REQUEST_TIMEOUT_MS), 6, 300)).toBe(202);
    expect(services.config.CUSTODIAN_REQUEST_TIMEOUT_MS).toBeGreaterThan(300_000);
  });
});
