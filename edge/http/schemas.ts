/** Joi building blocks shared by route declarations. */
import Joi from 'joi';

/**
 * A UUID in its canonical form (hyphenated hex). Lowercased where input is
 * converted (paths, queries), so one id has one spelling: Postgres would accept
 * `{…}` or hyphenless forms, but partitions and keys are computed from the text.
 */
export const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
export const uuid = () => Joi.string().lowercase().pattern(UUID_PATTERN, 'uuid');
export const email = () => Joi.string().email({ tlds: { allow: false } }).max(254);
export const password = () => Joi.string().min(8).max(128);
// Printable text without control characters.
export const text = (max: number) => Joi.string().min(1).max(max).pattern(/^[^\p{Cc}]+$/u, 'no control characters');
/**
 * An ISO-8601 date with a four-digit year. Joi's isoDate() also takes the
 * expanded, signed years (`+010000-01-01T…`): past JavaScript's last date they
 * made an auction's end an Invalid Date, and Postgres reads the sign as a time
 * zone; either way a 500. Year 0000 is refused too: Postgres has no year 0.
 */
export const isoDate = () => Joi.string().isoDate().pattern(/^(?!0000)\d{4}-/, 'four-digit year from 0001');

export const userSchema = Joi.object({
  id: uuid(),
  email: Joi.string(),
  name: Joi.string(),
  role: Joi.string().valid('buyer', 'seller', 'admin'),
  createdAt: isoDate(),
});

export const sessionSchema = Joi.object({
  accessToken: Joi.string(),
  refreshToken: Joi.string(),
  expiresIn: Joi.number().integer().description('seconds until the access token expires'),
});

/** The largest amount of money, in minor units, any body may carry. */
export const MONEY_MAX = 100_000_000_000;
/** Money: an integer number of minor units, 1..MONEY_MAX, never a string or float. */
export const money = () => Joi.number().integer().strict().min(1).max(MONEY_MAX);
export const currency = () => Joi.string().pattern(/^[a-z]{3}$/, 'lowercase ISO currency');
