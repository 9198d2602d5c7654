/**
 * Queue names: never renamed without a migration of the jobs in them.
 * Each queue's BullMQ prefix puts the queue name in braces (`blytz:{notifications}`)
 * so all of a queue's keys share one Redis Cluster hash slot.
 */
export const QUEUE_NAMES = ['notifications'] as const;
export type QueueName = (typeof QUEUE_NAMES)[number];

export function queuePrefix(redisPrefix: string, queue: QueueName): string {
  return `${redisPrefix}:{${queue}}`;
}
