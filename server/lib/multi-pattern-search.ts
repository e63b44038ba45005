/**
 * Finds many byte strings at once in a stream of bytes (Aho–Corasick): the
 * patterns are compiled into one automaton with a transition for every state
 * and every byte, so each byte of the input costs one table look-up whatever
 * the number of patterns, and a pattern split between two chunks of the
 * stream is found because the state carries over from one chunk to the next.
 * Bytes are compared exactly (no case folding).
 */

/** A match: which patterns end at `end` (the offset just past their last byte in the whole stream). */
export interface PatternMatch {
  patterns: readonly number[];
  end: number;
}

export class MultiPatternSearch {
  /** `delta[state + byte]` is the next state; states are numbered in multiples of 256 (row starts) so no multiplication is needed per byte. */
  readonly delta: Int32Array;
  /** States from this one (a row start) up end at least one pattern. */
  readonly firstAccepting: number;
  /** For each accepting state (by row index minus the first accepting row), the patterns that end there. */
  private readonly outputs: number[][];
  readonly patternCount: number;
  readonly longestPattern: number;

  constructor(patterns: readonly Uint8Array[]) {
    if (patterns.length === 0) throw new Error('a search needs at least one pattern');
    const empty = patterns.findIndex((p) => p.length === 0);
    if (empty >= 0) throw new Error(`pattern ${empty} is empty`);
    this.patternCount = patterns.length;
    this.longestPattern = Math.max(...patterns.map((p) => p.length));

    // The trie: children by byte, the patterns that end at each node.
    const children: Map<number, number>[] = [new Map()];
    const ends: number[][] = [[]];
    patterns.forEach((pattern, id) => {
      let node = 0;
      for (const byte of pattern) {
        let next = children[node]!.get(byte);
        if (next === undefined) {
          next = children.length;
          children.push(new Map());
          ends.push([]);
          children[node]!.set(byte, next);
        }
        node = next;
      }
      ends[node]!.push(id);
    });

    // Breadth first: each node's failure link is the longest proper suffix that is also in the trie;
    // its transitions are its children, and for other bytes those of its failure link.
    const count = children.length;
    const table = new Int32Array(count * 256);
    const order: number[] = [0];
    const fail = new Int32Array(count);
    for (const [byte, child] of children[0]!) {
      table[byte] = child;
      order.push(child);
    }
    for (let i = 1; i < order.length; i++) {
      const node = order[i]!;
      const row = node * 256;
      const failRow = fail[node]! * 256;
      for (let byte = 0; byte < 256; byte++) table[row + byte] = table[failRow + byte]!;
      for (const [byte, child] of children[node]!) {
        fail[child] = table[failRow + byte]!;
        table[row + byte] = child;
        order.push(child);
      }
      // Parents come before children in this order, so the failure link's outputs are complete.
      if (ends[fail[node]!]!.length > 0) ends[node] = [...ends[node]!, ...ends[fail[node]!]!];
    }

    // Renumber: accepting states last, so one comparison per byte tells a match; and as row starts.
    const accepting = order.filter((n) => ends[n]!.length > 0);
    const rest = order.filter((n) => ends[n]!.length === 0);
    const renumbered = new Int32Array(count);
    [...rest, ...accepting].forEach((node, index) => (renumbered[node] = index));
    this.firstAccepting = rest.length * 256;
    this.outputs = accepting.map((n) => ends[n]!.slice().sort((a, b) => a - b));
    this.delta = new Int32Array(count * 256);
    for (let node = 0; node < count; node++) {
      const from = renumbered[node]! * 256;
      const row = node * 256;
      for (let byte = 0; byte < 256; byte++) this.delta[from + byte] = renumbered[table[row + byte]!]! * 256;
    }
  }

  /** A scanner at the start of a stream. */
  scanner(): PatternScanner {
    return new PatternScanner(this, (state) => this.outputs[(state - this.firstAccepting) / 256]!);
  }

  /** Every match in one buffer, by where it ends (for tests and small inputs). */
  findAll(haystack: Uint8Array): PatternMatch[] {
    const matches: PatternMatch[] = [];
    this.scanner().push(haystack, (match) => matches.push(match));
    return matches.sort((x, y) => x.end - y.end);
  }
}

