// The snippet templates as files for memoryIo, and as values for the pure renderer.
import { readFileSync } from 'node:fs';
import { readSnippetTemplates, snippetTemplatePaths } from '../../src/apply/templates.js';

export function snippetTemplateFiles(): Record<string, string> {
  return Object.fromEntries(snippetTemplatePaths().map((p) => [p, readFileSync(p, 'utf8')]));
}

export const snippetTemplates = () => readSnippetTemplates((p) => readFileSync(p, 'utf8'));
