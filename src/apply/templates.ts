// Where the text templates of this package are, and reading the guest snippets' ones: templates/
// sits beside src/ when running from the source tree (the tests), and beside dist/ when built.
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { SNIPPET_TEMPLATES, type SnippetTemplates } from '../emit/snippets.js';

export function templatesDir(): string {
  const up = import.meta.url.endsWith('/dist/src/apply/templates.js') ? '../../../' : '../../';
  return fileURLToPath(new URL(`${up}templates/`, import.meta.url));
}

/** The path of every template the guest snippets are made from. */
export function snippetTemplatePaths(): string[] {
  return SNIPPET_TEMPLATES.map((name) => join(templatesDir(), name));
}

/** Read the snippet templates through `read` (the CLI's Io), for the pure renderer. */
export function readSnippetTemplates(read: (path: string) => string): SnippetTemplates {
  return Object.fromEntries(SNIPPET_TEMPLATES.map((name) => [name, read(join(templatesDir(), name))])) as SnippetTemplates;
}
