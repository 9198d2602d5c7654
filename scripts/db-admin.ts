/** Database housekeeping shared by scripts and tests: reachability and creation. */
import type { Config } from '../lib/env.js';
import { createDb } from '../db/client.js';

/** Connects to the server's `postgres` database; throws when Postgres is unreachable. */
export async function ensureDatabase(config: Config, database = config.db.database): Promise<'created' | 'exists'> {
  const admin = createDb(config, { database: 'postgres', poolMax: 1 });
  try {
    const { rows } = await admin.raw('select 1 from pg_database where datname = ?', [database]);
    if (rows.length > 0) return 'exists';
    try {
      await admin.raw('create database ??', [database]);
    } catch (err) {
      if ((err as { code?: string }).code !== '42P04') throw err; // created concurrently
    }
    return 'created';
  } finally {
    await admin.destroy();
  }
}
