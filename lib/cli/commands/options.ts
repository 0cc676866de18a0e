/** Parsing of option values shared by the commands: each bad value is refused before anything is done. */
import { VolumeError } from '../../errors.js';

export function wholeNumber(text: string, what: string, minimum = 1): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < minimum) {
    throw VolumeError.badInput(`${what} '${text}' is not a whole number of at least ${minimum}`);
  }
  return value;
}

/** `--rpo`: a duration in whole seconds (`30`, `30s`, `5m`), or 0 for "only at synch points". */
export function parseRpo(text: string, what = '--rpo'): number {
  const m = /^\s*(\d+)\s*(s|m|h|d)?\s*$/.exec(text);
  const seconds = m ? Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86_400 }[(m[2] ?? 's') as 's' | 'm' | 'h' | 'd'] : NaN;
  if (!Number.isSafeInteger(seconds) || seconds > 86_400 * 24) {
    throw VolumeError.badInput(`${what} '${text}' is not a whole number of seconds up to 24 days`, 'e.g. --rpo 30s, --rpo 5m, or --rpo 0 (only at synch points)');
  }
  return seconds;
}

/** S3 settings from `--s3-endpoint` / `--no-s3-path-style` (credentials only ever come from the AWS environment). */
export function s3Settings(options: { s3Endpoint?: string; s3PathStyle?: boolean }): { endpoint?: string; pathStyle?: boolean } {
  const endpoint = options.s3Endpoint ?? (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^/@\s]+(\/.*)?$/.test(endpoint)) {
    throw VolumeError.badInput(`--s3-endpoint '${endpoint}' is not an http(s) URL`, 'e.g. --s3-endpoint http://127.0.0.1:7480 (credentials go in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)');
  }
  return { endpoint, pathStyle: options.s3PathStyle === false ? false : undefined };
}

/** How to reach an archive given by path: the options every command that reads one takes. */
export interface ArchiveAccess {
  s3Endpoint?: string;
  encryptKeyFile?: string;
}
