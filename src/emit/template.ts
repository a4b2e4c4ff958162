// The text templates under templates/: `{{name}}` placeholders and one rule for optional and
// repeated lines, so a template reads like the file it makes.

/** A placeholder's value: a text, or a list whose line is written once per item. */
export type TemplateValue = string | readonly string[];

/**
 * Fill a template. `{{name}}` becomes its value. A line holding a list-valued placeholder is
 * written once per item, and not at all for an empty list: that is how optional lines (a list
 * of zero or one) and repeated lines (one per address) are written. A placeholder without a
 * value, or two lists on one line, is a bug in the caller, so it throws.
 */
export function fillTemplate(template: string, values: Readonly<Record<string, TemplateValue>>): string {
  const value = (name: string): TemplateValue => {
    if (!Object.hasOwn(values, name)) throw new Error(`template placeholder {{${name}}} has no value`);
    return values[name]!;
  };
  const fill = (line: string, item?: { name: string; text: string }): string =>
    line.replace(/\{\{(.*?)\}\}/g, (_, name: string) => {
      if (item && name === item.name) return item.text;
      const v = value(name);
      if (typeof v !== 'string') throw new Error(`template line has two list placeholders: ${line}`);
      return v;
    });
  const out: string[] = [];
  for (const line of template.split('\n')) {
    const lists = [...line.matchAll(/\{\{(.*?)\}\}/g)].map((m) => m[1]!).filter((name) => typeof value(name) !== 'string');
    const listName = lists[0];
    if (listName === undefined) out.push(fill(line));
    else for (const text of value(listName) as readonly string[]) out.push(fill(line, { name: listName, text }));
  }
  return out.join('\n');
}
