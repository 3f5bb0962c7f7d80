import { WorkflowNotFoundError } from '@temporalio/client';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { campaignWorkflowId, importWorkflowId } from '../../domain/ids';
import { ROLES, type Role } from '../../domain/roles';
import { readJson, seedPrincipal } from '../helpers/api';
import { createTestApp, type TestApp } from '../helpers/services';
import { fakeSubject } from '../helpers/subject-files';

/** Fixed, so a failure replays; bounded, so the file stays well under a minute. */
const SEED = 20_261_129;
const RUNS_PER_OPERATION = 80;

interface Schema {
  $ref?: string;
  type?: string | string[];
  format?: string;
  enum?: unknown[];
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  properties?: Record<string, Schema>;
}
interface Parameter {
  name: string;
  in: 'path' | 'query' | 'header';
  required?: boolean;
  schema: Schema;
}
interface Operation {
  method: string;
  path: string;
  roles: Role[];
  parameters: Parameter[];
  body?: { mediaType: string; schema: Schema };
}
interface FuzzDocument {
  paths: Record<string, Record<string, { 'x-roles'?: Role[]; parameters?: Parameter[]; requestBody?: unknown }>>;
  components: { schemas: Record<string, Schema> };
}

let api: TestApp;
let doc: FuzzDocument;
const keys = {} as Record<Role, string>;
/** IDs that name real records, so some fuzzed paths reach a handler's work rather than its 404. */
const knownIds: string[] = [];
const startedImports = new Set<string>();
const startedCampaigns = new Set<string>();

beforeAll(async () => {
  api = await createTestApp({
    // The search budget is tested in hardening.test.ts; here it would only turn searches into 429s.
    config: { CUSTODIAN_SEARCH_RATE_LIMIT: 1_000_000 },
  });
  for (const role of ROLES) keys[role] = (await seedPrincipal(api.database.db, role)).key;
  const bystander = await seedPrincipal(api.database.db, 'owner', 'bystander');
  knownIds.push(bystander.userId, bystander.keyId);
  doc = await readJson<FuzzDocument>(await api.app.request('/openapi.json'));
});
afterAll(async () => {
  // The task queue has no worker: every import the fuzzer started is still open, so end it.
  await Promise.all(
    [...[...startedImports].map(importWorkflowId), ...[...startedCampaigns].map(campaignWorkflowId)].map(async (id) => {
      try {
        await api.temporal.workflow.getHandle(id).terminate('fuzz test over');
      } catch (err) {
        if (!(err instanceof WorkflowNotFoundError)) throw err;
      }
    }),
  );
  await api?.close();
});

const resolve = (schema: Schema): Schema =>
  schema.$ref ? resolve(doc.components.schemas[schema.$ref.split('/').pop()!]!) : schema;

const operations = (): Operation[] =>
  Object.entries(doc.paths)
    .filter(([path]) => path.startsWith('/v1/'))
    .flatMap(([path, item]) =>
      Object.entries(item).map(([method, op]) => {
        const content = (op.requestBody as { content?: Record<string, { schema: Schema }> } | undefined)?.content;
        const [mediaType, media] = Object.entries(content ?? {})[0] ?? [];
        return {
          method: method.toUpperCase(),
          path,
          roles: op['x-roles']!,
          parameters: op.parameters ?? [],
          body: media ? { mediaType: mediaType!, schema: media.schema } : undefined,
        };
      }),
    );

const oddChar = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: 'binary', minLength: 1, maxLength: 1 }) },
  { weight: 1, arbitrary: fc.constantFrom('\0', '\0', '\ud800', '\udfff', '%', '&', '=', '#', '/', '?', '+', '"') },
  { weight: 1, arbitrary: fc.constantFrom('\u202e', '\ufeff', '\u0085', '\u2028', 'ｆ', '𝒰', 'é', '\r\n', '\\') },
);

/** Strings PostgreSQL cannot store as sent: every string input must refuse them with a 400 naming it. */
const UNSTORABLE = ['\0', 'a\u0000b', '\ud800', 'x\udfffy'];

