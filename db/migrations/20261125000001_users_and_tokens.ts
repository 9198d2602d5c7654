import type { Knex } from 'knex';

export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('users', (t) => {
    t.uuid('id').primary({ constraintName: 'users_pkey' }).defaultTo(knex.raw('gen_random_uuid()'));
    t.text('email').notNullable();
    t.text('name').notNullable();
    t.text('role').notNullable().defaultTo('buyer');
    t.text('password_hash').notNullable();
    t.timestamp('password_changed_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('updated_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.check("role in ('buyer', 'seller', 'admin')", [], 'users_role_check');
    t.check('email = lower(email)', [], 'users_email_lower_check');
  });
  await knex.raw('create unique index users_email_unique on users (email)');

  // Refresh tokens are opaque; only their SHA-256 is stored. A family is one login
  // session: every rotation adds a row to it, and reuse of a used row revokes it.
  await knex.schema.createTable('refresh_tokens', (t) => {
    t.uuid('id').primary({ constraintName: 'refresh_tokens_pkey' }).defaultTo(knex.raw('gen_random_uuid()'));
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE').withKeyName('refresh_tokens_user_fk');
    t.uuid('family_id').notNullable();
    t.text('token_hash').notNullable().unique({ indexName: 'refresh_tokens_hash_unique' });
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('expires_at', { useTz: true }).notNullable();
    t.timestamp('used_at', { useTz: true });
    t.timestamp('revoked_at', { useTz: true });
    t.text('revoked_reason');
    t.index(['family_id'], 'refresh_tokens_family_idx');
    t.index(['user_id'], 'refresh_tokens_user_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('refresh_tokens');
  await knex.schema.dropTable('users');
}
