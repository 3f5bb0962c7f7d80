import { AccessGrantRequiredError, checkRevealGrant } from '../activities/access-grants';
import { ConsentRefusedError, subjectRegistry, UnknownPurposeError, type SubjectView } from '../activities/subjects';
import type { Principal } from '../activities/users';
import { classifyField } from '../domain/catalog';
import type { Services } from '../runtime/services';
import { actorOf } from './auth';
import { ApiError } from './errors';
import { rateLimiter, type RateLimiter } from './rate-limit';

/** The fields a person may be searched by: each through its keyed blind index, never in clear. */
export const SEARCH_FIELDS = ['phone', 'idNumber', 'email'] as const;
export type SearchField = (typeof SEARCH_FIELDS)[number];

// One search budget per API key per process, whether the key searches through the API or the console.
const budgets = new WeakMap<Services, RateLimiter>();
const searchBudget = ({ config, clock }: Services): RateLimiter =>
  rateLimiter(
    { limit: config.CUSTODIAN_SEARCH_RATE_LIMIT, windowSeconds: config.CUSTODIAN_SEARCH_RATE_WINDOW_SECONDS },
    () => clock().getTime(),
  );

/**
 * Finding, reading and revealing subjects as the API's subject routes and the console's Subjects page do: the
 * search checks the index and the purpose, takes from the key's budget and is audited (never the value); a reveal
 * honours access grants and the consent gate, audited before anything is decrypted. Refusals are ApiErrors.
 */
export const subjectLookup = (services: Services) => {
  const { database, keyring, catalog, config, clock } = services;
  const subjects = subjectRegistry({ db: database.db, keyring, catalog, clock });
  const grantCheck = { db: database.db, catalog, enforce: config.CUSTODIAN_SENSITIVE_REVEAL_NEEDS_GRANT };
  let budget = budgets.get(services);
  if (!budget) budgets.set(services, (budget = searchBudget(services)));
  const searches = budget;

  return {
    /** The search fields the catalog indexes, and per field the purposes its entry names. */
    searchable: (): { field: SearchField; purposes: string[] }[] =>
      SEARCH_FIELDS.filter((f) => subjects.searchableFields.includes(f)).map((field) => ({
        field,
        purposes: classifyField(catalog, field).entry.purposes,
      })),
    /** The catalog's purposes: the choices of a reveal. */
    purposes: (): string[] => [...subjects.purposes].sort(),
    get: (id: string): Promise<SubjectView | undefined> => subjects.get(id),
    findByExternalRef: (externalRef: string): Promise<SubjectView[]> => subjects.findByExternalRef(externalRef),

    async search(principal: Principal, field: SearchField, value: string, purpose: string): Promise<SubjectView[]> {
      if (!subjects.searchableFields.includes(field))
        throw ApiError.badRequest(`${field} has no blind index`, [{ path: field, message: 'not searchable' }]);
      searches.take(principal.keyId, 'searches');
      try {
        return await subjects.search(field, value, { ...actorOf(principal), purpose });
      } catch (err) {
        if (!(err instanceof UnknownPurposeError)) throw err;
        throw ApiError.badRequest(err.message, [{ path: 'purpose', message: `not a purpose of ${field}` }]);
      }
    },

    async reveal(principal: Principal, id: string, purpose: string) {
      try {
        await checkRevealGrant(grantCheck, { ...actorOf(principal), userId: principal.userId, subjectId: id, purpose });
        const revealed = await subjects.reveal(id, { ...actorOf(principal), purpose });
        if (!revealed) throw ApiError.notFound(`subject ${id}`);
        const { subject, ...reveal } = revealed;
        return { ...subject, reveal };
      } catch (err) {
        if (err instanceof AccessGrantRequiredError) throw new ApiError(403, err.code, 'Forbidden', err.message);
        if (err instanceof ConsentRefusedError) throw new ApiError(403, err.verdict.code, 'Forbidden', err.message);
        if (!(err instanceof UnknownPurposeError)) throw err;
        throw ApiError.badRequest(err.message, [{ path: 'purpose', message: 'not a purpose in the data catalog' }]);
      }
    },
  };
};

export type SubjectLookup = ReturnType<typeof subjectLookup>;
