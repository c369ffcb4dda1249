// Pushes after a config change, as Istio's push queue does: every stream is pushed to a batch at a
// time (ACKs and new streams are served between batches), a change arriving mid-round starts one
// more round after it, and a stream whose transport buffer is full is not queued behind: it gets
// one merged push (the latest state) when it drains.

/** Streams pushed to between two turns of the event loop, at most. */
export const PUSH_BATCH = 200;
/** And at most this long: 200 full-mesh sidecars' route configs are 120 MB of writes. */
export const PUSH_BATCH_MS = 20;

export class PushQueue<S> {
  /** Streams whose last write filled the transport's buffer, and those with a push waiting. */
  private busy = new Set<S>();
  private pending = new Set<S>();
  private pushing = false;
  private pushAgain = false;

  /**
   * `streams`: the live streams (one that is gone by its turn is skipped); `push` sends one stream
   * the current config; `roundDone` is told when a round reached every stream and no other is due.
   */
  constructor(
    private readonly streams: ReadonlySet<S>,
    private readonly push: (stream: S) => void,
    private readonly roundDone: () => void,
    private readonly batch = PUSH_BATCH,
    private readonly batchMs = PUSH_BATCH_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /**
   * Pushes the current config to every stream, a batch at a time, yielding between batches so that
   * ACKs and new streams are served meanwhile. A change arriving mid-way starts one more round
   * after this one (streams already done get only what changed since, i.e. usually nothing).
   */
  pushAll(): void {
    if (this.pushing) {
      this.pushAgain = true;
      return;
    }
    this.pushing = true;
    const streams = [...this.streams];
    const step = (from: number) => {
      const start = this.clock();
      let i = from;
      while (i < streams.length && i - from < this.batch && (i === from || this.clock() - start < this.batchMs)) {
        const s = streams[i++]!;
        if (!this.streams.has(s)) continue;
        // A proxy still reading an earlier push gets one merged push when it catches up.
        if (this.busy.has(s)) this.pending.add(s);
        else this.push(s);
      }
      if (i < streams.length) {
        setImmediate(() => step(i));
        return;
      }
      this.pushing = false;
      if (this.pushAgain) {
        this.pushAgain = false;
        this.pushAll();
      } else this.roundDone();
    };
    step(0);
  }

  /** A write to `stream` filled its transport's buffer. */
  blocked(stream: S): void {
    this.busy.add(stream);
  }

  /** `stream`'s buffer drained: the push it missed meanwhile, if any, is made now. */
  drained(stream: S): void {
    this.busy.delete(stream);
    if (this.pending.delete(stream)) this.push(stream);
  }

  /** `stream` ended. */
  forget(stream: S): void {
    this.busy.delete(stream);
    this.pending.delete(stream);
  }
}
