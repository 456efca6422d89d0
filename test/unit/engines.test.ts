import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';

const semver = createRequire(import.meta.url)('semver') as { satisfies(version: string, range: string): boolean };
const read = (file: string) => JSON.parse(readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8'));

describe('Node.js versions', () => {
  const pkg = read('package.json') as { engines: { node: string } };
  // The oldest Node.js 20 that package.json accepts (this machine's line), and a current 22 LTS (the image's).
  const supported = ['20.19.0', '22.20.0'];

  it('package.json accepts the versions the README names', () => {
    for (const v of supported)
      expect(semver.satisfies(v, pkg.engines.node), `engines.node "${pkg.engines.node}" refuses ${v}`).toBe(true);
  });

  it('no installed package refuses them (npm would warn EBADENGINE, and the package may not run)', () => {
    const lock = read('package-lock.json') as { packages: Record<string, { engines?: unknown }> };
    const refusing = Object.entries(lock.packages).flatMap(([where, p]) => {
      const range =
        p.engines && typeof p.engines === 'object' && 'node' in p.engines ? String(p.engines.node) : undefined;
      return range
        ? supported
            .filter((v) => !semver.satisfies(v, range))
            .map((v) => `${where || 'pod-responder'} (node ${range}) refuses ${v}`)
        : [];
    });
    expect(refusing).toEqual([]);
  });
});
