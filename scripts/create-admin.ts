/**
 * Creates an admin (or promotes an existing user to admin):
 *   npm run create-admin -- --email ops@example.com --name "Ops" [--password ...]
 * Without --password it reads one from ADMIN_PASSWORD or prompts for it.
 */
import { parseArgs } from 'node:util';
import readline from 'node:readline/promises';
import { getConfigOrExit } from '../lib/env.js';
import { createDb } from '../db/client.js';
import { findUserByEmail, insertUser, setUserRole, updatePasswordHash } from '../db/operations/users.js';
import { hashPassword } from '../edge/http/services/auth.js';

const config = getConfigOrExit('create-admin');
const { values } = parseArgs({
  options: { email: { type: 'string' }, name: { type: 'string' }, password: { type: 'string' } },
});

const email = values.email?.trim().toLowerCase();
if (!email || !/^[^@\s]+@[^@\s]+$/.test(email)) {
  console.error('usage: npm run create-admin -- --email EMAIL [--name NAME] [--password PASSWORD]');
  process.exit(2);
}
let password = values.password ?? process.env.ADMIN_PASSWORD;
if (!password) {
  const rl = readline.createInterface({ input: process.stdin, output: process.stdout });
  password = await rl.question('password (8..128 characters): ');
  rl.close();
}
if (password.length < 8 || password.length > 128) {
  console.error('create-admin: the password must be 8..128 characters');
  process.exit(2);
}

const db = createDb(config, { poolMax: 1 });
try {
  const hash = await hashPassword(config, password);
  const existing = await findUserByEmail(db, email);
  if (existing) {
    await setUserRole(db, existing.id, 'admin');
    await updatePasswordHash(db, existing.id, hash);
    console.log(`create-admin: ${email} is now an admin (id ${existing.id})`);
  } else {
    const user = await insertUser(db, { email, name: values.name ?? 'Administrator', role: 'admin', passwordHash: hash });
    console.log(`create-admin: created admin ${email} (id ${user.id})`);
  }
} catch (err) {
  console.error(`create-admin: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
