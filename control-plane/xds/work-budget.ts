// Proxies' requests are served in the order they arrive, but at most about `budgetMs` of them in
// one turn of the event loop; the rest wait for the next turn (setImmediate), in order.
//
// Why: when thousands of sidecars connect at once, one turn of the loop reads the requests of
// every socket that is ready, and answering each (a full-mesh sidecar's first answers are MiBs)
// in that same turn made turns of 10 s and more. Nothing else ran meanwhile: not the ACKs, not
// the probes, and not the read of a new connection's first stream, so grpc-js's idle timer
// (max_connection_idle_ms, started at accept; timers run before reads) closed connections whose
// stream was already on the wire, and those streams were refused (NGHTTP2_REFUSED_STREAM).
// Under light load nothing changes: a request is answered at once, in the turn that read it.

/** Time spent on requests in one turn of the event loop before the rest wait for the next. */
export const REQUEST_BUDGET_MS = 20;

export class WorkBudget {
  private queue: Array<() => void> = [];
  private head = 0;
  /** When this turn's spending began; undefined until something runs after the loop turned. */
  private turnStart: number | undefined;
  private scheduled = false;

  constructor(
    private readonly budgetMs = REQUEST_BUDGET_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {}

  /** Jobs waiting for a later turn. */
  get waiting(): number {
    return this.queue.length - this.head;
  }

  /**
   * Runs `job` now when nothing waits and this turn's budget is not spent, else after what waits.
   * A job must not throw (one that does is reported as an uncaught exception, after the others ran).
   */
  run(job: () => void): void {
    if (this.waiting === 0) {
      const t = this.clock();
      if (this.turnStart === undefined) {
        this.turnStart = t;
        // The next turn starts a new budget.
        this.schedule();
      }
      if (t - this.turnStart < this.budgetMs) {
        job();
        return;
      }
    }
    this.queue.push(job);
    this.schedule();
  }

  private schedule(): void {
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => this.drain());
  }

  private drain(): void {
    this.scheduled = false;
    const start = this.clock();
    this.turnStart = start;
    let failure: unknown;
    while (this.waiting > 0 && this.clock() - start < this.budgetMs) {
      const job = this.queue[this.head]!;
      this.queue[this.head++] = undefined as unknown as () => void;
      try {
        job();
      } catch (e) {
        failure ??= e;
      }
    }
    if (this.waiting > 0) {
      // Drop what ran, now and then, so the array does not grow without end.
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      this.schedule();
    } else {
      this.queue = [];
      this.head = 0;
      // Nothing waits: the next request, in a later turn, starts a new budget.
      this.turnStart = undefined;
    }
    if (failure !== undefined) queueMicrotask(() => {
      throw failure;
    });
  }
}
