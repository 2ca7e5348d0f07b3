// Launches Debian's Chromium (never a downloaded browser) through
// playwright-core, headless, with a fresh profile.

import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { chromium } from "playwright-core";

export const CHROMIUM = process.env.CHROMIUM_PATH || "/usr/bin/chromium";

const FLAGS = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Resolves to `{context, close()}`: a persistent context on a fresh profile.
 * `args` adds Chromium flags (e.g. `--host-resolver-rules=…`).
 * @param {string[]} [args]
 */
export async function launchChromium(args = []) {
  const userDataDir = await mkdtemp(path.join(tmpdir(), "cliquet-client-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: [...FLAGS, ...args],
  });
  return {
    context,
    close: async () => {
      await context.close();
      await rm(userDataDir, { recursive: true, force: true });
    },
  };
}
