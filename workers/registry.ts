import type { JobName, JobPayloads } from '../queues/jobs.js';
import type { WorkerContext } from './context.js';
import { notificationSend } from './handlers/notification-send.js';
import { bidDrain } from './handlers/bid-drain.js';
import { auctionClose, auctionStart } from './handlers/auction-lifecycle.js';

export type Handler<N extends JobName> = (ctx: WorkerContext, data: JobPayloads[N]) => Promise<unknown>;

/** Every job name → its handler. A missing handler fails to compile. */
export const HANDLERS: { [N in JobName]: Handler<N> } = {
  'notification.send': notificationSend,
  'bid.drain': bidDrain,
  'auction.start': auctionStart,
  'auction.close': auctionClose,
};
