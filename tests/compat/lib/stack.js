// One Herald (or, with COMPAT_CLUSTER=<n>, a cluster of n nodes behind a round-robin proxy)
// + one Laravel-like backend (auth endpoint, webhook receiver) for a test file.

import { startHerald, APPS } from './herald.js';
import { CLUSTER_NODES, startCluster } from './cluster.js';
import { startBackend, sdkFor } from './backend.js';
import { disconnectAll } from './clients.js';

/**
 * Starts the backend for `app`, then Herald with `options` (a function of the backend, so
 * webhook URLs can point at it), and points the backend's SDK at Herald.
 */
export async function startStack({ app = APPS.main, options = () => ({}) } = {}) {
  const backend = await startBackend({ app });
  let herald;
  try {
    herald = CLUSTER_NODES > 0 ? await startCluster(options(backend)) : await startHerald(options(backend));
  } catch (e) {
    await backend.close();
    throw e;
  }
  backend.attach(herald);
  return {
    herald,
    backend,
    app,
    sdk: sdkFor(herald, app),
    async stop() {
      disconnectAll();
      await backend.close();
      await herald.stop();
    },
  };
}
