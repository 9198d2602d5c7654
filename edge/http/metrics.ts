import client from 'prom-client';
import type { Queue } from 'bullmq';
import type { Knex } from 'knex';
import { BID_PARTITIONS } from '../../queues/names.js';
import { within } from '../../lib/within.js';

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
  const bids = new client.Counter({
    name: 'blytz_bids_received_total',
    help: 'Bids and auto-bids recorded by the edge (202), by kind',
    labelNames: ['kind'] as const,
    registers: [registry],
  });
  const bidGroup = new client.Histogram({
    name: 'blytz_bid_intake_group_size',
    help: 'Bids of one auction recorded per commit at the edge',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500],
    registers: [registry],
  });
  const enqueueFailures = new client.Counter({
    name: 'blytz_enqueue_failures_total',
    help: 'Enqueues that failed (the sweeper recovers bid drains)',
    labelNames: ['queue'] as const,
    registers: [registry],
  });
  return { registry, requests, duration, errors, rateLimited, cache, bids, bidGroup, enqueueFailures };
}

export type EdgeMetrics = ReturnType<typeof createEdgeMetrics>;

/** Queue depth per queue and state, read from Redis when /metrics is scraped. */
export function registerQueueGauge(metrics: EdgeMetrics, queues: ReadonlyMap<string, Queue>): void {
  new client.Gauge({
    name: 'blytz_queue_jobs',
    help: 'Jobs per queue (bid partitions included) and state',
    labelNames: ['queue', 'state'] as const,
    registers: [metrics.registry],
    async collect() {
      await Promise.all(
        [...queues].map(async ([queue, q]) => {
          try {
            const counts = await q.getJobCounts('wait', 'active', 'delayed', 'failed', 'prioritized');
            for (const [state, n] of Object.entries(counts)) this.set({ queue, state }, n);
          } catch {
            /* Redis down: leave the last values */
          }
        }),
      );
    },
  });
}

/**
 * Bids waiting in each partition, counted in Postgres when /metrics is scraped:
 * the queue depth that matters. A partition's BullMQ queue holds one wake-up job
 * however many bids wait (the bids themselves are rows, queued/producer.ts), so
 * blytz_queue_jobs shows whether a partition is being worked, this how far behind
 * it is. A count over the partial index of queued bids costs time in proportion
 * to the backlog, on the pool bid intake uses: one count runs at a time, with a
 * statement timeout of 2 s of its own, and its result serves every scrape for
 * 5 s, so scrapers (or anyone, without METRICS_TOKEN) cannot stack them.
 */
export function registerQueuedBidsGauge(metrics: EdgeMetrics, db: Knex): void {
  let last: { at: number; counts: Map<number, number> } | null = null;
  let running: Promise<void> | null = null;
  const count = async () => {
    const counts = await db.transaction(async (trx) => {
      await trx.raw("set local statement_timeout = '2s'");
      const { rows } = await trx.raw(
        "select p as partition, (select count(*) from bids where status = 'queued' and partition = p) as n from generate_series(0, ? - 1) p",
        [BID_PARTITIONS],
      );
      return new Map((rows as { partition: number; n: string }[]).map((r) => [Number(r.partition), Number(r.n)]));
    });
    last = { at: Date.now(), counts };
  };
  new client.Gauge({
    name: 'blytz_bids_queued',
    help: 'Bids recorded and not yet applied, per bid partition (counted at most every 5 s)',
    labelNames: ['partition'] as const,
    registers: [metrics.registry],
    async collect() {
      if (!last || Date.now() - last.at >= 5_000) {
        running ??= count()
          .catch(() => undefined) // Postgres slow or down: the last values stand
          .finally(() => {
            running = null;
          });
        await within(2_500, () => running!).catch(() => undefined);
      }
      for (const [partition, n] of last?.counts ?? []) this.set({ partition: String(partition) }, n);
    },
  });
}
