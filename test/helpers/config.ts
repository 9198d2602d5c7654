import { randomBytes } from 'node:crypto';
import { loadConfig, type Config } from '../../lib/env.js';

/** Connection settings the suite inherits from the environment (CI may override them). */
const INHERITED = ['DB_HOST', 'DB_PORT', 'DB_USER', 'DB_PASSWORD', 'REDIS_HOST', 'REDIS_PORT', 'REDIS_PASSWORD', 'PATH', 'HOME'];

/** A fresh, unique name for per-file isolation. */
export const uniqueId = (prefix: string) => `${prefix}_${Date.now().toString(36)}_${randomBytes(4).toString('hex')}`;

/** Environment for a test process or in-process app: test mode, silent logs, high limits. */
export function testEnv(overrides: Record<string, string> = {}): Record<string, string> {
  const env: Record<string, string> = {};
  for (const k of INHERITED) if (process.env[k] !== undefined) env[k] = process.env[k]!;
  return {
    ...env,
    ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    HOST: '127.0.0.1',
    PORT: '0',
    WS_PORT: '0',
    RATE_LIMIT_GENERAL_PER_MIN: '100000',
    RATE_LIMIT_AUTH_PER_MIN: '100000',
    RATE_LIMIT_USER_PER_MIN: '100000',
    FAILED_LOGINS_PER_HOUR: '1000',
    SHUTDOWN_GRACE_MS: '5000',
    ...overrides,
  };
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig(testEnv(overrides));
}
