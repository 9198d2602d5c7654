/**
 * A database per test file, cloned from a migrated template. The template's name
 * carries a hash of the migrations, so a changed migration gets a new template;
 * an advisory lock makes parallel test files build it only once.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import { createDb, MIGRATIONS_DIR } from '../../db/client.js';
import type { Config } from '../../lib/env.js';
import { testConfig, uniqueId } from './config.js';

function migrationsHash(): string {
  const h = createHash('sha256');
  for (const f of fs.readdirSync(MIGRATIONS_DIR).sort()) h.update(f).update(fs.readFileSync(`${MIGRATIONS_DIR}/${f}`));
  return h.digest('hex').slice(0, 12);
}

const TEMPLATE_LOCK = 727_001;

async function ensureTemplate(config: Config): Promise<string> {
  const template = `blytz_tpl_${migrationsHash()}`;
  const admin = createDb(config, { database: 'postgres', poolMax: 1 });
  try {
    // One pooled connection: the session lock and the DDL share it.
    const trx = admin;
    await trx.raw('select pg_advisory_lock(?)', [TEMPLATE_LOCK]);
    try {
      const { rows } = await trx.raw('select 1 from pg_database where datname = ?', [template]);
      if (rows.length) return template;
      const building = `${template}_build`;
      await trx.raw('drop database if exists ??', [building]);
      await trx.raw('create database ??', [building]);
      const db = createDb(config, { database: building, poolMax: 1 });
      try {
        await db.migrate.latest();
      } finally {
        await db.destroy();
      }
      await trx.raw('alter database ?? rename to ??', [building, template]);
    } finally {
      await trx.raw('select pg_advisory_unlock(?)', [TEMPLATE_LOCK]);
    }
  } finally {
    await admin.destroy();
  }
  return template;
}

/** Creates an empty, migrated database for one test file; returns its name and a dropper. */
export async function createTestDatabase(): Promise<{ name: string; drop: () => Promise<void> }> {
  const config = testConfig();
  const template = await ensureTemplate(config);
  const name = uniqueId('blytz_t');
  const admin = createDb(config, { database: 'postgres', poolMax: 1 });
  try {
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.raw('create database ?? template ??', [name, template]);
        break;
      } catch (err) {
        // "source database is being accessed by other users": another file is cloning it.
        if ((err as { code?: string }).code !== '55006' || attempt > 50) throw err;
        await new Promise((r) => setTimeout(r, 50 + Math.random() * 100));
      }
    }
  } finally {
    await admin.destroy();
  }
  return {
    name,
    drop: async () => {
      const a = createDb(config, { database: 'postgres', poolMax: 1 });
      try {
        await a.raw('drop database if exists ?? with (force)', [name]);
      } finally {
        await a.destroy();
      }
    },
  };
}
