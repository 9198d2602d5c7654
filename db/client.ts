import knexFactory, { type Knex } from 'knex';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import type { Config } from '../lib/env.js';
import type { Logger } from '../lib/logger.js';
import { queryWatchdog } from './query-watchdog.js';

export type { Knex };

const here = path.dirname(fileURLToPath(import.meta.url));
export const MIGRATIONS_DIR = path.join(here, 'migrations');

/**
 * The knex configuration for `config`: pool max from DB_POOL_MAX (25 default),
 * a statement timeout and an idle-in-transaction timeout on every connection,
 * and a connect timeout.
 *
 * Every connection also plans with random_page_cost DB_RANDOM_PAGE_COST (1.1,
 * the usual value for SSDs and for data that is in memory; Postgres's default
 * of 4 models spinning disks). Why it matters here: with the default, a lookup
 * by primary key in a small table (a few pages: the users of a young
 * marketplace, the auctions' counters) is planned as a sequential scan, and
 * the foreign-key checks of every bid (bids.bidder_id, auctions.leader_id:
 * `SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE`) then read every user,
 * each of them locked by other bids' checks, so each visibility check looks up
 * a multixact. In the bids benchmark (200 bidders) that was 2.4 scans of the
 * users table per bid, and 1.1 took 13–21% off Postgres's CPU per bid (README,
 * Performance). It goes in the startup `options`, after any `options` of a
 * DATABASE_URL (kept; node-postgres then ignores PGOPTIONS). DB_RANDOM_PAGE_COST
 * =off sends nothing, for poolers that refuse `options` (PgBouncer 1.20+ does,
 * for settings it does not track): there, `ALTER ROLE … SET random_page_cost`
 * does the same. Migrations are always the `.ts` files run through tsx,
 * in development and production alike, so knex's recorded names never differ.
 */
export function knexConfig(config: Config, overrides: DbOverrides = {}): Knex.Config {
  const base = config.db.connection;
  const session = {
    statement_timeout: config.db.statementTimeoutMs,
    idle_in_transaction_session_timeout: config.db.idleInTransactionTimeoutMs,
    connectionTimeoutMillis: config.db.connectTimeoutMs,
    application_name: 'blytz',
  };
  let connection: Knex.PgConnectionConfig;
  // node-postgres lets a URL's own parameters override the config's: a URL's
  // `options` are taken out of it and put first in ours.
  let own: string | null = null;
  if (typeof base === 'string') {
    const url = new URL(base);
    if (overrides.database) url.pathname = `/${overrides.database}`;
    own = url.searchParams.get('options');
    url.searchParams.delete('options');
    connection = { connectionString: url.toString(), ...session };
  } else {
    connection = { ...base, database: overrides.database ?? base.database, ...session };
  }
  const planner = config.db.randomPageCost === null ? null : `-c random_page_cost=${config.db.randomPageCost}`;
  const options = [own, planner].filter(Boolean).join(' ');
  if (options) connection.options = options;
  return {
    client: 'pg',
    connection,
    pool: {
      min: 0,
      max: overrides.poolMax ?? config.db.poolMax,
      // The statement timeout and a margin: see query-watchdog.ts.
      ...(overrides.watchdog && config.db.statementTimeoutMs > 0 ? queryWatchdog(config.db.statementTimeoutMs + 5_000) : {}),
    },
    acquireConnectionTimeout: config.db.connectTimeoutMs,
    ...(overrides.logger ? { log: knexLog(overrides.logger) } : {}),
    migrations: {
      directory: MIGRATIONS_DIR,
      loadExtensions: ['.ts'],
      tableName: 'knex_migrations',
    },
  };
}

/**
 * Runs one of the bid path's hot statements as a named prepared statement:
 * `query` gets the options to pass to knex's `.options()`. Used for recording
 * bids, a round's look/lock/read and write, and publish marks. Postgres then
 * parses and analyzes the statement once per connection and, after a few runs,
 * may keep a generic plan. Those statements are large CTEs over array
 * parameters, and preparing them each time cost more than running them: the
 * round's look/lock/read took 3.8 ms unprepared and 1.3 ms prepared, and at
 * 3,000 bids/s Postgres spent ~12% less CPU per bid (README, Performance).
 *
 * Rules for a statement run here (its name must be unique in the code base):
 * - Its text never changes at run time (node-postgres refuses a name reused for
 *   another text on a connection).
 * - Its result columns are listed, never a table's `*`. Postgres re-plans a
 *   prepared statement by itself after a schema change, but refuses one whose
 *   result type changed ("cached plan must not change result type", 0A000), and
 *   node-postgres would keep sending it on that connection. A `*` would change
 *   with every column a migration adds.
 * - A migration that changes the type of a listed result column still changes
 *   it: then the statement fails once, and every later run uses a new name,
 *   prepared afresh on each connection. `retry` runs it again at once under the
 *   new name; only for a statement that is not inside a transaction (there the
 *   failure has aborted the transaction, and the caller's retry takes it).
 * - Connections go to Postgres directly or through a pooler in session mode, or
 *   PgBouncer 1.21+ with max_prepared_statements set (transaction pooling loses
 *   named statements between transactions otherwise).
 */
export async function runPrepared<T>(name: string, query: (options: Readonly<{ name: string }>) => Promise<T>, { retry = false } = {}): Promise<T> {
  try {
    return await query(preparedName(name));
  } catch (err) {
    if ((err as { code?: string }).code !== '0A000') throw err;
    renewals.set(name, (renewals.get(name) ?? 0) + 1);
    if (!retry) throw err;
    return query(preparedName(name));
  }
}

