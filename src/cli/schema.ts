// guestwall schema: the JSON Schema of the policy language, generated from the validator itself.
import { policyJsonSchema } from '../policy/schema.js';
import { EXIT, type Io } from './io.js';

export function schemaCommand(io: Io): number {
  io.out(`${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
  return EXIT.ok;
}
