// The admin API's address as a URL a person can paste, with where to look first.
/** `host:port` (host possibly IPv6, bare or bracketed) to `http://host:port`. */
export function adminUrl(address: string): string {
  const i = address.lastIndexOf(':');
  const host = address.slice(0, i).replace(/^\[|\]$/g, '');
  return `http://${host.includes(':') ? `[${host}]` : host}:${address.slice(i + 1)}`;
}

/** What a user gives as `--admin` (`http://host:port`, or bare `host:port`) as a base URL, no trailing `/`. */
export function adminBase(admin: string): string {
  return (/^https?:\/\//.test(admin) ? admin : `http://${admin}`).replace(/\/+$/, '');
}

/** The line `serve` and the demo print once the admin API listens. */
export function adminHint(address: string): string {
  return `admin API: ${adminUrl(address)}  (open it in a browser for the dashboard; try /debug/proxies, /debug/rules)`;
}