/** Per statement name, how many times its result type changed under it in this process. */
const renewals = new Map<string, number>();
const preparedName = (name: string) => ({ name: renewals.has(name) ? `${name}_${renewals.get(name)}` : name });

/**
 * A transaction run on one pooled connection through node-postgres directly,
 * for a drain's rounds: a knex transaction costs ~335 µs of CPU and ~100 KB of
 * garbage for BEGIN, one statement and COMMIT, against ~123 µs and ~10 KB this
 * way (2,000 transactions, warm). At full load a round carries ~100 bids and
 * that does not matter; at low load a bid's drain runs two rounds, and the
 * worker's young-generation pauses (8–35 ms here) are part of its latency tail.
 */
export interface RawTx {
  readonly kind: 'raw';
  query(text: string, values: readonly unknown[], options?: Readonly<{ name: string }>): Promise<{ rows: any[] }>;
}

/** What the bid path's statements run on: a knex connection or transaction, or a RawTx. */
export type Queryable = Knex | RawTx;

const positional = new Map<string, string>();

/**
 * `sql` with knex's `?` placeholders as `$1, $2, …`, written by knex's own
 * Postgres dialect (positionBindings): a named statement run both ways on one
 * connection must have the same text, or node-postgres refuses it.
 */
function toPositional(db: Knex, sql: string): string {
  let text = positional.get(sql);
  if (text === undefined) {
    // knex gives `??` (an identifier) a meaning of its own, before this step: not supported here.
    if (sql.includes('??')) throw new Error('rawTransaction: `??` placeholders are not supported');
    text = (db.client as unknown as { positionBindings(sql: string): string }).positionBindings(sql);
    positional.set(sql, text);
  }
  return text;
}

/** Runs `sql` (knex placeholders) with `values` on `on`; `options.name` makes it a named prepared statement. */
export function runQuery(on: Queryable, sql: string, values: readonly unknown[], options?: Readonly<{ name: string }>): Promise<{ rows: any[] }> {
  if ('kind' in on && on.kind === 'raw') return on.query(sql, values, options);
  const q = (on as Knex).raw(sql, values as Knex.RawBinding[]);
  return (options ? q.options(options) : q) as unknown as Promise<{ rows: any[] }>;
}

export interface PgConnection {
  query(config: { text: string; values?: readonly unknown[]; name?: string }): Promise<{ rows: any[] }>;
}

/**
 * Runs `fn` with a connection of `db`'s pool to itself (knex's own pool: a
 * connection that broke is marked by knex and never handed out again), and gives
 * it back whatever happens.
 */
export async function withPooledConnection<T>(db: Knex, fn: (connection: PgConnection) => Promise<T>): Promise<T> {
  const pool = db.client as unknown as { acquireConnection(): Promise<PgConnection>; releaseConnection(c: PgConnection): Promise<unknown> };
  const connection = await pool.acquireConnection();
  try {
    return await fn(connection);
  } finally {
    await pool.releaseConnection(connection);
  }
}

/**
 * Runs `fn` in a transaction on a connection of `db`'s pool, without knex's
 * transaction machinery (see RawTx). Commits when `fn` resolves, rolls back when
 * it throws.
 */
export async function rawTransaction<T>(db: Knex, fn: (tx: RawTx) => Promise<T>): Promise<T> {
  return withPooledConnection(db, async (connection) => {
    await connection.query({ text: 'BEGIN' });
    let open = true;
    const tx: RawTx = {
      kind: 'raw',
      query: (sql, values, options) => {
        // As knex: no statement after the transaction ended (it would run on a
        // connection someone else holds by then), and no undefined value (pg
        // would send NULL without a word).
        if (!open) return Promise.reject(new Error('rawTransaction: the transaction has ended'));
        if (values.some((v) => v === undefined || (Array.isArray(v) && v.includes(undefined)))) {
          return Promise.reject(new Error(`rawTransaction: undefined value in ${options?.name ?? 'a statement'}`));
        }
        return connection.query({ text: toPositional(db, sql), values, ...(options ? { name: options.name } : {}) });
      },
    };
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      open = false;
      await connection.query({ text: 'ROLLBACK' }).catch(() => undefined);
      throw err;
    }
    open = false;
    await connection.query({ text: 'COMMIT' });
    return result;
  });
}

export interface DbOverrides {
  database?: string;
  poolMax?: number;
  /** Drop connections whose query has no answer past the statement timeout (see query-watchdog.ts): the app's roles, not migrations. */
  watchdog?: boolean;
  /**
   * Where knex's own warnings go (a connection that could not be made, say). By
   * default knex prints them, stack and all, on the console: a role's log is
   * JSON lines, and an operator's tools read them.
   */
  logger?: Logger;
}

/** knex's log calls as pino lines: the message's first line (a stack stays out). */
function knexLog(logger: Logger): NonNullable<Knex.Config['log']> {
  const text = (m: unknown) => String(m instanceof Error ? m.message : m).split('\n')[0];
  return {
    warn: (m: unknown) => logger.warn({ knex: text(m) }, 'database warning'),
    error: (m: unknown) => logger.error({ knex: text(m) }, 'database error'),
    deprecate: (method: string, alternative: string) => logger.warn({ method, alternative }, 'knex deprecation'),
    debug: () => undefined,
  };
}

export function createDb(config: Config, overrides: DbOverrides = {}): Knex {
  return knexFactory(knexConfig(config, overrides));
}
