/** Parsing of option values shared by the commands. */
import { VolumeError } from '../../errors.js';

export function wholeNumber(text: string, what: string, minimum = 1): number {
  const value = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(value) || value < minimum) {
    throw VolumeError.badInput(`${what} '${text}' is not a whole number of at least ${minimum}`);
  }
  return value;
}

/** S3 settings from `--s3-endpoint` / `--no-s3-path-style` (credentials only ever come from the AWS environment). */
export function s3Settings(options: Record<string, unknown>): { endpoint?: string; pathStyle?: boolean } {
  const endpoint = (options.s3Endpoint as string | undefined) ?? (process.env.AWS_ENDPOINT_URL_S3 || process.env.AWS_ENDPOINT_URL || undefined);
  if (endpoint !== undefined && !/^https?:\/\/[^/@\s]+(\/.*)?$/.test(endpoint)) {
    throw VolumeError.badInput(`--s3-endpoint '${endpoint}' is not an http(s) URL`, 'e.g. --s3-endpoint http://127.0.0.1:7480 (credentials go in AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)');
  }
  return { endpoint, pathStyle: options.s3PathStyle === false ? false : undefined };
}
