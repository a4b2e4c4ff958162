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

const FS_PROBLEMS: Record<string, string> = {
  EROFS: 'the file system is read-only',
  ENOSPC: 'no space is left on the device',
  EDQUOT: 'the disk quota is used up',
  EACCES: 'permission denied',
  EPERM: 'operation not permitted',
  EISDIR: 'it is a directory',
  ENOTDIR: 'a part of its path is not a directory',
  EIO: 'an input/output error',
};

/** A file system error on guestwall's state as one line that says what to do; other errors as they are. */
export function stateIoError(e: unknown, path: string, doing: 'read' | 'write'): unknown {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined || !(code in FS_PROBLEMS)) return e;
  return new ApplyError(
    `cannot ${doing} ${path}: ${FS_PROBLEMS[code]} (${code}); nothing was changed`,
    code === 'ENOSPC' || code === 'EDQUOT' ? 'free some space there, or pass --state-dir DIR' : 'make the state directory writable by root, or pass --state-dir DIR',
    2,
  );
}
