import type { Logger } from './logger.js';

export type ShutdownStep = { name: string; run: () => Promise<unknown> | unknown };

/**
 * Phased, idempotent shutdown with a deadline: steps run in order (stop intake,
 * drain, close queues, close pools); if they have not finished after `graceMs`
 * the process exits anyway with code 1. When they have, the process ends once
 * nothing holds its event loop; should something still hold it at `graceMs` (a
 * handle nobody closed), it exits then, with a warning, so a stopped role never
 * lingers.
 */
export function installShutdown(
  logger: Logger,
  graceMs: number,
  steps: ShutdownStep[],
  /**
   * True when the steps had to leave connections behind (Redis gone: a client
   * waiting to reconnect cannot be closed cleanly, and its timers would hold the
   * process until the deadline): the process exits as soon as they are done.
   */
  exitWhenDone: () => boolean = () => false,
): () => Promise<void> {
  let running: Promise<void> | undefined;
  const shutdown = (signal = 'manual'): Promise<void> => {
    running ??= (async () => {
      logger.info({ signal }, 'shutting down');
      let done = false;
      // Unref'd: it never keeps the process alive by itself.
      setTimeout(() => {
        if (done) {
          logger.warn({ graceMs }, 'shut down, but a handle still holds the process open: exiting');
          logger.flush?.();
          process.exit(process.exitCode ?? 0);
        }
        logger.error({ graceMs }, 'shutdown deadline passed, exiting');
        process.exit(1);
      }, graceMs).unref();
      let failed = false;
      for (const step of steps) {
        try {
          await step.run();
          logger.debug({ step: step.name }, 'shutdown step done');
        } catch (err) {
          failed = true;
          logger.error({ err, step: step.name }, 'shutdown step failed');
        }
      }
      done = true;
      logger.info('shutdown complete');
      logger.flush?.();
      process.exitCode = failed ? 1 : 0;
      if (exitWhenDone()) process.exit();
    })();
    return running;
  };
  // `on`, not `once`: a process can get the same signal twice (systemd or
  // `docker stop` signal the whole group, and `npm start` forwards it too). With
  // no listener left the second would kill it mid-shutdown; a repeat is a no-op
  // here, and the timer above still bounds the shutdown.
  const onSignal = (signal: NodeJS.Signals) => {
    if (running) logger.info({ signal }, 'already shutting down');
    void shutdown(signal);
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => shutdown();
}

/**
 * SHUTDOWN_DELAY_MS of a listening role: it keeps serving, with /readyz at 503
 * (the caller's flag, set before), while a load balancer takes it out of rotation.
 */
export async function shutdownDelay(logger: Logger, ms: number): Promise<void> {
  if (ms <= 0) return;
  logger.info({ ms }, 'not ready; still serving until the shutdown delay ends');
  await new Promise((r) => setTimeout(r, ms));
}
