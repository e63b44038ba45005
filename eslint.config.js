import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['dist/', 'web/dist/', 'node_modules/', 'var/', '.scratch/', 'test/artifacts/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-restricted-imports': 'off',
    },
  },
  {
    // The slide reader, the annotation library and the toolbox are pure libraries shared by the server, CLI and jobs.
    files: ['server/wsi/**', 'server/annotations/**', 'server/toolbox/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['koa', 'koa-*', '@koa/*', 'knex', '**/http/**', '**/db/**'] }],
    },
  },
);
