/**
 * Procfile `release`: `migrate.ts latest` (default) or `migrate.ts rollback`.
 * Outside production it creates the database first when it does not exist.
 */
import { getConfigOrExit } from '../lib/env.js';
import { createDb } from '../db/client.js';
import { ensureDatabase } from './db-admin.js';

const config = getConfigOrExit('release');
const action = process.argv[2] ?? 'latest';
if (action !== 'latest' && action !== 'rollback') {
  process.stderr.write('usage: migrate.ts latest|rollback\n');
  process.exit(2);
}

try {
  if (config.env !== 'production' && (await ensureDatabase(config)) === 'created') {
    console.log(`release: created database ${config.db.database}`);
  }
  const db = createDb(config, { poolMax: 2 });
  try {
    const [batch, files] = action === 'latest' ? await db.migrate.latest() : await db.migrate.rollback();
    console.log(`release: ${action} batch ${batch}: ${files.length ? files.join(', ') : 'nothing to do'}`);
  } finally {
    await db.destroy();
  }
} catch (err) {
  console.error(`release: migration failed: ${(err as Error).message}`);
  process.exit(1);
}
