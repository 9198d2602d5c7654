/** Procfile `broadcaster`: the uWebSockets.js fan-out server on WS_PORT. */
import { getConfigOrExit } from '../../lib/env.js';
import { createLogger } from '../../lib/logger.js';
import { installShutdown } from '../../lib/shutdown.js';
import { startBroadcaster } from './server.js';

const config = getConfigOrExit('broadcaster');
const logger = createLogger('broadcaster', config.logLevel);

try {
  const b = await startBroadcaster(config, logger);
  // Signals are handled before the log line says the role is up.
  installShutdown(logger, config.shutdownGraceMs, [{ name: 'broadcaster', run: b.close }]);
  logger.info({ port: b.port }, 'broadcaster listening');
} catch (err) {
  logger.fatal({ err }, 'broadcaster failed to start');
  process.exit(1);
}
