import { execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

/**
 * A merge's conflict lines inside a comment or a Markdown page pass the compiler, the linter and every other test
 * (one did, once). No tracked file may hold a line that is exactly a conflict marker.
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

describe('conflict markers', () => {
  it('no tracked file holds a line of a merge conflict', () => {
    let found = '';
    try {
      found = execFileSync('git', ['grep', '-n', '-I', '-E', '^(<{7} |>{7} |={7}$)', '--', '.', ':!test/histories/'], {
        cwd: ROOT,
        encoding: 'utf8',
      });
    } catch (err) {
      // git grep exits 1 when nothing matches: the passing case.
      if ((err as { status?: number }).status !== 1) throw err;
    }
    expect(found).toBe('');
  });
});
