import type { Knex } from 'knex';

/**
 * idempotent_requests, two things:
 *
 * - Repair. Migration 13 was changed after its first commit (an answer's body as
 *   jsonb, no headers; then headers jsonb and the body as text), and never shipped
 *   in its first form; a development database migrated in between has the old
 *   columns, and knex would not run 13 again. Here any database converges on the
 *   final shape; on every other one this part changes nothing.
 * - A check that a record is either a bare claim or a whole answer with a status
 *   the middleware stores (2xx to 4xx: a 5xx or a 400 gives the key back).
 */
export async function up(knex: Knex): Promise<void> {
  const columns = await knex('information_schema.columns')
    .where({ table_schema: knex.raw('current_schema()'), table_name: 'idempotent_requests' })
    .select<{ column_name: string; data_type: string }[]>('column_name', 'data_type');
  const type = (name: string) => columns.find((c) => c.column_name === name)?.data_type;
  if (!type('headers')) {
    await knex.raw('alter table idempotent_requests add column headers jsonb');
    // Answers stored then were JSON bodies, replayed with res.json.
    await knex.raw(`update idempotent_requests set headers = '{"content-type": "application/json; charset=utf-8"}' where status is not null`);
  }
  // A jsonb body held a JSON answer; its text is what the client got (bar whitespace).
  if (type('body') === 'jsonb') await knex.raw('alter table idempotent_requests alter column body type text using body::text');
  await knex.raw(`
    alter table idempotent_requests add constraint idempotent_requests_answer_check check (
      (status is null and headers is null and body is null)
      or (status between 200 and 499 and headers is not null))`);
}

export async function down(knex: Knex): Promise<void> {
  // The repair is not undone: the shape it leaves is migration 13's.
  await knex.raw('alter table idempotent_requests drop constraint idempotent_requests_answer_check');
}
