// Errors a user can meet when guestwall touches a host: each says what happened and what to do.
export class ApplyError extends Error {
  constructor(
    message: string,
    /** What to do next, in one line. */
    readonly hint?: string,
    /** Exit code for the CLI: 1 refused or failed, 2 cannot run here at all. */
    readonly exitCode: 1 | 2 = 1,
  ) {
    super(message);
    this.name = 'ApplyError';
  }
}
