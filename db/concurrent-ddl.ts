/**
 * Helpers for migrations that change a busy table without stalling the bid
 * path: index builds and drops run concurrently (outside a transaction, on one
 * connection, without the statement timeout), an index left invalid by an
 * interrupted build is dropped so the next run builds it again, and a statement
 * that needs an exclusive lock asks for it with a short lock_timeout and tries
 * again, rather than queueing every bid's intake behind a long transaction.
 *
 * Kept out of db/migrations/ (knex would load it as a migration).
 */
import type { Knex } from 'knex';
import { withPooledConnection } from './client.js';

/** Runs `statements` on one connection, with no statement timeout. */
export async function onOneConnection(knex: Knex, statements: string[]): Promise<void> {
  await withPooledConnection(knex, async (connection) => {
    try {
      await connection.query({ text: 'set statement_timeout = 0' });
      for (const sql of statements) await connection.query({ text: sql });
    } finally {
      await connection.query({ text: 'reset statement_timeout' }).catch(() => undefined);
    }
  });
}

/** Runs `sql` in a transaction that waits at most 2 s for its locks; tries up to 10 times. */
export async function withShortLockWait(knex: Knex, sql: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await knex.transaction(async (trx) => {
        await trx.raw("set local lock_timeout = '2s'");
        await trx.raw('set local statement_timeout = 0');
        await trx.raw(sql);
      });
      return;
    } catch (err) {
      // 55P03: lock_not_available.
      if ((err as { code?: string }).code !== '55P03' || attempt >= 10) throw err;
      await new Promise((r) => setTimeout(r, 1_000));
    }
  }
}

/** Drops index `name` when a build of it was interrupted and left it invalid. */
export async function dropIfInvalid(knex: Knex, name: string): Promise<void> {
  const { rows } = await knex.raw('select 1 from pg_index i join pg_class c on c.oid = i.indexrelid where c.relname = ? and not i.indisvalid', [name]);
  if (rows.length > 0) await onOneConnection(knex, [`drop index concurrently if exists ${name}`]);
}
