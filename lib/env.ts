/**
 * Configuration: one joi schema over the environment, validated once, typed,
 * frozen and cached. Nothing here runs at import time; processes call
 * `getConfig()` at start-up and tests call `loadConfig({...})` with overrides.
 */
import Joi from 'joi';
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';

export type Environment = 'development' | 'test' | 'production';

export interface Config {
  env: Environment;
  logLevel: string;
  port: number;
  wsPort: number;
  host: string;
  corsOrigins: string[];
  trustProxyHops: number;
  bodyLimit: string;
  db: {
    connection: string | {
      host: string;
      port: number;
      user: string;
      password: string;
      database: string;
      ssl: false | { rejectUnauthorized: boolean };
    };
    database: string;
    poolMax: number;
    statementTimeoutMs: number;
    connectTimeoutMs: number;
    idleInTransactionTimeoutMs: number;
    /** The planner's random_page_cost on the app's connections (see db/client.ts); null: the server's. */
    randomPageCost: number | null;
  };
  redis: { url: string | null; host: string; port: number; password: string | null; prefix: string };
  jwt: {
    privateKey: string | null;
    previousPublicKeys: string[];
    issuer: string;
    audience: string;
    accessTtlSeconds: number;
    refreshTtlSeconds: number;
    devKeysDir: string;
  };
  passwordHash: { memoryCost: number; timeCost: number; parallelism: number };
  rateLimits: {
    generalPerMinute: number;
    authPerMinute: number;
    userPerMinute: number;
    bidsPerMinute: number;
    failedLoginsPerHour: number;
  };
  stripe: { secretKey: string | null; webhookSecret: string | null; apiBase: string | null };
  livekit: { host: string; apiKey: string | null; apiSecret: string | null };
  metricsToken: string | null;
  shutdownGraceMs: number;
  /**
   * After SIGTERM, how long a listening role keeps serving with /readyz at 503
   * before it stops accepting: time for a load balancer to take it out of
   * rotation (0: stop accepting at once).
   */
  shutdownDelayMs: number;
  /** The catalog's Redis read-through cache (off only to measure without it). */
  catalogCache: boolean;
  /** Words refused in chat (lowercase). */
  chatBlockedWords: string[];
  /** About how many events each auction's Redis stream keeps (replay history). */
  auctionStreamMaxlen: number;
  /** How often the broadcaster closes sockets whose session has ended (logout, password change, reuse). */
  wsSessionCheckMs: number;
}

/** Variables that must be set in production; in development they have safe defaults. */
export const PRODUCTION_SECRETS = [
  'JWT_PRIVATE_KEY',
  'STRIPE_SECRET_KEY',
  'STRIPE_WEBHOOK_SECRET',
  'LIVEKIT_API_KEY',
  'LIVEKIT_API_SECRET',
] as const;

const port = Joi.number().integer().min(0).max(65535);
const positive = Joi.number().integer().min(1);

