// Debian's headless Chromium through playwright-core (no browser download), as every browser
// test launches it: a fresh profile directory, removed again by close().

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';

const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** Resolves to { context, close() } with a persistent context of the given viewport. */
export async function launchChromium(viewport) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-compat-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
    viewport,
    timeout: 60000,
  });
  const close = async () => {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  };
  return { context, close };
}
