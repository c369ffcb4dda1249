// The names a delta stream subscribes to, shared between streams that subscribe to the same ones.
// Every full-mesh Envoy of a group asks for the endpoints of every EDS cluster (thousands of names);
// one Set per distinct list, copy-on-write, found by an order-free hash of its names, keeps that
// from costing each stream a set of its own. Sets no stream uses are let go (weak references).

/** Two 32-bit FNV-1a hashes of a string (order-free set keys; also versions of unknown form). */
export function halves(v: string): [number, number] {
  let a = 0x811c9dc5;
  let b = 0x01000193;
  for (let i = 0; i < v.length; i++) {
    a = Math.imul(a ^ v.charCodeAt(i), 0x01000193);
    b = Math.imul(b ^ v.charCodeAt(i), 0x811c9dc5);
  }
  return [a >>> 0, b >>> 0];
}

const pool = new Map<string, WeakRef<Set<string>>>();
const forget = new FinalizationRegistry<string>((key) => {
  if (pool.get(key)?.deref() === undefined) pool.delete(key);
});

export class SharedNames {
  private set = new Set<string>();
  private shared = false;
  private hi = 0;
  private lo = 0;

  has(name: string): boolean {
    return this.set.has(name);
  }

  get size(): number {
    return this.set.size;
  }

  /** The names, read-only (shared with other streams). */
  view(): ReadonlySet<string> {
    return this.set;
  }

  private own(): void {
    if (this.shared) {
      this.set = new Set(this.set);
      this.shared = false;
    }
  }

  private mix(name: string): void {
    const [hi, lo] = halves(name);
    this.hi ^= hi;
    this.lo ^= lo;
  }

  add(name: string): void {
    if (this.set.has(name)) return;
    this.own();
    this.set.add(name);
    this.mix(name);
  }

  delete(name: string): void {
    if (!this.set.has(name)) return;
    this.own();
    this.set.delete(name);
    this.mix(name);
  }

  /** After a request's changes: share the pooled set with the same names, or offer this one. */
  settle(): void {
    if (this.shared || this.set.size < 16) return;
    const key = `${this.set.size}:${this.hi}:${this.lo}`;
    const pooled = pool.get(key)?.deref();
    if (pooled && pooled !== this.set && [...this.set].every((n) => pooled.has(n))) {
      this.set = pooled;
    } else if (!pooled) {
      pool.set(key, new WeakRef(this.set));
      forget.register(this.set, key);
    } else return;
    this.shared = true;
  }
}
