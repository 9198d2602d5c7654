/**
 * The job contract shared by the edge (producer) and the workers (consumers):
 * one discriminated union of payloads keyed by dotted job name. Payloads carry
 * ids and idempotency keys, never entities or secrets; workers reload state.
 */
import Joi from 'joi';
import { bidQueueFor, type QueueName } from './names.js';

export type NotificationKind = 'welcome' | 'password_changed';

export interface JobPayloads {
  /**
   * Deliver a notification to a user: push its stored event batch (`batchId`,
   * stored by the edge with the change it tells of) to the user's event stream;
   * without `batchId`, store it first.
   */
  'notification.send': { notificationId: string; userId: string; kind: NotificationKind; batchId?: string };
  /**
   * Apply the auction's queued bids, in receipt order, in one transaction. `upTo`
   * is the highest receipt number the producer recorded (it names the job); the
   * drain applies every queued bid it sees, so any one drain job suffices.
   */
  'bid.drain': { auctionId: string; upTo: number; retry?: number };
  /** Start a scheduled auction at its `startsAt` (re-checked when it fires). */
  'auction.start': { auctionId: string; at: number; retry?: number };
  /** Close a live auction at its `endsAt` (drains first; re-arms itself if the end moved). */
  'auction.close': { auctionId: string; at: number; retry?: number };
}
// `retry` (the sweeper's re-enqueue time) gives a recovery job an id of its own,
// since a failed or completed job may still hold the original id.

export type JobName = keyof JobPayloads;
export type JobOf<N extends JobName> = { name: N; data: JobPayloads[N] };

/** Which queue carries each job. */
export const JOB_QUEUE: { [N in JobName]: (data: JobPayloads[N]) => QueueName } = {
  'notification.send': () => 'notifications',
  'bid.drain': (d) => bidQueueFor(d.auctionId),
  'auction.start': () => 'auctions',
  'auction.close': () => 'auctions',
};

const uuid = Joi.string().guid().required();
const ms = Joi.number().integer().min(0).required();

/** Payload schemas: a payload that fails them is malformed (UnrecoverableError). */
export const JOB_SCHEMAS: { [N in JobName]: Joi.ObjectSchema<JobPayloads[N]> } = {
  'notification.send': Joi.object({ notificationId: uuid, userId: uuid, kind: Joi.string().valid('welcome', 'password_changed').required(), batchId: Joi.string().pattern(/^[1-9][0-9]{0,18}$/) }),
  'bid.drain': Joi.object({ auctionId: uuid, upTo: Joi.number().integer().min(0).required(), retry: Joi.number().integer() }),
  'auction.start': Joi.object({ auctionId: uuid, at: ms, retry: Joi.number().integer() }),
  'auction.close': Joi.object({ auctionId: uuid, at: ms, retry: Joi.number().integer() }),
};

/** Deterministic job ids (no `:`), so a repeated enqueue of the same work is a no-op. */
export const JOB_ID: { [N in JobName]: (data: JobPayloads[N]) => string } = {
  'notification.send': (d) => `notification-${d.notificationId}`,
  'bid.drain': (d) => `drain-${d.auctionId}-${d.upTo}${d.retry ? `-r${d.retry}` : ''}`,
  'auction.start': (d) => `start-${d.auctionId}-${d.at}${d.retry ? `-r${d.retry}` : ''}`,
  'auction.close': (d) => `close-${d.auctionId}-${d.at}${d.retry ? `-r${d.retry}` : ''}`,
};
