// guestwall schema: the JSON Schema of the policy language, generated from the validator itself.
// The generator lives here, not beside the schema, so that only this command loads it (~40 KB).
import { toJSONSchema } from 'zod/mini';
import { Policy } from '../policy/schema.js';
import { EXIT, type Io } from './io.js';

/** The JSON Schema editors read (yaml-language-server); generated, never written by hand. */
export function policyJsonSchema(): object {
  return toJSONSchema(Policy, { target: 'draft-2020-12', unrepresentable: 'any' });
}

export function schemaCommand(io: Io): number {
  io.out(`${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
  return EXIT.ok;
}
