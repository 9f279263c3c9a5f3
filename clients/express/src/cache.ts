/** A bounded least-recently-used map whose entries also expire at a given time. */
export class ExpiringLru<V> {
  readonly #max: number;
  readonly #map = new Map<string, { value: V; expiresAt: number }>();

  constructor(max: number) {
    this.#max = Math.max(1, Math.floor(max));
  }

  /** The live value of `key` at time `now` (ms), marking it recently used. */
  get(key: string, now: number): V | undefined {
    const entry = this.#map.get(key);
    if (entry === undefined) return undefined;
    this.#map.delete(key);
    if (entry.expiresAt <= now) return undefined;
    this.#map.set(key, entry);
    return entry.value;
  }

  /** Stores `value` until `expiresAt` (ms), evicting the least recently used entry when full. */
  set(key: string, value: V, expiresAt: number): void {
    this.#map.delete(key);
    while (this.#map.size >= this.#max) {
      const oldest = this.#map.keys().next();
      if (oldest.done === true) break;
      this.#map.delete(oldest.value);
    }
    this.#map.set(key, { value, expiresAt });
  }

  /** Forgets every entry. */
  clear(): void {
    this.#map.clear();
  }

  /** How many entries are held (live or not yet evicted). */
  get size(): number {
    return this.#map.size;
  }
}
