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

export function createDb(config: Config, overrides: { database?: string; poolMax?: number } = {}): Knex {
  return knexFactory(knexConfig(config, overrides));
}
