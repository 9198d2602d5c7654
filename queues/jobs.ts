/**
 * The job contract shared by the edge (producer) and the workers (consumers):
 * one discriminated union of payloads keyed by dotted job name. Payloads carry
 * ids and idempotency keys, never entities or secrets; workers reload state.
 */
import Joi from 'joi';
import type { QueueName } from './names.js';

export type NotificationKind = 'welcome' | 'password_changed';

export interface JobPayloads {
  /** Deliver a notification to a user: stored in Postgres, pushed to the user's event stream. */
  'notification.send': { notificationId: string; userId: string; kind: NotificationKind };
}

export type JobName = keyof JobPayloads;
export type JobOf<N extends JobName> = { name: N; data: JobPayloads[N] };

/** Which queue carries each job. */
export const JOB_QUEUE: { [N in JobName]: QueueName } = {
  'notification.send': 'notifications',
};

/** Payload schemas: a payload that fails them is malformed (UnrecoverableError). */
export const JOB_SCHEMAS: { [N in JobName]: Joi.ObjectSchema<JobPayloads[N]> } = {
  'notification.send': Joi.object({
    notificationId: Joi.string().uuid().required(),
    userId: Joi.string().uuid().required(),
    kind: Joi.string().valid('welcome', 'password_changed').required(),
  }),
};

/** Deterministic job ids (no `:`), so a repeated enqueue of the same work is a no-op. */
export const JOB_ID: { [N in JobName]: (data: JobPayloads[N]) => string } = {
  'notification.send': (d) => `notification-${d.notificationId}`,
};
