import js from '@eslint/js';
import pluginVue from 'eslint-plugin-vue';
import tseslint from 'typescript-eslint';

/** Sources that belong to a TypeScript project (tsconfig.json, or web/tsconfig.json for the portal): the type-aware rules run on these. */
const typedSources = ['server/**/*.ts', 'test/**/*.ts', 'bench/**/*.ts', 'scripts/**/*.ts', 'web/**/*.ts', 'web/src/**/*.vue'];

export default tseslint.config(
  { ignores: ['dist/', 'web/dist/', 'node_modules/', 'var/', '.scratch/', 'test/artifacts/', 'release/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  ...pluginVue.configs['flat/recommended'],
  {
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
    },
  },
  {
    // The portal's components: `<script setup lang="ts">` parsed by the TypeScript parser inside vue-eslint-parser.
    // As for .ts files, undefined names are the compiler's job (vue-tsc in `npm run typecheck`).
    files: ['**/*.vue'],
    languageOptions: { parserOptions: { parser: tseslint.parser, extraFileExtensions: ['.vue'] } },
    rules: {
      'no-undef': 'off',
      // Layout is left to the author, as in the .ts files (no formatter runs): compact one-line elements are the house style.
      'vue/max-attributes-per-line': 'off',
      'vue/singleline-html-element-content-newline': 'off',
      'vue/multiline-html-element-content-newline': 'off',
      'vue/html-self-closing': ['warn', { html: { void: 'any', normal: 'any' } }],
    },
  },
  {
    // Rules that need the type checker. Each file is checked within the project of the nearest tsconfig.json.
    files: typedSources,
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname, extraFileExtensions: ['.vue'] } },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
    },
  },
  {
    // Queries live in repositories (and server/db/ opens the connection and runs the migrations); the rest of
    // the code reaches the database through them. Tests and benchmarks may inspect a database directly.
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'knex', message: 'Only repositories (*.repository.ts) and server/db/ use knex; call a repository, or take the transaction type from server/db.' }],
          patterns: [{ group: ['knex/*'], message: 'Only repositories (*.repository.ts) and server/db/ use knex.' }],
        },
      ],
    },
  },
  {
    files: ['server/**/*.repository.ts', 'server/db/**', 'test/**', 'bench/**'],
    rules: { 'no-restricted-imports': 'off' },
  },
  {
    // The slide reader, the annotation library, the toolbox, the BagIt library and the challenge scorer are pure libraries shared by the server, CLI and jobs.
    files: ['server/wsi/**', 'server/annotations/**', 'server/toolbox/**', 'server/bagit/**', 'server/challenges/metrics/**', 'server/challenges/submissions/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['koa', 'koa-*', '@koa/*', 'knex', 'knex/*', '**/http/**', '**/db/**'] }],
    },
  },
);
