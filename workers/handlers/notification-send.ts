import { insertNotificationOnce } from '../../db/operations/notifications.js';
import { insertUserEventBatch } from '../../db/operations/auctions.js';
import { findUserById } from '../../db/operations/users.js';
import type { JobPayloads } from '../../queues/jobs.js';
import type { WorkerContext } from '../context.js';
import { publishOutbox } from './bid-drain.js';

const TEXT: Record<JobPayloads['notification.send']['kind'], string> = {
  welcome: 'Welcome to Blytz.live!',
  password_changed: 'Your password was changed. If this was not you, reset it now.',
};

/**
 * Stores the notification (once, keyed by its id) and, in the same transaction,
 * its private `notification` event as a batch of the outbox (user_event_batches),
 * then pushes it to the user's connections through the user-events stream and
 * marks it published. A push that fails (Redis refusing, the process dying after
 * the commit) is left to the sweeper, which publishes unpublished batches: before,
 * the retry found the notification stored and pushed nothing. Running twice
 * stores and pushes nothing more.
 */
export async function notificationSend(ctx: WorkerContext, data: JobPayloads['notification.send']): Promise<'delivered' | 'duplicate' | 'no_user'> {
  const user = await findUserById(ctx.db, data.userId);
  if (!user) return 'no_user';
  const event = { type: 'notification', id: data.notificationId, kind: data.kind, text: TEXT[data.kind] };
  const batchId = await ctx.db.transaction(async (trx) => {
    const inserted = await insertNotificationOnce(trx, { id: data.notificationId, userId: data.userId, kind: data.kind, payload: { text: TEXT[data.kind] } });
    return inserted ? insertUserEventBatch(trx, [{ userId: data.userId, frame: event }]) : undefined;
  });
  if (batchId === undefined) return 'duplicate';
  await publishOutbox(ctx, { frames: [], user: [{ userId: data.userId, frame: event }] }, batchId);
  return 'delivered';
}
