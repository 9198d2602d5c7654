import knexFactory, { type Knex } from 'knex';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Config } from '../lib/env.js';

export type { Knex };

const here = path.dirname(fileURLToPath(import.meta.url));
export const MIGRATIONS_DIR = path.join(here, 'migrations');

/**
 * The knex configuration for `config`: pool max from DB_POOL_MAX (25 default),
 * a statement timeout and an idle-in-transaction timeout on every connection,
 * and a connect timeout. Migrations are always the `.ts` files run through tsx,
 * in development and production alike, so knex's recorded names never differ.
 */
export function knexConfig(config: Config, overrides: { database?: string; poolMax?: number } = {}): Knex.Config {
  const base = config.db.connection;
  const timeouts = {
    statement_timeout: config.db.statementTimeoutMs,
    idle_in_transaction_session_timeout: config.db.idleInTransactionTimeoutMs,
    connectionTimeoutMillis: config.db.connectTimeoutMs,
    application_name: 'blytz',
  };
  let connection: Knex.PgConnectionConfig;
  if (typeof base === 'string') {
    const url = new URL(base);
    if (overrides.database) url.pathname = `/${overrides.database}`;
    connection = { connectionString: url.toString(), ...timeouts };
  } else {
    connection = { ...base, database: overrides.database ?? base.database, ...timeouts };
  }
  return {
    client: 'pg',
    connection,
    pool: { min: 0, max: overrides.poolMax ?? config.db.poolMax },
    acquireConnectionTimeout: config.db.connectTimeoutMs,
    migrations: {
      directory: MIGRATIONS_DIR,
      loadExtensions: ['.ts'],
      tableName: 'knex_migrations',
    },
  };
}

/**
 * Query options that run a raw statement as a named prepared statement, for the
 * bid path's hot statements (recording bids, a round's look/lock/read and write,
 * publish marks). Postgres then parses and analyzes it once per connection and,
 * after a few runs, may keep a generic plan. Those statements are large CTEs over
 * array parameters, and preparing them each time cost more than running them:
 * the round's look/lock/read took 3.8 ms unprepared and 1.3 ms prepared, and at
 * 3,000 bids/s Postgres spent ~12% less CPU per bid (README, Performance).
 *
 * Rules for a statement named here (its name must be unique in the code base):
 * - Its text never changes at run time (node-postgres refuses a name reused for
 *   another text on a connection).
 * - Its result columns are listed, never a table's `*`: after a migration adds a
 *   column, Postgres refuses to run a cached plan whose result type changed
 *   ("cached plan must not change result type") until the connection is replaced.
 *   Plans are otherwise re-made by Postgres itself after any schema change.
 * - Connections go to Postgres directly or through a pooler in session mode, or
 *   PgBouncer 1.21+ with max_prepared_statements set (transaction pooling loses
 *   named statements between transactions otherwise).
 */
export const prepared = (name: string): Readonly<{ name: string }> => ({ name });

export function createDb(config: Config, overrides: { database?: string; poolMax?: number } = {}): Knex {
  return knexFactory(knexConfig(config, overrides));
}
