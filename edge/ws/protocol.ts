/**
 * The client → server frames of the WebSocket protocol (API.md), validated with
 * joi. A frame that fails gets an `error` frame; the connection stays open.
 */
import Joi from 'joi';
import { NO_CONTROLS_OR_LONE_SURROGATES, uuid } from '../http/schemas.js';

export const MAX_FRAME_BYTES = 16 * 1024;

export type ClientFrame =
  | { type: 'ping' }
  | { type: 'subscribe'; auctionId: string; sinceSeq?: number }
  | { type: 'unsubscribe'; auctionId: string }
  | { type: 'chat.send'; auctionId: string; text: string; clientMsgId?: string };

// The REST side's rule: hyphenated, either case, lowercased.
const auctionId = uuid().required();

const FRAME = Joi.alternatives().conditional('.type', {
  switch: [
    { is: 'ping', then: Joi.object({ type: Joi.string().required() }) },
    { is: 'subscribe', then: Joi.object({ type: Joi.string().required(), auctionId, sinceSeq: Joi.number().integer().min(0) }) },
    { is: 'unsubscribe', then: Joi.object({ type: Joi.string().required(), auctionId }) },
    {
      is: 'chat.send',
      then: Joi.object({
        type: Joi.string().required(),
        auctionId,
        // 1..500 characters (code points) is chat.ts's check; here only a bound
        // on size, since Joi counts UTF-16 units (an emoji is two).
        // One line, as REST's text(): no control characters (NUL: Postgres text
        // cannot hold it), no unpaired surrogate (no UTF-8 form), not only spaces.
        text: Joi.string().min(1).max(1_000).pattern(NO_CONTROLS_OR_LONE_SURROGATES, 'no control characters or unpaired surrogates').pattern(/\S/, 'not blank').required(),
        clientMsgId: Joi.string().max(64).pattern(NO_CONTROLS_OR_LONE_SURROGATES, 'no control characters or unpaired surrogates'),
      }),
    },
  ],
  otherwise: Joi.any().forbidden().messages({ 'any.unknown': 'unknown frame type' }),
});

export type ParseResult = { ok: true; frame: ClientFrame } | { ok: false; code: 'bad_frame' | 'unknown_type'; message: string };

export function parseFrame(raw: ArrayBuffer, isBinary: boolean): ParseResult {
  if (isBinary) return { ok: false, code: 'bad_frame', message: 'frames are JSON text' };
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(raw).toString('utf8'));
  } catch {
    return { ok: false, code: 'bad_frame', message: 'frame is not valid JSON' };
  }
  if (!value || typeof value !== 'object' || Array.isArray(value) || typeof (value as { type?: unknown }).type !== 'string') {
    return { ok: false, code: 'bad_frame', message: 'a frame is a JSON object with a string `type`' };
  }
  const { error, value: frame } = FRAME.validate(value, { abortEarly: true, convert: false });
  if (error) {
    const unknownType = error.details[0]?.type === 'any.unknown';
    return { ok: false, code: unknownType ? 'unknown_type' : 'bad_frame', message: error.message };
  }
  return { ok: true, frame: frame as ClientFrame };
}
