// The one substitution guestwall's text templates use: `{{name}}` replaced by a value. Lists
// (one case branch per port) are rendered in code and passed in as one value.

/** Fill every `{{name}}` of a text template; a name without a value is a bug, so it throws. */
export function renderTemplate(template: string, values: Record<string, string>): string {
  return template.replace(/\{\{(.*?)\}\}/g, (_, name: string) => {
    if (!Object.hasOwn(values, name)) throw new Error(`template placeholder {{${name}}} has no value`);
    return values[name]!;
  });
}
