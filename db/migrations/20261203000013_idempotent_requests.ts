import type { Knex } from 'knex';

/**
 * Idempotency-Key for the write endpoints other than bids (API.md: write
 * endpoints that enqueue work accept one; the same key from the same user returns
 * the first response and never does the work twice). Bids keep theirs on the bid
 * row. A row is claimed before the work (status null) and completed with the
 * answer before it is sent; rows expire after a day (the sweeper deletes them).
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('idempotent_requests', (t) => {
    t.uuid('user_id').notNullable();
    t.text('key').notNullable();
    // The request it was first used for: method, path and body (sha-256).
    t.text('fingerprint').notNullable();
    // The answer: status, the headers a client acts on (Content-Type, Location), body text.
    t.smallint('status');
    t.jsonb('headers');
    t.text('body');
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.raw('clock_timestamp()'));
    t.primary(['user_id', 'key'], { constraintName: 'idempotent_requests_pkey' });
    t.foreign('user_id', 'idempotent_requests_user_fk').references('users.id').onDelete('CASCADE');
    t.index(['created_at'], 'idempotent_requests_created_idx');
  });
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.dropTable('idempotent_requests');
}
