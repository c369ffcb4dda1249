// DNS rebinding: a web page on attacker.example can point its own name at 127.0.0.1 and then read
// a loopback admin API as if it were same-origin (proxy configs, rules, certificates). The browser
// still sends the page's name in Host, so the admin API answers only requests whose Host is an IP
// address or localhost, or a name the operator listed (`serve --admin-host`). Non-browser clients
// that send no Host are let through: rebinding needs a browser.
import { isIP } from 'node:net';
import type { NextFunction, Request, Response } from 'express';

/** The host name of a Host header value, without port or IPv6 brackets, lower case. */
export function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']') > 0 ? h.indexOf(']') : undefined);
  const colon = h.lastIndexOf(':');
  // More than one colon and no brackets: a bare IPv6 address, no port.
  return colon > 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h;
}

/** Whether a request naming `host` may be answered. */
export function hostAllowed(host: string | undefined, allowed: readonly string[] = []): boolean {
  if (host === undefined) return true;
  const name = hostName(host).replace(/\.$/, '');
  if (isIP(name) !== 0) return true;
  if (name === 'localhost' || name.endsWith('.localhost')) return true;
  return allowed.some((a) => a.toLowerCase().replace(/\.$/, '') === name);
}

/** Express middleware refusing requests for other host names with a 403 that says what to do. */
export function allowedHosts(allowed: readonly string[] = []) {
  return (req: Request, res: Response, next: NextFunction): void => {
    const host = req.headers.host;
    if (hostAllowed(host, allowed)) return next();
    res.status(403).json({
      error: `refused: Host "${host}" is not an IP address, localhost or a name given with serve --admin-host; `
        + 'the admin API answers other names only when told to, so a web page cannot read it through DNS rebinding',
    });
  };
}
