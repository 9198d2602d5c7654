/** Joi building blocks shared by route declarations. */
import Joi from 'joi';
import { UUID_PATTERN } from '../../lib/uuid.js';

/**
 * A UUID in its canonical form (hyphenated hex), in either case, and lowercased
 * everywhere (paths, queries and bodies alike: clients such as Swift's
 * `uuidString` send upper case), so one id has one spelling: Postgres would accept
 * `{…}` or hyphenless forms, but partitions and keys are computed from the text.
 */
export { UUID_PATTERN };
const UUID_ANY_CASE = new RegExp(UUID_PATTERN.source, 'i');
export const uuid = () =>
  Joi.string()
    .pattern(UUID_ANY_CASE, 'uuid')
    // A custom rule's value is kept even where input is not converted (bodies).
    .custom((value: string) => value.toLowerCase());
export const email = () => Joi.string().email({ tlds: { allow: false } }).max(254);
export const password = () => Joi.string().min(8).max(128).pattern(/^[^\uD800-\uDFFF]*$/u, 'no unpaired surrogates');
/**
 * Text has no unpaired UTF-16 surrogate (`"\ud800"` is valid JSON): such a
 * string has no UTF-8 form, so Postgres would store U+FFFD for it, or refuse it
 * inside a JSON event. (In a `u` pattern, a surrogate pair is one code point,
 * outside the class; only an unpaired one is in it.)
 */
export const NO_CONTROLS_OR_LONE_SURROGATES = /^[^\p{Cc}\uD800-\uDFFF]+$/u;
/** A one-line text: 1..max characters, no control characters or unpaired surrogates, not only spaces (a name, a title). */
export const text = (max: number) =>
  Joi.string().min(1).max(max).pattern(NO_CONTROLS_OR_LONE_SURROGATES, 'no control characters or unpaired surrogates').pattern(/\S/u, 'not blank');
/** A multi-line text (a description): no control characters but line breaks and tabs, no unpaired surrogate. */
export const longText = (max: number) =>
  Joi.string()
    .max(max)
    .allow('')
    .pattern(/^[^\0-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\uD800-\uDFFF]*$/u, 'no control characters but line breaks and tabs, no unpaired surrogates');
/**
 * An ISO-8601 UTC timestamp (API.md): a date and time with a four-digit year
 * and a zone (`Z` or an offset), naming a day the calendar has. Joi's isoDate()
 * alone also takes:
 * - expanded, signed years (`+010000-01-01T…`): past JavaScript's last date they
 *   made an auction's end an Invalid Date, and Postgres reads the sign as a time
 *   zone; either way a 500. Year 0000 too: Postgres has none;
 * - no zone (`2999-01-01T10:00`), read in the server's own time zone;
 * - days the month lacks (`2999-02-30`), silently moved to the next month.
 */
export const isoDate = () =>
  Joi.string()
    .isoDate()
    .pattern(/^(?!0000)\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/i, 'date and time with a four-digit year from 0001 and a zone')
    .custom((value: string, helpers) => {
      const [y, m, d] = value.slice(0, 10).split('-').map(Number) as [number, number, number];
      const day = new Date(Date.UTC(2000, m - 1, d));
      day.setUTCFullYear(y);
      return day.getUTCMonth() === m - 1 && day.getUTCDate() === d ? value : helpers.message({ custom: 'is not a day of the calendar' });
    });

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
/** ISO 4217 codes, lowercase (ICU's list, as Node ships it). */
const ISO_CURRENCIES = new Set(Intl.supportedValuesOf('currency').map((c) => c.toLowerCase()));

export const currency = () =>
  Joi.string()
    .pattern(/^[a-z]{3}$/, 'lowercase ISO currency')
    .custom((value: string, helpers) => (ISO_CURRENCIES.has(value) ? value : helpers.error('any.invalid')))
    .messages({ 'any.invalid': '{{#label}} is not an ISO 4217 currency code' });
