/**
 * The originals of one batch being ingested at once, by SHA-256. The same
 * original twice in a batch (two names, one content) is ingested one after
 * the other from the moment its hash is known: the first is published, and
 * the second finds it published and is refused as a duplicate, as it would
 * be if the batch ran one slide at a time.
 */
export class OriginalsInFlight {
  private readonly tails = new Map<string, Promise<void>>();

  /** Waits until no other ingest of the batch holds `sha256`, then holds it; call the returned function when settled. */
  async hold(sha256: string): Promise<() => void> {
    const before = this.tails.get(sha256) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = before.then(() => mine);
    this.tails.set(sha256, tail);
    await before;
    return () => {
      release();
      if (this.tails.get(sha256) === tail) this.tails.delete(sha256);
    };
  }
}