/** Strings that break naive code: NUL, lone surrogates, format characters, numbers in words, huge. */
const malformedString = fc.oneof(
  { weight: 3, arbitrary: fc.constantFrom(...UNSTORABLE, '\0\0\0', '\udc00\ud800') },
  fc.constantFrom("' or 1=1 --", '-1', '1e309', 'NaN', '0x10', '9'.repeat(400), 'null', '[]', '', ' ', '%00', '..'),
  { weight: 2, arbitrary: fc.string({ unit: oddChar, minLength: 1, maxLength: 64 }) },
  fc
    .tuple(fc.constantFrom('a', 'é', '😀', '\0', '%'), fc.integer({ min: 1_000, max: 20_000 }))
    .map(([c, n]) => c.repeat(n)),
);

const encode = (text: string) => encodeURIComponent(text.replace(/[\ud800-\udfff]/g, '\ufffd'));

/** A malformed string as it goes on the wire: well encoded, or a percent sequence that does not decode. */
const malformedWire = fc.oneof(
  { weight: 4, arbitrary: malformedString.map(encode) },
  fc.constantFrom('%', '%G1', '%ED%A0%80', '%C0%80', '%FF%FE', '%E4%B8', '%2F..%2F'),
);

const PURPOSES = ['customer-service', 'identity-verification', 'credit-assessment', 'not-a-purpose'];

/** A value the schema accepts (mostly: purposes and known IDs may be refused further in). */
const validValue = (input: Schema): fc.Arbitrary<unknown> => {
  const schema = resolve(input);
  const type = Array.isArray(schema.type) ? schema.type.find((t) => t !== 'null') : schema.type;
  if (schema.enum) return fc.constantFrom(...schema.enum);
  if (type === 'string' && schema.format === 'uuid')
    return fc.oneof(
      fc.uuid(),
      fc.constantFrom(...knownIds),
      fc.uuid().map((u) => u.toUpperCase()),
    );
  if (type === 'string' && schema.pattern) return fc.constantFrom(...PURPOSES);
  if (type === 'string')
    return fc.string({
      minLength: Math.max(schema.minLength ?? 0, 1),
      maxLength: Math.min(schema.maxLength ?? 40, 40),
    });
  if (type === 'integer' || type === 'number')
    return fc.integer({ min: schema.minimum ?? -1_000_000, max: schema.maximum ?? 1_000_000 });
  if (type === 'boolean') return fc.boolean();
  if (schema.properties)
    return fc.record(Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, validValue(v)])));
  return fc.jsonValue();
};

const validWire = (schema: Schema) =>
  validValue(schema).map((v) => encode(typeof v === 'string' ? v : JSON.stringify(v)));

const byteString = (maxLength: number) =>
  fc.string({
    unit: fc
      .oneof(fc.integer({ min: 0x20, max: 0x7e }), fc.integer({ min: 0x80, max: 0xff }))
      .map((c) => String.fromCharCode(c)),
    maxLength,
  });

const ndjson = fc
  .array(
    fc.oneof(
      { weight: 3, arbitrary: fc.nat(1_000).map((i) => JSON.stringify(fakeSubject(i, 'FUZZ'))) },
      fc.jsonValue().map((v) => JSON.stringify(v)),
      malformedString,
    ),
    { minLength: 1, maxLength: 5 },
  )
  .map((lines) => `${lines.join('\n')}\n`);

const malformedBody = fc.oneof(
  fc.constant(undefined),
  fc.jsonValue().map((v) => JSON.stringify(v)),
  fc
    .dictionary(fc.oneof(fc.constantFrom('name', 'role', '__proto__', 'constructor'), fc.string()), fc.jsonValue())
    .map((v) => JSON.stringify(v)),
  fc.constantFrom(
    '{"__proto__":{"role":"admin","polluted":true},"name":"x","role":"owner"}',
    '{"constructor":{"prototype":{"polluted":true}}}',
    '{',
    '[1,',
    '\ufeff{}',
    '',
    'null',
  ),
  fc
    .tuple(fc.constantFrom(['[', ']'], ['{"a":', '}'], ['{"name":', '}']), fc.integer({ min: 50, max: 20_000 }))
    .map(([[open, close], depth]) => `${open!.repeat(depth)}1${close!.repeat(depth)}`),
  ndjson,
  fc.constant('x'.repeat(70 * 1024)),
);

