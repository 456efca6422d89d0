import type { z } from 'zod';

/** Renders zod issues as `path: message` lines, the exact form users see in errors. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    return `${formatPath(issue.path)}: ${issue.message}`;
  });
}

/** `a.b[0]["k8s.pod.name"]`: keys that are not plain identifiers are quoted so dotted vendor keys stay unambiguous. */
export function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return '(root)';
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else if (typeof key === 'string' && /^[A-Za-z_$][\w$-]*$/.test(key)) out += out ? `.${key}` : key;
    else out += `[${JSON.stringify(String(key))}]`;
  }
  return out;
}

/** Thrown for bad external input (alerts, config); message lists every field error. */
export class InputError extends Error {
  constructor(
    readonly what: string,
    readonly errors: string[],
  ) {
    super(`invalid ${what}:\n  - ${errors.join('\n  - ')}`);
    this.name = 'InputError';
  }
}

export function parseWith<S extends z.ZodType>(schema: S, what: string, input: unknown): z.output<S> {
  const result = schema.safeParse(input);
  if (!result.success) throw new InputError(what, formatIssues(result.error.issues));
  return result.data;
}
