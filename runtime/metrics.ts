import type { Context } from 'hono';
import { matchedRoutes } from 'hono/route';
import { collectDefaultMetrics, Counter, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  /** Counts one started workflow; `startProcess` (api/processes.ts) calls it after the start succeeds. */
  recordWorkflowStart(workflowType: string): void;
  observeRequest(request: { method: string; route: string; status: number; seconds: number }): void;
}

/** A registry of its own per Services, so two apps in one process (tests) never share or collide. */
export const createMetrics = (): Metrics => {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration by method, route pattern and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const workflowStarts = new Counter({
    name: 'workflow_starts_total',
    help: 'Workflows started through the API, by workflow type',
    labelNames: ['workflow_type'] as const,
    registers: [registry],
  });
  return {
    registry,
    recordWorkflowStart: (workflowType) => workflowStarts.inc({ workflow_type: workflowType }),
    observeRequest: ({ method, route, status, seconds }) => {
      const labels = { method, route, status: String(status) };
      requests.inc(labels);
      duration.observe(labels, seconds);
    },
  };
};

/**
 * The matched route pattern (`/v1/users/:id/api-keys`), never the raw path: bounded label values, no IDs.
 * The route that answered wins over a later one that also matches (`/subjects/search` and `/subjects/:id`).
 */
export const routePattern = (c: Context): string => {
  const routes = matchedRoutes(c);
  const answered = routes[c.req.routeIndex];
  return (
    (answered?.method !== 'ALL' ? answered : undefined)?.path ??
    routes.findLast((r) => r.method !== 'ALL')?.path ??
    'unmatched'
  );
};