/** A request as parts, so a mutation can replace one of them. */
interface Parts {
  path: Record<string, string>;
  query: [string, string][];
  headers: Record<string, string>;
  body?: unknown;
  /** A body that is not a JSON value of the schema's shape, sent as is. */
  rawBody?: string;
}

type Mutation = (parts: Parts) => void;

/** What the schema wants: the requests get past validation and reach the handlers. */
const baseline = (op: Operation, key: string): fc.Arbitrary<Parts> => {
  const path = op.parameters.filter((p) => p.in === 'path');
  const query = op.parameters.filter((p) => p.in === 'query');
  const json = op.body && op.body.mediaType === 'application/json';
  return fc.record({
    path: fc.record(Object.fromEntries(path.map((p) => [p.name, validWire(p.schema)]))),
    // Optional parameters half the time, so exactly-one-of groups (the search fields) come out right often.
    query: fc
      .tuple(
        ...query.map((p) =>
          p.required
            ? validWire(p.schema).map((v) => [p.name, v])
            : fc.option(
                validWire(p.schema).map((v) => [p.name, v]),
                { freq: 2, nil: undefined },
              ),
        ),
      )
      .map((pairs) => pairs.filter((pair): pair is [string, string] => pair !== undefined)),
    headers: fc.constant({
      authorization: `Bearer ${key}`,
      ...(op.method === 'POST' ? { 'content-type': op.body?.mediaType ?? 'application/json' } : {}),
    }),
    body: json ? validValue(op.body!.schema) : fc.constant(undefined),
    rawBody: op.body && !json ? ndjson : fc.constant(undefined),
  });
};

/** One malformed part: a path parameter, a query value, key or repetition, a header, or the body. */
const mutation = (op: Operation): fc.Arbitrary<Mutation> => {
  const names = (where: Parameter['in']) => op.parameters.filter((p) => p.in === where).map((p) => p.name);
  const pick = (list: string[]) => fc.constantFrom(...list);
  const unknownKey = fc.oneof(pick(['__proto__', 'constructor', 'toString', 'a[b]', '', 'limit[]']), malformedWire);
  const options: fc.Arbitrary<Mutation>[] = [
    fc.tuple(unknownKey, malformedWire).map(([k, v]) => (parts: Parts) => {
      parts.query.push([k, v]);
    }),
    fc
      .tuple(
        fc.constantFrom('content-type', 'idempotency-key', 'x-forwarded-for'),
        fc.oneof(
          byteString(300),
          fc.integer({ min: 201, max: 5_000 }).map((n) => 'k'.repeat(n)),
        ),
      )
      .map(([name, value]) => (parts: Parts) => {
        parts.headers[name] = value;
      }),
  ];
  if (names('path').length)
    options.push(
      fc.tuple(pick(names('path')), malformedWire).map(([name, v]) => (parts: Parts) => {
        parts.path[name] = v;
      }),
    );
  if (names('query').length) {
    const query = pick(names('query'));
    options.push(
      fc.tuple(query, malformedWire).map(([name, v]) => (parts: Parts) => {
        parts.query = [...parts.query.filter(([k]) => k !== name), [name, v]];
      }),
      fc.tuple(query, malformedWire).map(([name, v]) => (parts: Parts) => {
        parts.query.push([name, v]);
      }),
      query.map((name) => (parts: Parts) => {
        parts.query = parts.query.filter(([k]) => k !== name);
      }),
    );
  }
  if (op.method === 'POST') {
    options.push(
      malformedBody.map((raw) => (parts: Parts) => {
        parts.body = undefined;
        parts.rawBody = raw;
      }),
    );
    options.push(
      fc
        .constantFrom(undefined, 'text/plain', 'application/x-ndjson', 'application/json; charset=utf-16')
        .map((type) => (parts: Parts) => {
          if (type === undefined) delete parts.headers['content-type'];
          else parts.headers['content-type'] = type;
        }),
    );
    const properties = op.body?.schema && resolve(op.body.schema).properties;
    if (properties)
      options.push(
        fc
          .tuple(pick(Object.keys(properties)), fc.oneof(malformedString, fc.jsonValue()))
          .map(([field, value]) => (parts: Parts) => {
            if (parts.body && typeof parts.body === 'object') (parts.body as Record<string, unknown>)[field] = value;
          }),
      );
  }
  return fc.oneof(...options);
};

