// The `yaml` library, loaded the first time a policy needs it: the block reader (block-yaml.ts)
// reads most policies alone, and then guestwall does not pay yaml's import (tens of ms at start).
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

let loaded: typeof Yaml | undefined;

export function yamlLib(): typeof Yaml {
  loaded ??= createRequire(import.meta.url)('yaml') as typeof Yaml;
  return loaded;
}
