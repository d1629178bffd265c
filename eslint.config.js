import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'src/lib/chain/artifacts/**', '.flytrap/**', 'web/dist/**', 'scratch/**', 'bench-results/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': ['error', { allow: ['error'] }],
    },
  },
  {
    // Libraries compute, commands render: src/lib must stay usable without the CLI stack.
    files: ['src/lib/**/*.ts'],
    ignores: ['src/lib/cli/**'],
    rules: {
      'no-restricted-imports': ['error', { patterns: ['@oclif/*', 'chalk', 'ora', '@inquirer/*', 'cli-table3'] }],
      'no-console': 'error',
    },
  },
  { files: ['scripts/**', 'test/**', 'bin/**'], rules: { 'no-console': 'off' } },
  {
    // Plain JavaScript entry points run on Node.
    files: ['**/*.js', '**/*.mjs'],
    languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly', Buffer: 'readonly' } },
  },
)