interface FuzzRequest {
  url: string;
  init: RequestInit;
}

/** Mostly a valid request with one or two malformed parts; sometimes a valid one as is. */
const requestArb = (op: Operation, key: string): fc.Arbitrary<FuzzRequest> =>
  fc.tuple(baseline(op, key), fc.array(mutation(op), { minLength: 0, maxLength: 2 })).map(([base, mutations]) => {
    const parts: Parts = {
      ...base,
      path: { ...base.path },
      query: [...base.query],
      headers: { ...base.headers },
      body: base.body && typeof base.body === 'object' ? { ...base.body } : base.body,
    };
    for (const mutate of mutations) mutate(parts);
    const path = Object.entries(parts.path).reduce((p, [name, v]) => p.replace(`{${name}}`, v), op.path);
    const query = parts.query.map(([k, v]) => `${k}=${v}`).join('&');
    const body = parts.rawBody ?? (parts.body === undefined ? undefined : JSON.stringify(parts.body));
    return {
      url: `${path}${query ? `?${query}` : ''}`,
      init: { method: op.method, headers: parts.headers, body: op.method === 'GET' ? undefined : body },
    };
  });

/** Sends one request; any 5xx, or an error that is not problem+json, fails the property. */
const send = async (op: Operation, { url, init }: FuzzRequest) => {
  const res = await api.app.request(url, init);
  const text = await res.text();
  const where = `${op.method} ${op.path}: ${res.status} for ${url.slice(0, 300)}`;
  expect(res.status, where).toBeLessThan(500);
  if (res.status >= 400) {
    expect(res.headers.get('content-type'), where).toBe('application/problem+json');
    const problem = JSON.parse(text) as { status: number; type: string; code: string };
    expect(problem.status, where).toBe(res.status);
    expect(problem.type, where).toBe(`urn:custodian:problem:${problem.code}`);
  } else if (op.path === '/v1/subject-imports') {
    const { id } = JSON.parse(text) as { id: string };
    startedImports.add(id);
    knownIds.push(id);
  } else if (op.path === '/v1/campaigns') {
    startedCampaigns.add((JSON.parse(text) as { id: string }).id);
  } else if (op.path === '/v1/notices' && res.status === 201) {
    knownIds.push((JSON.parse(text) as { id: string }).id);
  }
  return res.status;
};

