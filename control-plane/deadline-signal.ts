// A signal that aborts after `ms`, or when `parent` aborts, whichever comes first.
//
// Why not AbortSignal.any([parent, AbortSignal.timeout(ms)]): on Node 20 the timeout signal inside
// such a combination is held only weakly, so a garbage collection before it fires loses it and the
// combined signal never aborts (nodejs/node#57736). A request cut that way hangs forever; the leader
// elector's loop stalled on one in CI. Here a plain timer holds the controller, so nothing is lost.
export function deadlineSignal(ms: number, parent?: AbortSignal): AbortSignal {
  const controller = new AbortController();
  if (parent?.aborted) {
    controller.abort(parent.reason);
    return controller.signal;
  }
  const timer = setTimeout(() => controller.abort(new DOMException(`no answer within ${ms} ms`, 'TimeoutError')), ms);
  // Cutting a request is not a reason to keep the process alive.
  timer.unref();
  const onParent = () => controller.abort(parent!.reason);
  parent?.addEventListener('abort', onParent, { once: true });
  controller.signal.addEventListener('abort', () => {
    clearTimeout(timer);
    parent?.removeEventListener('abort', onParent);
  }, { once: true });
  return controller.signal;
}
