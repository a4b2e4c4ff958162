// The host's end of the test guest's probe agent (./guest-init.ts): a unix socket QEMU serves as
// the guest's ttyS1. Commands go in as "<id> <sh>", results come back as "RES <id> <rc> <out>",
// and every connection the guest accepts is reported as "GOT tcp <port> <local> <peer>".
import { type Socket, connect } from 'node:net';

export interface Accepted {
  port: number;
  /** "192.168.60.10:80" as netstat prints it (IPv6 with its colons; IPv4 without a ::ffff: prefix). */
  local: string;
  peer: string;
}

export interface RunResult {
  code: number;
  out: string;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class GuestAgent {
  private buf = '';
  private readonly lines: string[] = [];
  private readonly waiters = new Set<() => void>();
  private next = 1;
  private closed = false;

  private constructor(readonly name: string, private readonly sock: Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      this.buf += d;
      let nl: number;
      while ((nl = this.buf.indexOf('\n')) >= 0) {
        this.lines.push(this.buf.slice(0, nl).replace(/\r$/, ''));
        this.buf = this.buf.slice(nl + 1);
      }
      for (const w of [...this.waiters]) w();
    });
    sock.on('close', () => {
      this.closed = true;
      for (const w of [...this.waiters]) w();
    });
    sock.on('error', () => undefined);
  }

  /** Connect to the agent socket of a domain QEMU has just started, and wait until the guest says READY. */
  static async connect(name: string, path: string, ms: number): Promise<GuestAgent> {
    const until = Date.now() + ms;
    let sock: Socket | undefined;
    while (sock === undefined) {
      sock = await new Promise<Socket | undefined>((resolve) => {
        const s = connect(path);
        s.once('connect', () => resolve(s));
        s.once('error', () => resolve(undefined));
      });
      if (sock === undefined) {
        if (Date.now() > until) throw new Error(`${name}: no agent socket at ${path}`);
        await sleep(100);
      }
    }
    const a = new GuestAgent(name, sock);
    if ((await a.waitLine((l) => l === 'READY', until - Date.now())) === undefined) {
      a.close();
      throw new Error(`${name}: the guest did not report READY within ${ms / 1000} s`);
    }
    const failed = a.lines.filter((l) => l.startsWith('FAIL '));
    if (failed.length > 0) {
      a.close();
      throw new Error(`${name}: the guest's setup failed:\n${failed.join('\n')}`);
    }
    return a;
  }

  private waitLine(match: (l: string) => boolean, ms: number, from = 0): Promise<string | undefined> {
    const find = () => this.lines.slice(from).find(match);
    const found = find();
    if (found !== undefined || ms <= 0) return Promise.resolve(found);
    return new Promise((resolve) => {
      const done = (l: string | undefined) => {
        clearTimeout(timer);
        this.waiters.delete(check);
        resolve(l);
      };
      const check = () => {
        const l = find();
        if (l !== undefined || this.closed) done(l);
      };
      const timer = setTimeout(() => done(undefined), ms);
      this.waiters.add(check);
    });
  }

  /** Run one shell command in the guest (busybox sh); its exit code and output. */
  async run(cmd: string, ms = 20_000): Promise<RunResult> {
    if (this.closed) throw new Error(`${this.name}: the agent connection is closed`);
    if (cmd.includes('\n')) throw new Error('one line per command');
    const id = this.next++;
    this.sock.write(`${id} ${cmd}\n`);
    const line = await this.waitLine((l) => l.startsWith(`RES ${id} `), ms);
    if (line === undefined) throw new Error(`${this.name}: no answer to '${cmd}' within ${ms / 1000} s`);
    const m = /^RES \d+ (\d+) ?(.*)$/.exec(line)!;
    return { code: Number(m[1]), out: m[2]!.replace(/\|/g, '\n').trim() };
  }

  /** Connections the guest accepted so far. */
  accepted(): Accepted[] {
    return this.lines.flatMap((l) => {
      const m = /^GOT tcp (\d+) (\S+) (\S+)$/.exec(l);
      // nc listens on both families: IPv4 peers show as ::ffff:a.b.c.d.
      const v4 = (a: string) => a.replace(/^::ffff:(\d+\.)/, '$1');
      return m ? [{ port: Number(m[1]), local: v4(m[2]!), peer: v4(m[3]!) }] : [];
    });
  }

  /** How many accepted-connection reports there are now: pass it to acceptedSince. */
  mark(): number {
    return this.accepted().length;
  }

  /** Connections accepted after `mark`, waiting up to `ms` for at least one. */
  async acceptedSince(mark: number, ms: number): Promise<Accepted[]> {
    const until = Date.now() + ms;
    while (this.accepted().length <= mark && Date.now() < until && !this.closed) await sleep(50);
    return this.accepted().slice(mark);
  }

  close(): void {
    this.closed = true;
    this.sock.destroy();
  }
}
