import type { Knex } from 'knex';

/**
 * Private events (acks, outbid notices, won) are kept in batches: one row per
 * drain round (or close), holding that round's events in order, instead of one
 * row per event. At full load a round writes ~1.5 private events per bid, and
 * each was a heap row, an index entry, a foreign-key check at insert and a second
 * row version when marked published: about two thirds of the rows a round wrote.
 * A batch is one insert and one mark whatever its size.
 *
 * `events` is `json` (kept as sent), not `jsonb`: the outbox never queries inside
 * it, only hands it back to the publisher. Its user ids are not foreign keys (a
 * batch names many users); an event for a user deleted since is delivered to no
 * one. `size` is the number of events, so the sweeper can bound what it sends.
 *
 * Unpublished single events move over as batches of one; published ones are
 * history nothing reads and are dropped with the table.
 */
export async function up(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_event_batches', (t) => {
    t.bigIncrements('id'); // primary key user_event_batches_pkey
    t.json('events').notNullable();
    t.integer('size').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('published_at', { useTz: true });
    t.check('size > 0', [], 'user_event_batches_size_check');
  });
  // A round's batch is tens to hundreds of KB, stored out of line (TOAST). Postgres's
  // default compression (pglz) took ~23 ms for a 3,000-event batch here; lz4 ~7 ms,
  // no slower than storing it uncompressed, and smaller. A server built without lz4
  // stores it uncompressed instead, and so does Postgres 13, which has no column
  // compression setting (run through EXECUTE, so the block compiles there).
  await knex.raw(`
    do $$ begin
      execute 'alter table user_event_batches alter column events set compression lz4';
    exception when others then
      execute 'alter table user_event_batches alter column events set storage external';
    end $$`);
  await knex.raw('create index user_event_batches_unpublished_idx on user_event_batches (id) where published_at is null');
  // Workers of the release before still write events until they stop: none may
  // commit between the copy and the drop (their rows would be dropped uncopied).
  await knex.raw('lock table user_events in exclusive mode');
  await knex.raw(
    `insert into user_event_batches (events, size, created_at)
     select json_build_array(json_build_object('userId', user_id, 'event', payload)), 1, created_at
     from user_events where published_at is null order by id`,
  );
  await knex.schema.dropTable('user_events');
}

export async function down(knex: Knex): Promise<void> {
  await knex.schema.createTable('user_events', (t) => {
    t.bigIncrements('id');
    t.uuid('user_id').notNullable().references('users.id').onDelete('CASCADE').withKeyName('user_events_user_fk');
    t.text('type').notNullable();
    t.jsonb('payload').notNullable();
    t.timestamp('created_at', { useTz: true }).notNullable().defaultTo(knex.fn.now());
    t.timestamp('published_at', { useTz: true });
  });
  await knex.raw('create index user_events_unpublished_idx on user_events (id) where published_at is null');
  await knex.raw('lock table user_event_batches in exclusive mode');
  await knex.raw(
    `insert into user_events (user_id, type, payload, created_at)
     select (e->>'userId')::uuid, e->'event'->>'type', (e->'event')::jsonb, b.created_at
     from user_event_batches b cross join lateral json_array_elements(b.events) with ordinality as x(e, ord)
     where b.published_at is null and exists (select 1 from users u where u.id = (e->>'userId')::uuid)
     order by b.id, x.ord`,
  );
  await knex.schema.dropTable('user_event_batches');
}