/** Chunks at least this long are scanned in four interleaved lanes (see `push`). */
const LANES_FROM = 64 * 1024;

/** One stream's place in the automaton; feed it the stream's chunks in order. */
export class PatternScanner {
  private state = 0;
  private offset = 0;
  private readonly seen = new Set<number>();

  constructor(
    private readonly search: MultiPatternSearch,
    private readonly outputsOf: (state: number) => readonly number[],
  ) {}

  /**
   * Scan the next chunk; `onMatch` (if given) hears every match (in order
   * within each quarter of a large chunk, not across quarters).
   *
   * Each byte's look-up depends on the previous one's result, so one scan
   * waits on memory at every byte. A large chunk is cut into four quarters
   * scanned in one loop, four independent chains the processor overlaps. The
   * first quarter continues the stream's state; each other quarter starts
   * afresh `longestPattern - 1` bytes before its own start (so a pattern that
   * began in the previous quarter is still seen whole) and reports only the
   * matches that end inside it.
   */
  push(chunk: Uint8Array, onMatch?: (match: PatternMatch) => void): void {
    const warmUp = this.search.longestPattern - 1;
    const quarter = Math.floor(chunk.length / 4);
    if (chunk.length < LANES_FROM || quarter <= warmUp) {
      this.state = this.scan(chunk, 0, chunk.length, this.state, 0, onMatch);
    } else {
      this.state = this.scanLanes(chunk, quarter, warmUp, onMatch);
    }
    this.offset += chunk.length;
  }

  /** One lane over `chunk[from, to)` from `state`; matches ending before `reportFrom` are not reported. */
  private scan(chunk: Uint8Array, from: number, to: number, state: number, reportFrom: number, onMatch?: (match: PatternMatch) => void): number {
    const { delta, firstAccepting } = this.search;
    for (let i = from; i < to; i++) {
      state = delta[state + chunk[i]!]!;
      if (state >= firstAccepting && i >= reportFrom) this.hit(state, i, onMatch);
    }
    return state;
  }

  private scanLanes(chunk: Uint8Array, quarter: number, warmUp: number, onMatch?: (match: PatternMatch) => void): number {
    const { delta, firstAccepting } = this.search;
    // Lane k (k ≥ 1) reports from k·quarter on and starts warmUp bytes before.
    const start1 = quarter - warmUp;
    const start2 = 2 * quarter - warmUp;
    const start3 = 3 * quarter - warmUp;
    let a = this.state;
    let b = 0;
    let c = 0;
    let d = 0;
    for (let j = 0; j < quarter; j++) {
      a = delta[a + chunk[j]!]!;
      b = delta[b + chunk[start1 + j]!]!;
      c = delta[c + chunk[start2 + j]!]!;
      d = delta[d + chunk[start3 + j]!]!;
      if (a >= firstAccepting || b >= firstAccepting || c >= firstAccepting || d >= firstAccepting) {
        if (a >= firstAccepting) this.hit(a, j, onMatch);
        if (b >= firstAccepting && start1 + j >= quarter) this.hit(b, start1 + j, onMatch);
        if (c >= firstAccepting && start2 + j >= 2 * quarter) this.hit(c, start2 + j, onMatch);
        if (d >= firstAccepting && start3 + j >= 3 * quarter) this.hit(d, start3 + j, onMatch);
      }
    }
    // Lanes 1 and 2 have their last warmUp bytes left (up to the next quarter), lane 3 the rest of the chunk.
    this.scan(chunk, 2 * quarter - warmUp, 2 * quarter, b, quarter, onMatch);
    this.scan(chunk, 3 * quarter - warmUp, 3 * quarter, c, 2 * quarter, onMatch);
    return this.scan(chunk, 4 * quarter - warmUp, chunk.length, d, 3 * quarter, onMatch);
  }

  private hit(state: number, index: number, onMatch?: (match: PatternMatch) => void): void {
    const patterns = this.outputsOf(state);
    for (const id of patterns) this.seen.add(id);
    onMatch?.({ patterns, end: this.offset + index + 1 });
  }

  /** Bytes scanned so far. */
  get bytes(): number {
    return this.offset;
  }

  /** The patterns found so far, by index, in order. */
  found(): number[] {
    return [...this.seen].sort((a, b) => a - b);
  }
}
