import { expect } from 'vitest';
import { InputError } from '../../domain/validation-errors.js';

/** The field errors `fn` throws as an InputError; fails the test if it throws anything else, or nothing. */
export function inputErrorsOf(fn: () => unknown): string[] {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InputError);
    return (err as InputError).errors;
  }
  throw new Error('expected an input error');
}
