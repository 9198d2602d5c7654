import type { JobsOptions } from 'bullmq';
import type { QueueName } from './names.js';

/**
 * Default job options per queue, chosen on purpose:
 * - notifications are unordered and safe to retry (the handler is idempotent), so
 *   they get attempts with exponential backoff;
 * - completed jobs are trimmed by count and age so Redis stays bounded; failed jobs
 *   are kept longer (never `removeOnFail: true`: they are the evidence).
 */
export const QUEUE_JOB_OPTIONS: { [Q in QueueName]: JobsOptions } = {
  notifications: {
    attempts: 5,
    backoff: { type: 'exponential', delay: 1_000 },
    removeOnComplete: { count: 1_000, age: 3_600 },
    removeOnFail: { count: 10_000, age: 7 * 24 * 3_600 },
  },
};
