// "host:port" (IPv6 hosts in brackets) for the listen flags: a module of its own so commands that
// only listen (the webhook) need not load the control plane to read their flag.

export function splitHostPort(address: string): [string, number] {
  const i = address.lastIndexOf(':');
  if (i < 0) throw new Error(`expected host:port, got "${address}"`);
  return [address.slice(0, i).replace(/^\[|\]$/g, ''), Number(address.slice(i + 1))];
}