describe('fuzzing every /v1 operation from the OpenAPI document', () => {
  it('refuses a NUL or an unpaired surrogate in every string input of every operation with a 400 naming it', async () => {
    const sample = <T>(arb: fc.Arbitrary<T>) => fc.sample(arb, { seed: SEED, numRuns: 1 })[0]!;
    const refusals: string[] = [];
    const expectNamed = async (op: Operation, name: string, url: string, init: RequestInit) => {
      const res = await api.app.request(url, { method: op.method, ...init });
      const where = `${op.method} ${op.path} with ${name} unstorable`;
      expect(res.status, where).toBe(400);
      expect(res.headers.get('content-type'), where).toBe('application/problem+json');
      const { fields } = JSON.parse(await res.text()) as { fields?: { path: string }[] };
      expect(
        fields?.map((f) => f.path),
        where,
      ).toContain(name);
      refusals.push(where);
    };
    for (const op of operations()) {
      const headers = { authorization: `Bearer ${keys[op.roles[0]!]}`, 'content-type': 'application/json' };
      const valid = (where: Parameter['in'], except?: string) =>
        op.parameters
          .filter((p) => p.in === where && p.required && p.name !== except)
          .map((p) => [p.name, sample(validWire(p.schema))] as const);
      const url = (path: (readonly [string, string])[], query: (readonly [string, string])[]) =>
        path.reduce((u, [name, v]) => u.replace(`{${name}}`, v), op.path) +
        (query.length ? `?${query.map(([k, v]) => `${k}=${v}`).join('&')}` : '');
      for (const p of op.parameters) {
        for (const wire of ['%00', 'a%00b', '%00%00']) {
          if (p.in === 'path')
            await expectNamed(op, p.name, url([...valid('path', p.name), [p.name, wire]], valid('query')), { headers });
          if (p.in === 'query')
            await expectNamed(op, p.name, url(valid('path'), [...valid('query', p.name), [p.name, wire]]), { headers });
        }
        // A NUL cannot even be sent in a header; what can be sent and is not a key must still be named.
        if (p.in === 'header')
          for (const value of ['ÿÿ', 'a b', 'k'.repeat(201)])
            await expectNamed(op, p.name, url(valid('path'), valid('query')), {
              headers: { ...headers, [p.name]: value },
            });
      }
      const properties = op.body?.mediaType === 'application/json' ? resolve(op.body.schema).properties : undefined;
      for (const name of Object.keys(properties ?? {})) {
        const body = sample(validValue(op.body!.schema)) as Record<string, unknown>;
        for (const text of UNSTORABLE)
          await expectNamed(op, name, url(valid('path'), valid('query')), {
            headers,
            body: JSON.stringify({ ...body, [name]: text }),
          });
      }
    }
    expect(refusals.length).toBeGreaterThan(40);
  });

  it('never answers 5xx, and every error is problem+json', { timeout: 120_000 }, async () => {
    const ops = operations();
    expect(ops.length).toBeGreaterThan(5);
    const statuses: Record<string, Record<number, number>> = {};
    for (const op of ops) {
      const seen: Record<number, number> = (statuses[`${op.method} ${op.path}`] = {});
      await fc.assert(
        fc.asyncProperty(requestArb(op, keys[op.roles[0]!]), async (req) => {
          const status = await send(op, req);
          seen[status] = (seen[status] ?? 0) + 1;
        }),
        { seed: SEED, numRuns: RUNS_PER_OPERATION },
      );
    }
    // The generators get past validation: every operation succeeds sometimes, except reads of a subject
    // (subjects exist only through an import, and no worker runs here), and the consent operations (a
    // consent needs a subject and a worker: test/api/consents.test.ts drives them), and the campaign operations (a
    // campaign needs a notice, consent terms that agree with purposeChanged, and a worker: test/api/campaigns.test.ts),
    // and editing or triggering a schedule (it exists once a worker has upserted it: test/api/schedules.test.ts),
    // and reading or restore-testing one backup (it exists once a worker has written it: test/api/backups.test.ts).
    const succeeded = Object.entries(statuses).filter(([, seen]) => Object.keys(seen).some((code) => +code < 300));
    expect(succeeded.map(([op]) => op)).toEqual(
      ops
        .map((op) => `${op.method} ${op.path}`)
        .filter(
          (op) =>
            !op.startsWith('GET /v1/subjects/{id}') &&
            !op.includes(' /v1/consents') &&
            !op.includes(' /v1/campaigns') &&
            !op.includes(' /v1/schedules/{id}') &&
            !op.includes(' /v1/backups/{id}') &&
            // A quality report exists once a check has run (test/workflows/quality-check.test.ts).
            !op.startsWith('GET /v1/quality-reports/{id}') &&
            // The on-call and incident operations need active responders, a real zone, schedule or policy, and a
            // worker (test/api/oncall.test.ts, test/api/incidents.test.ts); their lists are read here (incidents).
            !/^(POST|PUT) \/v1\/(oncall-schedules|escalation-policies|incidents|users\/\{id\}\/contact)/.test(op) &&
            !/^GET \/v1\/(oncall-schedules|escalation-policies|incidents)\/\{id\}/.test(op) &&
            // Holds, destructions and certificates need subjects and a worker (test/api/destructions.test.ts).
            !/ \/v1\/(legal-holds|destructions|certificates)/.test(op) &&
            // Requests need a subject and a worker (test/api/requests.test.ts); their list and figures are read here.
            !/^(POST \/v1\/requests|GET \/v1\/requests\/\{id\})/.test(op) &&
            // Grants name active users, reviews and obligations exist by ID (test/api/access-review.test.ts, obligations.test.ts).
            !(
              / \/v1\/(access-grants|access-reviews|obligations)/.test(op) &&
              !/^GET \/v1\/(access-grants|access-reviews|obligations)$/.test(op)
            ),
        ),
    );
    expect(Object.keys(Object.prototype)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(api.logLines.filter((l) => l.includes('"request failed"'))).toEqual([]);
  });
});
