import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * The README is short and points into docs/; a moved or renamed section must not leave a dead link. Checks every
 * relative Markdown link in README.md and docs/*.md: the file exists, and a #fragment names a heading there
 * (GitHub's anchors: lowercase, punctuation dropped, spaces as "-").
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const pages = [
  'README.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

export function anchor(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/\s/g, '-');
}

function anchorsOf(file: string): Set<string> {
  const text = readFileSync(path.join(ROOT, file), 'utf8').replace(/```[\s\S]*?```/g, '');
  return new Set([...text.matchAll(/^#{1,6}\s+(.+)$/gm)].map((m) => anchor(m[1]!)));
}

function linksOf(file: string): { target: string; fragment?: string }[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8')
    .replace(/```[\s\S]*?```/g, '')
    .replace(/`[^`\n]*`/g, '');
  return [...text.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((href) => !/^[a-z]+:/i.test(href))
    .map((href) => {
      const [target = '', fragment] = href.split('#');
      return {
        target: target === '' ? file : path.posix.join(path.posix.dirname(file), target),
        ...(fragment ? { fragment } : {}),
      };
    });
}

describe('documentation links', () => {
  it('the README stays short (a newcomer reads it in ten minutes)', () => {
    const lines = readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n').length;
    expect(lines, 'README.md: put the detail in docs/ and a one-line pointer in the README').toBeLessThanOrEqual(300);
  });

  it('the README links every page in docs/ (a page nobody links is a page nobody reads)', () => {
    const linked = new Set(linksOf('README.md').map((l) => l.target));
    expect(pages.filter((p) => p !== 'README.md' && !linked.has(p))).toEqual([]);
  });

  it.each(pages)('%s: every relative link reaches a file and heading that exist', (file) => {
    const dead = linksOf(file).flatMap(({ target, fragment }) => {
      if (!existsSync(path.join(ROOT, target))) return [`${target}${fragment ? `#${fragment}` : ''}: no such file`];
      if (fragment && target.endsWith('.md') && !anchorsOf(target).has(fragment))
        return [`${target}#${fragment}: no such heading`];
      return [];
    });
    expect(dead).toEqual([]);
  });

  it('anchors follow GitHub: "Alert floods and Temporal\'s limits" is #alert-floods-and-temporals-limits', () => {
    expect(anchor("Alert floods and Temporal's limits")).toBe('alert-floods-and-temporals-limits');
    expect(anchor('Runbook: `needs-manual-action`')).toBe('runbook-needs-manual-action');
  });
});
