import { WebSocket } from 'ws';
import { waitFor } from './auctions.js';

export interface Client {
  ws: WebSocket;
  frames: Record<string, any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  send: (frame: unknown) => void;
  /** Waits for a frame matching `pred` (searching all frames so far). */
  next: (pred: (f: Record<string, any>) => boolean, ms?: number) => Promise<Record<string, any>>; // eslint-disable-line @typescript-eslint/no-explicit-any
  close: () => void;
}

/** A real WebSocket client (`ws`) connected to `url`, collecting every frame. */
export async function connectWs(url: string, token?: string): Promise<Client> {
  const ws = new WebSocket(token ? `${url}?token=${token}` : url);
  const frames: Record<string, unknown>[] = [];
  ws.on('message', (d) => frames.push(JSON.parse(d.toString())));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    ws,
    frames,
    send: (frame) => ws.send(JSON.stringify(frame)),
    next: (pred, ms = 10_000) => waitFor(async () => frames.find(pred), ms, 'a frame'),
    close: () => ws.close(),
  };
}

/** The seqs of an auction's events among `frames`, in arrival order. */
export function seqs(frames: Record<string, unknown>[], auctionId: string): number[] {
  return frames.filter((f) => f.auctionId === auctionId && typeof f.seq === 'number' && f.type !== 'subscribed').map((f) => f.seq as number);
}
