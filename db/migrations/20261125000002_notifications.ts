import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  // Delivered notifications; the id is the job's idempotency key, so a job that
  // runs twice inserts once.
  await knex.schema.createTable('notifications', (t) => {
    t.uuid('id').primary({ constraintName: 'notifications_pkey' });
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE').withKeyName('notifications_user_fk');
    t.text('kind').notNullable();
    t.jsonb('payload').notNullable().defaultTo('{}');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('read_at', { useTz: true });
    t.index(['user_id', 'created_at'], 'notifications_user_created_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('notifications');
}