const schema = Joi.object({
  ENV: Joi.string().valid('development', 'test', 'production').default('development'),
  NODE_ENV: Joi.string().optional(),
  LOG_LEVEL: Joi.string().valid('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent').default('info'),
  PORT: port.default(8080),
  WS_PORT: port.default(8081),
  HOST: Joi.string().default('0.0.0.0'),
  CORS_ORIGINS: Joi.string().allow('').default(''),
  TRUST_PROXY_HOPS: Joi.number().integer().min(0).max(10).default(0),
  BODY_LIMIT: Joi.string().pattern(/^\d+(b|kb|mb)$/).default('100kb'),

  DATABASE_URL: Joi.string().uri({ scheme: ['postgres', 'postgresql'] }).optional(),
  DB_HOST: Joi.string().default('127.0.0.1'),
  DB_PORT: port.default(5432),
  DB_USER: Joi.string().default('postgres'),
  DB_PASSWORD: Joi.string().allow('').default(''),
  DB_NAME: Joi.string().pattern(/^[A-Za-z0-9_]+$/).default('blytz'),
  DB_SSL_MODE: Joi.string().valid('disable', 'require', 'verify-full').default('disable'),
  DB_POOL_MAX: positive.max(500).default(25),
  DB_STATEMENT_TIMEOUT_MS: positive.default(10_000),
  DB_CONNECT_TIMEOUT_MS: positive.default(5_000),
  DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: positive.default(30_000),
  DB_RANDOM_PAGE_COST: Joi.alternatives(Joi.number().min(0.1).max(100), Joi.string().valid('off')).default(1.1),

  REDIS_URL: Joi.string().uri({ scheme: ['redis', 'rediss'] }).optional(),
  REDIS_HOST: Joi.string().default('127.0.0.1'),
  REDIS_PORT: port.default(6379),
  REDIS_PASSWORD: Joi.string().allow('').default(''),
  REDIS_PREFIX: Joi.string().pattern(/^[A-Za-z0-9_:.-]+$/).default('blytz'),

  JWT_PRIVATE_KEY: Joi.string().optional(),
  JWT_PREVIOUS_PUBLIC_KEYS: Joi.string().allow('').default(''),
  JWT_ISSUER: Joi.string().default('https://api.blytz.live'),
  JWT_AUDIENCE: Joi.string().default('blytz-clients'),
  JWT_ACCESS_TTL_SECONDS: positive.max(24 * 3600).default(15 * 60),
  JWT_REFRESH_TTL_SECONDS: positive.default(30 * 24 * 3600),
  JWT_DEV_KEYS_DIR: Joi.string().default('.dev'),

  ARGON2_MEMORY_KIB: Joi.number().integer().min(8192).optional(),
  ARGON2_TIME_COST: Joi.number().integer().min(1).optional(),

  RATE_LIMIT_GENERAL_PER_MIN: positive.default(100),
  RATE_LIMIT_AUTH_PER_MIN: positive.default(20),
  RATE_LIMIT_USER_PER_MIN: positive.default(300),
  RATE_LIMIT_BIDS_PER_MIN: positive.default(120),
  FAILED_LOGINS_PER_HOUR: positive.default(10),

  STRIPE_SECRET_KEY: Joi.string().optional(),
  STRIPE_WEBHOOK_SECRET: Joi.string().optional(),
  STRIPE_API_BASE: Joi.string().uri().optional(),
  LIVEKIT_HOST: Joi.string().uri().default('http://127.0.0.1:7880'),
  LIVEKIT_API_KEY: Joi.string().optional(),
  LIVEKIT_API_SECRET: Joi.string().optional(),

  METRICS_TOKEN: Joi.string().min(16).optional(),
  SHUTDOWN_GRACE_MS: positive.default(10_000),
  SHUTDOWN_DELAY_MS: Joi.number().integer().min(0).max(60_000).default(0),
  CATALOG_CACHE: Joi.string().valid('on', 'off').default('on'),
  CHAT_BLOCKED_WORDS: Joi.string().allow('').default('scam,fraud,wire transfer'),
  AUCTION_STREAM_MAXLEN: Joi.number().integer().min(1000).max(1_000_000).default(2000),
  WS_SESSION_CHECK_MS: Joi.number().integer().min(100).max(600_000).default(10_000),
}).unknown(true);

export class ConfigError extends Error {
  override name = 'ConfigError';
}

function pemFromEnv(value: string): string {
  // Platforms often store PEMs on one line with literal "\n".
  return value.includes('\\n') ? value.replace(/\\n/g, '\n') : value;
}

