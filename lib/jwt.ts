/**
 * RS256 access tokens. Keys come from JWT_PRIVATE_KEY (PEM) in production; in
 * development and tests a key pair is generated once and kept in JWT_DEV_KEYS_DIR
 * so every process on the machine (edge, broadcaster, tests) shares it. The
 * `kid` is the key's RFC 7638 JWK thumbprint. Verification accepts RS256 only,
 * with a known `kid`, the configured issuer and audience.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import jwt from 'jsonwebtoken';
import type { Config } from './env.js';
import { UUID_PATTERN } from './uuid.js';
import type { Role } from '../db/tables.js';

export interface PublicJwk {
  kty: 'RSA';
  n: string;
  e: string;
  kid: string;
  alg: 'RS256';
  use: 'sig';
}

export interface KeySet {
  kid: string;
  privateKey: KeyObject | null;
  publicKeys: Map<string, KeyObject>;
  jwks: PublicJwk[];
}

/** What an access token says about its holder. */
export interface AccessClaims {
  id: string;
  role: Role;
  name: string;
  /** The refresh-token family (login session) this token was issued for. */
  sid: string;
}

function thumbprint(key: KeyObject): { kid: string; jwk: { n: string; e: string } } {
  const jwk = key.export({ format: 'jwk' }) as { n: string; e: string };
  const canonical = JSON.stringify({ e: jwk.e, kty: 'RSA', n: jwk.n });
  return { kid: createHash('sha256').update(canonical).digest('base64url'), jwk };
}

function devPrivateKeyPem(dir: string): string {
  const file = path.resolve(dir, 'jwt-private.pem');
  try {
    return fs.readFileSync(file, 'utf8');
  } catch {
    fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const pem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
    const tmp = `${file}.${process.pid}.${randomUUID()}`;
    fs.writeFileSync(tmp, pem, { mode: 0o600 });
    try {
      fs.linkSync(tmp, file); // atomic: the first process to link wins
    } catch {
      /* another process created it first */
    }
    fs.unlinkSync(tmp);
    return fs.readFileSync(file, 'utf8');
  }
}

export function loadKeys(config: Config): KeySet {
  const pem = config.jwt.privateKey ?? devPrivateKeyPem(config.jwt.devKeysDir);
  const privateKey = createPrivateKey(pem);
  if (privateKey.asymmetricKeyType !== 'rsa') throw new Error('JWT_PRIVATE_KEY must be an RSA key');
  const publicKeys = new Map<string, KeyObject>();
  const jwks: PublicJwk[] = [];
  const current = thumbprint(createPublicKey(privateKey));
  for (const key of [createPublicKey(privateKey), ...config.jwt.previousPublicKeys.map((p) => createPublicKey(p))]) {
    const { kid, jwk } = thumbprint(key);
    if (publicKeys.has(kid)) continue;
    publicKeys.set(kid, key);
    jwks.push({ kty: 'RSA', n: jwk.n, e: jwk.e, kid, alg: 'RS256', use: 'sig' });
  }
  return { kid: current.kid, privateKey, publicKeys, jwks };
}

export function signAccessToken(keys: KeySet, config: Config, claims: AccessClaims): string {
  if (!keys.privateKey) throw new Error('no signing key');
  return jwt.sign({ role: claims.role, name: claims.name, sid: claims.sid }, keys.privateKey, {
    algorithm: 'RS256',
    keyid: keys.kid,
    issuer: config.jwt.issuer,
    audience: config.jwt.audience,
    subject: claims.id,
    expiresIn: config.jwt.accessTtlSeconds,
    jwtid: randomUUID(),
  });
}

export const VERIFY_ALGORITHMS: jwt.Algorithm[] = ['RS256'];

/**
 * The public key for a token's `kid`, or null (unknown kid, bad header, or no
 * token at all). Never throws: jsonwebtoken's decode parses the payload as JSON
 * when the header says `typ: "JWT"`, and throws on one that is not; thrown here,
 * that was a 500 on every route and an uncaught exception in the broadcaster's
 * upgrade handler, which stopped the process.
 */
export function keyForToken(keys: KeySet, token: string): KeyObject | null {
  let decoded: jwt.Jwt | null;
  try {
    decoded = jwt.decode(token, { complete: true });
  } catch {
    return null;
  }
  if (!decoded || typeof decoded === 'string') return null;
  const { alg, kid } = decoded.header;
  if (alg !== 'RS256' || typeof kid !== 'string') return null;
  return keys.publicKeys.get(kid) ?? null;
}

/** Turns a verified payload into claims, or null when it lacks what we issue. */
export function claimsFromPayload(payload: unknown): AccessClaims | null {
  if (!payload || typeof payload !== 'object') return null;
  const p = payload as Record<string, unknown>;
  const roles: Role[] = ['buyer', 'seller', 'admin'];
  // The user and the session (a refresh-token family) are UUIDs, as issued: a
  // query taking them never fails on their form (endedSessions takes a batch).
  if (typeof p.sub !== 'string' || typeof p.sid !== 'string' || typeof p.name !== 'string') return null;
  if (!UUID_PATTERN.test(p.sub) || !UUID_PATTERN.test(p.sid)) return null;
  if (!roles.includes(p.role as Role)) return null;
  return { id: p.sub, role: p.role as Role, name: p.name, sid: p.sid };
}

/** The verified payload of an access token (RS256 only, known kid, iss, aud, exp), or null. */
function verifiedPayload(keys: KeySet, config: Config, token: string): jwt.JwtPayload | null {
  const key = keyForToken(keys, token);
  if (!key) return null;
  try {
    const payload = jwt.verify(token, key, { algorithms: VERIFY_ALGORITHMS, issuer: config.jwt.issuer, audience: config.jwt.audience });
    return typeof payload === 'string' ? null : payload;
  } catch {
    return null;
  }
}

/** Verifies an access token; null if invalid. */
export function verifyAccessToken(keys: KeySet, config: Config, token: string): AccessClaims | null {
  return claimsFromPayload(verifiedPayload(keys, config, token));
}

/**
 * verifyAccessToken with a bounded memo of the tokens that verified. A client
 * sends the same token with every request for the token's whole life, and the
 * RS256 check (with decoding the token twice) was the largest single CPU cost of
 * a bid at the edge. A remembered token is trusted until its own `exp` and at
 * most `ttlMs` after it was checked, so a key withdrawn from the key set stops
 * working within `ttlMs`. Tokens that fail are never remembered (each costs a
 * full check), and at most `max` are kept (the oldest go first).
 */
export function tokenVerifier(
  keys: KeySet,
  config: Config,
  opts: { max?: number; ttlMs?: number } = {},
): { verify: (token: string) => AccessClaims | null; remembered: (token: string) => boolean } {
  const max = opts.max ?? 10_000;
  const ttlMs = opts.ttlMs ?? 60_000;
  const memo = new Map<string, { claims: AccessClaims; until: number }>();
  const remembered = (token: string) => (memo.get(token)?.until ?? 0) > Date.now();
  const verify = (token: string) => {
    const now = Date.now();
    const hit = memo.get(token);
    if (hit) {
      if (now < hit.until) return hit.claims;
      memo.delete(token);
    }
    const payload = verifiedPayload(keys, config, token);
    const claims = claimsFromPayload(payload);
    if (!claims || typeof payload?.exp !== 'number') return claims;
    if (memo.size >= max) memo.delete(memo.keys().next().value!);
    memo.set(token, { claims: Object.freeze(claims), until: Math.min(payload.exp * 1000, now + ttlMs) });
    return claims;
  };
  return { verify, remembered };
}
