// VirtualService http[].fault -> the route's FaultPolicy: durations in ms, Istio percentages kept
// as numbers (0-100), gRPC status names as codes. As in Istio, a delay or abort without a
// percentage applies to no request at all; that is legal but surprising, so it is a warning.
import type { ConfigObject } from '../config/types.ts';
import { GRPC_STATUS_CODES } from '../config/schemas/grpc-status.ts';
import { durationMs } from './duration.ts';
import type { FaultIn } from './input.ts';
import type { FieldPath, IssueSink } from './issues.ts';
import type { FaultPolicy } from './types.ts';

export function resolveFault(obj: ConfigObject, fault: FaultIn | undefined, path: FieldPath, issues: IssueSink): FaultPolicy | undefined {
  if (!fault) return undefined;
  const out: FaultPolicy = {};
  const { delay, abort } = fault;
  if (delay?.fixedDelay !== undefined) {
    const percent = delay.percentage?.value ?? delay.percent;
    if (percent === undefined) issues.warn(obj, [...path, 'delay'], 'no percentage: no request is delayed (as in Istio); set percentage.value, e.g. 100 for every request');
    out.delay = { fixedDelayMs: durationMs(delay.fixedDelay), percent: percent ?? 0 };
  }
  if (abort) {
    const percent = abort.percentage?.value;
    if (percent === undefined) issues.warn(obj, [...path, 'abort'], 'no percentage: no request is aborted (as in Istio); set percentage.value, e.g. 100 for every request');
    if (abort.grpcStatus !== undefined) out.abort = { grpcStatus: GRPC_STATUS_CODES[abort.grpcStatus]!, percent: percent ?? 0 };
    else if (abort.httpStatus !== undefined) out.abort = { httpStatus: abort.httpStatus, percent: percent ?? 0 };
  }
  return out.delay || out.abort ? out : undefined;
}
