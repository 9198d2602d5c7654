import client from 'prom-client';

/**
 * The edge's Prometheus registry. One registry per app instance (not the global
 * default) so several apps can live in one process, as they do in tests.
 */
export function createEdgeMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'blytz_edge_' });
  const requests = new client.Counter({
    name: 'blytz_http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    registers: [registry],
  });
  const duration = new client.Histogram({
    name: 'blytz_http_request_duration_seconds',
    help: 'HTTP request latency by method, route and status',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  const errors = new client.Counter({
    name: 'blytz_http_errors_total',
    help: 'Error responses by code',
    labelNames: ['code', 'status'] as const,
    registers: [registry],
  });
  const rateLimited = new client.Counter({
    name: 'blytz_rate_limited_total',
    help: 'Requests refused by a rate limit',
    labelNames: ['limit'] as const,
    registers: [registry],
  });
  const cache = new client.Counter({
    name: 'blytz_cache_requests_total',
    help: 'Catalog cache lookups by cache and result (hit, miss, error)',
    labelNames: ['cache', 'result'] as const,
    registers: [registry],
  });
  return { registry, requests, duration, errors, rateLimited, cache };
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>;
