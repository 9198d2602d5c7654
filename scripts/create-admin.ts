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
import { revokeOtherFamilies } from '../db/operations/refresh-tokens.js';
import { hashPassword } from '../edge/http/services/auth.js';
import { text } from '../edge/http/schemas.js';

const USAGE = 'usage: npm run create-admin -- --email EMAIL [--name NAME] [--password PASSWORD]';
const config = getConfigOrExit('create-admin');
let values: { email?: string; name?: string; password?: string };
try {
  ({ values } = parseArgs({ options: { email: { type: 'string' }, name: { type: 'string' }, password: { type: 'string' } } }));
} catch (err) {
  // An unknown option or a missing value: parseArgs's own message, no stack.
  console.error(`create-admin: ${(err as Error).message}\n${USAGE}`);
  process.exit(2);
}

const email = values.email?.trim().toLowerCase();
if (!email || !/^[^@\s]+@[^@\s]+$/.test(email)) {
  console.error(USAGE);
  process.exit(2);
}
// The rule a name has at registration (1..100 characters, one line, not blank).
const name = values.name?.trim();
if (name !== undefined && text(100).validate(name).error) {
  console.error('create-admin: --name must be 1..100 characters on one line, with no control characters');
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
    // A new password for an account: its sessions end, as at a change of
    // password (whoever holds them signs in again, with the new one).
    const ended = await db.transaction(async (trx) => {
      await setUserRole(trx, existing.id, 'admin');
      await updatePasswordHash(trx, existing.id, hash);
      return revokeOtherFamilies(trx, existing.id, null, 'admin_reset');
    });
    console.log(`create-admin: ${email} is now an admin (id ${existing.id}); ${ended} session(s) ended`);
  } else {
    const user = await insertUser(db, { email, name: name ?? 'Administrator', role: 'admin', passwordHash: hash });
    console.log(`create-admin: created admin ${email} (id ${user.id})`);
  }
} catch (err) {
  console.error(`create-admin: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await db.destroy();
}
