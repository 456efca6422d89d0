#!/usr/bin/env node
// The `pod-responder` command (package.json `bin`). In an installed package there are no sources: it runs the
// compiled CLI, dist/client/cli.js (the image runs that file directly). In a checkout it runs the TypeScript
// source through tsx, a devDependency, so `npm ci && npx pod-responder` works with no build step, and never runs a
// stale dist/ left by an earlier `npm run build`.
import { existsSync } from 'node:fs';

const source = new URL('../client/cli.ts', import.meta.url);
const built = new URL('../dist/client/cli.js', import.meta.url);

const tsx = existsSync(source) ? await import('tsx/esm/api').catch(() => undefined) : undefined;
if (tsx) {
  tsx.register();
  await import(source.href);
} else if (existsSync(built)) {
  await import(built.href);
} else {
  process.stderr.write('pod-responder: neither tsx (`npm ci` installs it) nor a build (`npm run build`) found\n');
  process.exit(1);
}
