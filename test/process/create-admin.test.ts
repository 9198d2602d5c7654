/**
 * `npm run create-admin`: bad arguments get a usage line and exit 2 with nothing
 * changed; an existing account is promoted, given the new password, and its
 * sessions end.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { registerUser, useSystem } from '../helpers/system.js';
import { testEnv } from '../helpers/config.js';

const system = useSystem(test);

function createAdmin(env: Record<string, string>, args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'scripts/create-admin.ts', ...args], {
    env: testEnv(env),
    encoding: 'utf8',
    timeout: 60_000,
  });
}

test('bad arguments: a usage line, exit 2, no stack, nobody created', async (t) => {
  const sys = system();
  const email = `ops.${randomUUID()}@example.com`;
  for (const [args, pattern] of [
    [['--email', email, '--pasword', 'long enough pw'], /^create-admin: Unknown option '--pasword'.*\nusage: npm run create-admin/s],
    [['--email'], /^create-admin: Option '--email <value>' argument missing\nusage:/],
    [['--email', email, '--name', 'x'.repeat(101), '--password', 'long enough pw'], /^create-admin: --name must be 1..100 characters/],
    [['--email', email, '--name', 'Ops\u0007', '--password', 'long enough pw'], /^create-admin: --name must be/],
    [['--email', email, '--name', '   ', '--password', 'long enough pw'], /^create-admin: --name must be/],
    [['--email', email, '--password', 'short'], /^create-admin: the password must be 8..128 characters/],
    [['--name', 'Ops'], /^usage: npm run create-admin/],
  ] as const) {
    const res = createAdmin(sys.env, [...args]);
    t.is(res.status, 2, `${args.join(' ')}: ${res.stderr}`);
    t.regex(res.stderr, pattern, args.join(' '));
    t.notRegex(res.stderr, /\n\s+at /, 'no stack trace');
  }
  t.falsy(await sys.db('users').where({ email }).first(), 'nobody was created');
});

test('an existing account is promoted, takes the new password, and its sessions end', async (t) => {
  const sys = system();
  const user = await registerUser(sys, 'buyer');
  const res = createAdmin(sys.env, ['--email', user.email, '--password', 'the new admin password']);
  t.is(res.status, 0, res.stderr);
  t.regex(res.stdout, /is now an admin .*1 session\(s\) ended/);
  t.is((await sys.db('users').where({ id: user.id }).first()).role, 'admin');
  t.is((await sys.api.post('/api/v1/auth/refresh', { refreshToken: user.refreshToken })).status, 401, 'the old session is over');
  const login = await sys.api.post('/api/v1/auth/login', { email: user.email, password: 'the new admin password' });
  t.is(login.status, 200);
  t.is(login.body.user.role, 'admin');
});
