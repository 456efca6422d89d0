import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ALL_ENV_NAMES } from '../../config/config.js';
import { REFERENCE_FILE, renderConfigReference, settings } from '../../config/reference.js';

describe('docs/configuration.md, the configuration reference', () => {
  it('is what the schema generates (after a change to config/config.ts or the policy: npm run docs:config)', () => {
    const written = readFileSync(REFERENCE_FILE, 'utf8');
    expect(
      written === renderConfigReference(),
      'docs/configuration.md is stale: run `npm run docs:config` and commit it',
    ).toBe(true);
  });

  it('describes every setting (give a new one a .describe() in the schema)', () => {
    const undescribed = settings()
      .filter((s) => !s.description)
      .map((s) => s.path);
    expect(undescribed, 'settings without a .describe() in config/config.ts (or domain/policy.ts)').toEqual([]);
  });

  it('names every environment variable the configuration reads', () => {
    const reference = renderConfigReference();
    const missing = ALL_ENV_NAMES.filter((name) => !reference.includes(`| \`${name}\` |`));
    // A variable in ENV_VARS is listed by itself; a JSON-valued one needs its entry in JSON_ENV_VARS (config/reference.ts).
    expect(
      missing,
      'variables missing from the reference: add JSON-valued ones to JSON_ENV_VARS in config/reference.ts',
    ).toEqual([]);
  });

  it('shows each setting with its variable, type and default', () => {
    const rows = settings();
    expect(rows.find((s) => s.path === 'temporal.address')).toMatchObject({
      env: 'TEMPORAL_ADDRESS',
      default: '`"localhost:7233"`',
    });
    expect(rows.find((s) => s.path === 'forwarder.sources.<source>.token')).toMatchObject({
      env: 'POD_RESPONDER_<SOURCE>_TOKEN',
    });
    expect(rows.find((s) => s.path === 'policy.evidenceSeconds')).toMatchObject({
      type: 'integer (≥ 0, ≤ 300)',
      default: '`20`',
    });
    // A default that is a path inside the checkout is shown relative to it, so the file is the same in every clone.
    expect(rows.find((s) => s.path === 'eks.lambdaZip')?.default).toBe('`"dist/lambda/remediation.zip"`');
  });
});
