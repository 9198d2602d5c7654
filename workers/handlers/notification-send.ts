import { storeNotification, unpublishedBatch } from '../../db/operations/notifications.js';
import { findUserById } from '../../db/operations/users.js';
import type { JobPayloads } from '../../queues/jobs.js';
import type { WorkerContext } from '../context.js';
import { publishOutbox } from './bid-drain.js';

/**
 * Pushes a notification to the user's connections through the user-events
 * stream and marks its batch published. The edge stores it (storeNotification)
 * with the change it tells of and names its batch in the job; a job without a
 * batch (from an edge before that) stores it here first. A push that fails
 * (Redis refusing, the process dying after the commit) is left to the sweeper,
 * which publishes unpublished batches. Running twice pushes nothing more.
 */
export async function notificationSend(ctx: WorkerContext, data: JobPayloads['notification.send']): Promise<'delivered' | 'duplicate' | 'no_user'> {
  let batchId = data.batchId;
  if (batchId === undefined) {
    if (!(await findUserById(ctx.db, data.userId))) return 'no_user';
    const stored = await ctx.db.transaction((trx) => storeNotification(trx, { id: data.notificationId, userId: data.userId, kind: data.kind }));
    if (stored === null) return 'duplicate';
    batchId = stored;
  }
  const events = await unpublishedBatch(ctx.db, batchId);
  if (!events) return 'duplicate';
  await publishOutbox(ctx, { frames: [], user: events }, batchId);
  return 'delivered';
}
