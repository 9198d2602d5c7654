import client from 'prom-client';
import type { Verdict } from '../db/operations/auctions.js';

/** The worker's Prometheus registry (served on WORKER_PORT when set). */
export function createWorkerMetrics() {
  const registry = new client.Registry();
  client.collectDefaultMetrics({ register: registry, prefix: 'blytz_worker_' });
  const bids = new client.Counter({
    name: 'blytz_bids_applied_total',
    help: 'Bids and auto-bids applied, by result and rejection reason',
    labelNames: ['result', 'reason'] as const,
    registers: [registry],
  });
  const latency = new client.Histogram({
    name: 'blytz_bid_commit_latency_seconds',
    help: 'From the edge recording a bid to the worker committing its verdict',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const batch = new client.Histogram({
    name: 'blytz_bid_drain_batch_size',
    help: 'Bids applied per drain transaction',
    buckets: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000],
    registers: [registry],
  });
  const jobs = new client.Counter({
    name: 'blytz_jobs_processed_total',
    help: 'Jobs processed by name and outcome',
    labelNames: ['name', 'outcome'] as const,
    registers: [registry],
  });
  const rounds = new client.Counter({
    name: 'blytz_bid_drain_rounds_total',
    help: "Drain rounds, by how they chose their auctions: a look at the queued bids, or a backlog's list (many rounds in a row from a list: a backlog is being worked through)",
    labelNames: ['choice'] as const,
    registers: [registry],
  });
  return {
    registry,
    jobs,
    rounds,
    /** Records one committed drain: verdicts and, per bid, its receipt time (epoch ms). */
    observeDrain(verdicts: Verdict[], receivedAt: number[]) {
      if (verdicts.length === 0) return;
      batch.observe(verdicts.length);
      for (const v of verdicts) bids.inc({ result: v.status, reason: v.reason ?? '' });
      // Metric only: the worker's clock reads the commit; the database clock stamped receipt.
      const now = Date.now();
      for (const t of receivedAt) latency.observe(Math.max(0, now - t) / 1000);
    },
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
