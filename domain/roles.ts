import { z } from 'zod';

/** One role per user; no role, `admin` included, implies another (deny by default). */
export const ROLES = ['admin', 'owner', 'responder', 'approver', 'auditor'] as const;
export const Role = z.enum(ROLES);
export type Role = z.infer<typeof Role>;