/** Validates `source` (the environment by default) and returns a frozen config. */
export function loadConfig(source: Record<string, string | undefined> = process.env): Config {
  const { value: v, error } = schema.validate(source, { abortEarly: false, convert: true });
  if (error) {
    throw new ConfigError(`invalid configuration: ${error.details.map((d) => d.message).join('; ')}`);
  }
  // NODE_ENV=production, which hosting platforms and buildpacks set, means
  // production here too: without ENV it would otherwise run with development's
  // stand-in secrets. Said otherwise by ENV, it is refused rather than guessed.
  const nodeProduction = source.NODE_ENV === 'production';
  if (nodeProduction && source.ENV !== undefined && v.ENV !== 'production') {
    throw new ConfigError(`ENV=${String(v.ENV)} contradicts NODE_ENV=production: set ENV=production, or unset NODE_ENV`);
  }
  const env = (nodeProduction ? 'production' : v.ENV) as Environment;
  if (env === 'production') {
    const missing = PRODUCTION_SECRETS.filter((k) => !v[k]);
    if (!v.DATABASE_URL && !v.DB_PASSWORD) missing.push('DATABASE_URL or DB_PASSWORD' as never);
    if (missing.length > 0) {
      throw new ConfigError(`missing required production configuration: ${missing.join(', ')}`);
    }
  }
  const privateKey = v.JWT_PRIVATE_KEY ? pemFromEnv(v.JWT_PRIVATE_KEY) : null;
  const previousPublicKeys = splitPems(pemFromEnv(v.JWT_PREVIOUS_PUBLIC_KEYS));
  checkKeys(privateKey, v.JWT_PREVIOUS_PUBLIC_KEYS, previousPublicKeys);
  if (v.SHUTDOWN_DELAY_MS >= v.SHUTDOWN_GRACE_MS) {
    throw new ConfigError(`SHUTDOWN_DELAY_MS (${v.SHUTDOWN_DELAY_MS}) must be less than SHUTDOWN_GRACE_MS (${v.SHUTDOWN_GRACE_MS}): the delay is part of the grace period`);
  }
  const ssl = v.DB_SSL_MODE === 'disable' ? false : { rejectUnauthorized: v.DB_SSL_MODE === 'verify-full' };
  const dbName = v.DATABASE_URL ? new URL(v.DATABASE_URL).pathname.replace(/^\//, '') : v.DB_NAME;
  const config: Config = {
    env,
    logLevel: v.LOG_LEVEL,
    port: v.PORT,
    wsPort: v.WS_PORT,
    host: v.HOST,
    corsOrigins: String(v.CORS_ORIGINS).split(',').map((s) => s.trim()).filter(Boolean),
    trustProxyHops: v.TRUST_PROXY_HOPS,
    bodyLimit: v.BODY_LIMIT,
    db: {
      connection: v.DATABASE_URL ?? {
        host: v.DB_HOST,
        port: v.DB_PORT,
        user: v.DB_USER,
        password: v.DB_PASSWORD,
        database: v.DB_NAME,
        ssl,
      },
      database: dbName,
      poolMax: v.DB_POOL_MAX,
      statementTimeoutMs: v.DB_STATEMENT_TIMEOUT_MS,
      connectTimeoutMs: v.DB_CONNECT_TIMEOUT_MS,
      idleInTransactionTimeoutMs: v.DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
      randomPageCost: v.DB_RANDOM_PAGE_COST === 'off' ? null : Number(v.DB_RANDOM_PAGE_COST),
    },
    redis: {
      url: v.REDIS_URL ?? null,
      host: v.REDIS_HOST,
      port: v.REDIS_PORT,
      password: v.REDIS_PASSWORD || null,
      prefix: v.REDIS_PREFIX,
    },
    jwt: {
      privateKey,
      previousPublicKeys,
      issuer: v.JWT_ISSUER,
      audience: v.JWT_AUDIENCE,
      accessTtlSeconds: v.JWT_ACCESS_TTL_SECONDS,
      refreshTtlSeconds: v.JWT_REFRESH_TTL_SECONDS,
      devKeysDir: v.JWT_DEV_KEYS_DIR,
    },
    // argon2id: the library defaults (64 MiB, t=3) in production; the OWASP
    // minimum (19 MiB, t=2) in tests so suites stay fast.
    passwordHash: {
      memoryCost: v.ARGON2_MEMORY_KIB ?? (env === 'test' ? 19_456 : 65_536),
      timeCost: v.ARGON2_TIME_COST ?? (env === 'test' ? 2 : 3),
      parallelism: 1,
    },
    rateLimits: {
      generalPerMinute: v.RATE_LIMIT_GENERAL_PER_MIN,
      authPerMinute: v.RATE_LIMIT_AUTH_PER_MIN,
      userPerMinute: v.RATE_LIMIT_USER_PER_MIN,
      bidsPerMinute: v.RATE_LIMIT_BIDS_PER_MIN,
      failedLoginsPerHour: v.FAILED_LOGINS_PER_HOUR,
    },
    stripe: {
      secretKey: v.STRIPE_SECRET_KEY ?? (env === 'production' ? null : 'sk_test_development'),
      webhookSecret: v.STRIPE_WEBHOOK_SECRET ?? (env === 'production' ? null : 'whsec_development'),
      apiBase: v.STRIPE_API_BASE ?? null,
    },
    livekit: {
      host: v.LIVEKIT_HOST,
      apiKey: v.LIVEKIT_API_KEY ?? (env === 'production' ? null : 'devkey'),
      apiSecret: v.LIVEKIT_API_SECRET ?? (env === 'production' ? null : 'devsecret-devsecret-devsecret-00'),
    },
    metricsToken: v.METRICS_TOKEN ?? null,
    shutdownGraceMs: v.SHUTDOWN_GRACE_MS,
    shutdownDelayMs: v.SHUTDOWN_DELAY_MS,
    catalogCache: v.CATALOG_CACHE === 'on',
    auctionStreamMaxlen: v.AUCTION_STREAM_MAXLEN,
    wsSessionCheckMs: v.WS_SESSION_CHECK_MS,
    chatBlockedWords: String(v.CHAT_BLOCKED_WORDS).split(',').map((w) => w.trim().toLowerCase()).filter(Boolean),
  };
  return deepFreeze(config);
}

/**
 * The signing key must be an RSA private key and each previous key an RSA public
 * key: a bad one was found only when the first token was signed or checked, with
 * OpenSSL's words for it ("DECODER routines::unsupported") and no variable named.
 */
function checkKeys(privateKey: string | null, previousRaw: string, previous: string[]): void {
  if (privateKey !== null) {
    let key: KeyObject;
    try {
      key = createPrivateKey(privateKey);
    } catch {
      throw new ConfigError('JWT_PRIVATE_KEY is not a private key in PEM form (-----BEGIN PRIVATE KEY-----)');
    }
    if (key.asymmetricKeyType !== 'rsa') throw new ConfigError(`JWT_PRIVATE_KEY must be an RSA key (RS256), not ${key.asymmetricKeyType}`);
    // jsonwebtoken refuses to sign RS256 with less.
    if ((key.asymmetricKeyDetails?.modulusLength ?? 0) < 2048) throw new ConfigError(`JWT_PRIVATE_KEY must be at least 2048 bits, not ${key.asymmetricKeyDetails?.modulusLength}`);
  }
  if (previousRaw.trim() && previous.length === 0) {
    throw new ConfigError('JWT_PREVIOUS_PUBLIC_KEYS holds no PEM public key (-----BEGIN PUBLIC KEY-----)');
  }
  previous.forEach((pem, i) => {
    let key: KeyObject;
    try {
      key = createPublicKey(pem);
    } catch {
      throw new ConfigError(`JWT_PREVIOUS_PUBLIC_KEYS: key ${i + 1} is not a PEM public key`);
    }
    if (key.asymmetricKeyType !== 'rsa') throw new ConfigError(`JWT_PREVIOUS_PUBLIC_KEYS: key ${i + 1} must be an RSA key (RS256), not ${key.asymmetricKeyType}`);
  });
}

function splitPems(value: string): string[] {
  return value.match(/-----BEGIN [A-Z ]+-----[\s\S]+?-----END [A-Z ]+-----/g) ?? [];
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

let cached: Config | undefined;

/** The process's config, validated on first use. */
export function getConfig(): Config {
  cached ??= loadConfig();
  return cached;
}

/**
 * For process entry points: load the config or print one clear line and exit 1.
 */
export function getConfigOrExit(role: string): Config {
  try {
    return getConfig();
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    process.stderr.write(`${role}: ${message}\n`);
    process.exit(1);
  }
}
