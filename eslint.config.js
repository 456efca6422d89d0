// @ts-check
// typescript-eslint with type information (tsconfig.json through the project service). `npm run lint:eslint`.
import js from '@eslint/js';
import { defineConfig } from 'eslint/config';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  {
    // ESLint does not read .gitignore: build output (dist/, with the Lambda bundle), tool builds and stack state,
    // and the recorded histories and alert fixtures, which are data.
    ignores: ['dist/', '.tools/', '.stack/', 'data/', 'test/histories/', 'test/fixtures/'],
  },
  js.configs.recommended,
  tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    linterOptions: { reportUnusedDisableDirectives: 'error' },
    rules: {
      // What this linter is for: a forgotten await in an activity, a handler or a shutdown path is a real bug.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/await-thenable': 'error',
      // A switch over a union without `default` must name every member; a `default` is a deliberate catch-all.
      '@typescript-eslint/switch-exhaustiveness-check': ['error', { considerDefaultExhaustiveForUnions: true }],
      // `async` without `await` is how an interface that wants a Promise (a Fastify hook, an activity, a test
      // double) is implemented, and it turns a throw into a rejection: not a finding.
      '@typescript-eslint/require-await': 'off',
      // `_name` marks a binding kept on purpose (a property dropped by a rest destructuring, a placeholder).
      '@typescript-eslint/no-unused-vars': [
        'error',
        { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_', ignoreRestSiblings: true },
      ],
      // Passing on what was caught (of type unknown) is rethrowing, not inventing a non-Error reason.
      '@typescript-eslint/prefer-promise-reject-errors': ['error', { allowThrowingUnknown: true }],
      '@typescript-eslint/only-throw-error': ['error', { allowThrowingUnknown: true }],
    },
  },
  {
    files: ['test/**/*.ts'],
    rules: {
      // Tests read untyped JSON (kube and AWS responses, Temporal histories, request bodies in the AWS test front)
      // and assert on it: an `any` there fails an assertion, it does not reach production. Typing every such read
      // would add casts, not safety.
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      // The AWS test front stringifies fields of those request bodies, as the real APIs coerce them.
      '@typescript-eslint/no-base-to-string': 'off',
    },
  },
  {
    // Plain JavaScript (the `npm start` launcher, the Lambda test bootstrap, this file) is outside tsconfig.json.
    files: ['**/*.js', '**/*.mjs'],
    extends: [tseslint.configs.disableTypeChecked],
    languageOptions: { globals: globals.node },
  },
);
