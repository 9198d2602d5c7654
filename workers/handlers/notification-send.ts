import { insertNotificationOnce } from '../../db/operations/notifications.js';
import { findUserById } from '../../db/operations/users.js';
import { userEventsEntry } from '../../queues/streams.js';
import type { JobPayloads } from '../../queues/jobs.js';
import type { WorkerContext } from '../context.js';

const TEXT: Record<JobPayloads['notification.send']['kind'], string> = {
  welcome: 'Welcome to Blytz.live!',
  password_changed: 'Your password was changed. If this was not you, reset it now.',
};

/**
 * Stores the notification (once, keyed by its id) and pushes a private
 * `notification` event to the user's connections through the user-events stream.
 * Running twice stores nothing new and re-pushes at most once more.
 */
export async function notificationSend(ctx: WorkerContext, data: JobPayloads['notification.send']): Promise<'delivered' | 'duplicate' | 'no_user'> {
  const user = await findUserById(ctx.db, data.userId);
  if (!user) return 'no_user';
  const inserted = await insertNotificationOnce(ctx.db, {
    id: data.notificationId,
    userId: data.userId,
    kind: data.kind,
    payload: { text: TEXT[data.kind] },
  });
  if (!inserted) return 'duplicate';
  const event = { type: 'notification', id: data.notificationId, kind: data.kind, text: TEXT[data.kind] };
  const { key, args } = userEventsEntry(ctx.config.redis.prefix, [{ userId: data.userId, json: JSON.stringify(event) }]);
  await ctx.redis.xadd(key, ...args);
  return 'delivered';
}
