import { randomBytes, randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { appendAudit } from '../../activities/audit';
import { insertNewSubjects, updateSubjects } from '../../activities/subject-writer';
import { connect, type Database } from '../../db/client';
import { runMigrations } from '../../db/migrate';
import { provisionServiceRole } from '../../db/roles';
import { withDatabase } from '../../runtime/database-url';
import { createTestDatabase, type TestDatabase } from '../helpers/db';

/** The first row of a query that returns one. */
const first = async <T>(rows: PromiseLike<readonly T[]>): Promise<T> => (await rows)[0]!;

let owner: TestDatabase;
let service: Database;
let serviceSql: postgres.Sql;
const role = `custodian_svc_${randomBytes(5).toString('hex')}`;
const password = randomBytes(18).toString('base64url');

const asRole = (url: string, user: string, pass: string) => {
  const u = new URL(url);
  u.username = user;
  u.password = pass;
  return u.toString();
};

beforeAll(async () => {
  owner = await createTestDatabase();
  await provisionServiceRole(owner.url, { role, password });
  service = connect(asRole(owner.url, role, password), { max: 2, applicationName: 'custodian-test-service' });
  serviceSql = service.sql;
});

afterAll(async () => {
  await service?.close();
  await owner?.drop();
  const admin = postgres(withDatabase(owner.url, 'postgres'), { max: 1, onnotice: () => {} });
  await admin.unsafe(`drop role if exists "${role}"`);
  await admin.end({ timeout: 5 });
});

const refused = async (statement: string) => {
  const err = await serviceSql.unsafe(statement).then(
    () => undefined,
    (e: unknown) => e as postgres.PostgresError,
  );
  expect(err, `${statement} must be refused`).toBeDefined();
  return err!;
};

describe('the service role', () => {
  it('is a plain login role that owns nothing', async () => {
    const [r] = await serviceSql`
      select rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls from pg_roles where rolname = current_user`;
    expect(r).toEqual({
      rolsuper: false,
      rolcreatedb: false,
      rolcreaterole: false,
      rolreplication: false,
      rolbypassrls: false,
    });
    const { owned } = await first(serviceSql`
      select count(*)::int as owned from pg_class c join pg_roles r on r.oid = c.relowner where r.rolname = current_user`);
    expect(owned).toBe(0);
  });

  it('may append to the audit chain and read it, but not change, delete or truncate it', async () => {
    const entry = await appendAudit(service.db, {
      actor: 'test',
      action: 'role.check',
      targetType: 'role',
      targetId: 'service',
      idempotencyKey: randomUUID(),
    });
    expect(entry.seq).toBeGreaterThan(0);
    const { n } = await first(serviceSql`select count(*)::int as n from audit_log`);
    expect(n).toBeGreaterThan(0);
    for (const statement of [
      `update audit_log set actor = 'forged'`,
      'delete from audit_log',
      'truncate audit_log',
      `update audit_checkpoints set signature = 'forged'`,
      'delete from audit_checkpoints',
      'truncate audit_checkpoints',
    ]) {
      expect((await refused(statement)).code, statement).toBe('42501'); // insufficient_privilege
    }
  });

  it('cannot switch the append-only triggers off', async () => {
    expect((await refused('alter table audit_log disable trigger audit_log_append_only')).code).toBe('42501');
    expect((await refused('alter table audit_log disable trigger all')).code).toBe('42501');
    expect((await refused('drop trigger audit_log_append_only on audit_log')).code).toBe('42501');
    expect((await refused(`set session_replication_role = replica`)).code).toBe('42501');
  });

  it('cannot run programs on the server or read its files', async () => {
    expect((await refused(`copy subjects from program 'id'`)).code).toBe('42501');
    expect((await refused(`copy audit_log to program 'cat > /dev/null'`)).code).toBe('42501');
    expect((await refused(`select pg_read_file('/etc/passwd')`)).code).toBe('42501');
    expect((await refused('create table intruder (id int)')).code).toBe('42501');
  });

  it('reads and writes the other tables, including the import COPY into subjects and the upsert temp table', async () => {
    const userId = randomUUID();
    await serviceSql`insert into users (id, name, role) values (${userId}, 'role-check', 'auditor')`;
    await serviceSql`update users set name = 'role-check-2' where id = ${userId}`;
    await serviceSql`delete from users where id = ${userId}`;

    const importId = randomUUID();
    const subjectId = randomUUID();
    const field = {
      field: 'email',
      classification: 'personal' as const,
      classified: true,
      valueType: 'string' as const,
      keyVersion: 1,
      ciphertext: randomBytes(40),
      plainValue: null,
      blindIndex: null,
    };
    const subject = {
      id: subjectId,
      externalRef: `role-${subjectId}`,
      jurisdiction: 'CN',
      locale: 'zh-CN',
      retentionUntil: null,
    };
    const inserted = await serviceSql.begin((tx) =>
      insertNewSubjects(tx, importId, [{ subject, wrappedKey: randomBytes(60), kekVersion: 1, fields: [field] }]),
    );
    expect(inserted).toBe(1);
    await serviceSql.begin((tx) =>
      updateSubjects(tx, importId, [
        { subject: { ...subject, locale: 'en' }, fields: [{ ...field, ciphertext: randomBytes(40) }] },
      ]),
    );
    const [row] = await serviceSql`select locale from subjects where id = ${subjectId}`;
    expect(row?.locale).toBe('en');
    await serviceSql`delete from subject_fields where subject_id = ${subjectId}`;
    await serviceSql`delete from subject_keys where subject_id = ${subjectId}`;
  });

  it('provisioning is idempotent, and migrations re-grant to the service role what they add', async () => {
    await provisionServiceRole(owner.url, { role, password });
    await runMigrations(owner.url, { serviceRole: role });
    const { n } = await first(serviceSql`select count(*)::int as n from audit_log`);
    expect(n).toBeGreaterThan(0);
    expect((await refused('delete from audit_log')).code).toBe('42501');
  });
});
