// The admin API's address as a URL a person can paste, with where to look first.
/** `host:port` (host possibly IPv6, bare or bracketed) to `http://host:port`. */
export function adminUrl(address: string): string {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.slice(i + 1)}`;
}

/** The line `serve` and the demo print once the admin API listens. */
export function adminHint(address: string): string {
  return `admin API: ${adminUrl(address)}  (try /debug/proxies, /debug/rules)`;
}
