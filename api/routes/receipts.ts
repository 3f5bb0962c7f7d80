import { z } from '@hono/zod-openapi';
import { verifyReceipt } from '../../activities/consent-receipts';
import { SignedReceipt } from '../../domain/consent-receipt';
import type { Services } from '../../runtime/services';
import { defineRoute, endpoint, jsonResponse, v1Resource } from '../auth';

const SignedReceiptBody = z
  .object({
    ...SignedReceipt.shape,
    receipt: z.unknown().openapi({ description: 'The consent receipt, as issued; checked by the verifier' }),
  })
  .strict()
  .openapi('SignedConsentReceipt');

const ReceiptVerification = z
  .object({
    valid: z.boolean(),
    reason: z.string().optional(),
    keyId: z.string().optional(),
    checkedWith: z.enum(['given', 'embedded']).optional(),
  })
  .openapi('ReceiptVerification');

const verify = defineRoute({
  roles: ['auditor', 'owner'],
  method: 'post',
  path: '/receipts/verify',
  tags: ['consents'],
  summary: "Check a signed consent receipt against this deployment's signing key (offline: custodian verify-receipt)",
  request: { body: { required: true, content: { 'application/json': { schema: SignedReceiptBody } } } },
  responses: { 200: jsonResponse(ReceiptVerification, 'Whether the receipt is intact and signed by this deployment') },
});

// This deployment's key, not the one the receipt carries: a receipt signed by anyone else is not ours.
export const receiptRoutes = ({ keyring }: Services) =>
  v1Resource(endpoint(verify, async (c) => c.json(verifyReceipt(c.req.valid('json'), keyring.signing.publicKey), 200)));
