/**
 * A mount's log: one line per event that matters (mounted, unmounted, writes stalled and
 * resumed, archive trouble, recovery at open, synch points), with its level and its volume, on
 * stderr: `salvo: <level>: <volume>: <what>`. Under systemd (JOURNAL_STREAM set, stderr in the
 * journal) each line starts with the syslog priority journald takes it by (`<4>` …), so
 * `journalctl -p warning` finds the trouble; elsewhere (mount.log with --daemon) with the time.
 */
export type Level = 'error' | 'warning' | 'notice' | 'info';

const PRIORITY: Record<Level, number> = { error: 3, warning: 4, notice: 5, info: 6 };

export class EventLog {
  private readonly journal: boolean;

  constructor(
    /** The volume directory, or the archive's location for a mount of an archive alone. */
    readonly subject: string,
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
    env: NodeJS.ProcessEnv = process.env,
    private readonly now: () => Date = () => new Date(),
  ) {
    this.journal = Boolean(env.JOURNAL_STREAM);
  }

  event(level: Level, message: string): void {
    const prefix = this.journal ? `<${PRIORITY[level]}>` : `${this.now().toISOString()} `;
    // One event, one line: a message never spans lines, whatever an error's text holds.
    this.write(`${prefix}salvo: ${level}: ${this.subject}: ${message.replace(/\s*\n\s*/g, ' ')}\n`);
  }

  error(message: string): void {
    this.event('error', message);
  }

  warning(message: string): void {
    this.event('warning', message);
  }

  notice(message: string): void {
    this.event('notice', message);
  }

  info(message: string): void {
    this.event('info', message);
  }
}
