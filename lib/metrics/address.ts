/**
 * `mount --metrics <host:port>`: where the Prometheus endpoint listens. Parsed with the other
 * options, so that a bad value is refused in one line before anything is mounted.
 */
import net from 'node:net';
import { VolumeError } from '../errors.js';

export interface MetricsAddress {
  host: string;
  port: number;
}

const EXAMPLE = 'e.g. --metrics 127.0.0.1:9464 (or [::1]:9464, localhost:9464; 0.0.0.0:9464 for every interface)';

export function parseMetricsAddress(text: string): MetricsAddress {
  // An IPv6 address goes in brackets, as in a URL: its colons would read as the port's otherwise.
  const m = /^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$/.exec(text) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(text);
  if (!m) throw VolumeError.badInput(`--metrics '${text}' is not host:port`, EXAMPLE);
  const host = m[1]!;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) throw VolumeError.badInput(`--metrics '${text}': port ${port} is not between 1 and 65535`, EXAMPLE);
  if (text.startsWith('[') && net.isIPv6(host) === false) throw VolumeError.badInput(`--metrics '${text}': ${host} is not an IPv6 address`, EXAMPLE);
  if (!text.startsWith('[') && /^[\d.]+$/.test(host) && !net.isIPv4(host)) throw VolumeError.badInput(`--metrics '${text}': ${host} is not an IPv4 address`, EXAMPLE);
  return { host, port };
}

/** The address as a scrape target names it (`[::1]:9464`). */
export function formatMetricsAddress(address: MetricsAddress): string {
  return net.isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}
