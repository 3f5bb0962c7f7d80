import { z } from '@hono/zod-openapi';
import { getCertificate, verifyCertificate } from '../../activities/certificates';
import type { Services } from '../../runtime/services';
import { defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';
import { ApiError, problemResponse } from '../errors';
import { IdParam } from '../params';

const tags = ['destructions'];
const Certificate = z
  .object({
    id: z.uuid(),
    destructionId: z.uuid(),
    certificate: z.record(z.string(), z.unknown()),
    signature: z.object({ keyId: z.string(), algorithm: z.literal('Ed25519'), signature: z.string() }),
    sha256: z.string(),
    auditSeq: z.number().int().nullable(),
    issuedAt: z.iso.datetime(),
  })
  .openapi('DestructionCertificate');
const Verification = z
  .object({
    valid: z.boolean(),
    signature: z.boolean(),
    digest: z.boolean(),
    auditEntry: z.boolean(),
    keyId: z.string(),
    auditSeq: z.number().int().nullable(),
    reasons: z.array(z.string()),
  })
  .openapi('CertificateVerification');

const getOne = defineRoute({
  roles: ['owner', 'approver', 'auditor'],
  method: 'get',
  path: '/certificates/{id}',
  tags,
  summary: 'A signed certificate of destruction (Ed25519 over its canonical JSON; no personal data)',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Certificate, 'The certificate'), 404: problemResponse('No such certificate') },
});
const verify = defineRoute({
  roles: ['auditor', 'owner'],
  method: 'get',
  path: '/certificates/{id}/verify',
  tags,
  summary: 'Check the certificate’s signature and digest, and that the audit-chain entry recording it is intact',
  request: { params: IdParam },
  responses: { 200: jsonResponse(Verification, 'The verdict'), 404: problemResponse('No such certificate') },
});

export const certificateRoutes = ({ database, keyring }: Services) =>
  v1Resource(
    endpoint(getOne, async (c) => {
      const { id } = c.req.valid('param');
      const cert = await getCertificate(database.db, id);
      if (!cert) throw ApiError.notFound(`certificate ${id}`);
      return c.json({ ...cert, issuedAt: cert.issuedAt.toISOString() }, 200);
    }),
    endpoint(verify, async (c) => {
      const { id } = c.req.valid('param');
      const verdict = await verifyCertificate(database.db, keyring, id);
      if (!verdict) throw ApiError.notFound(`certificate ${id}`);
      return c.json(verdict, 200);
    }),
  );
