import type { z } from 'zod';

/** Renders zod issues as `path: message` lines, the exact form users see in errors. */
export function formatIssues(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => {
    const path = issue.path.length ? issue.path.map(String).join('.') : '(root)';
    return `${path}: ${issue.message}`;
  });
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
