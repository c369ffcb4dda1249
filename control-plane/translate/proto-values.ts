// Envoy value formatters: model numbers (milliseconds, Istio percentages) in the proto3 JSON forms
// Envoy's messages take. The model keeps plain numbers; only the translator knows these shapes.
import type { Json } from '../json.ts';

/** Proto3 JSON form of a google.protobuf.Duration ("1.5s"), from milliseconds. */
export function protoDuration(msIn: number): string {
  const ms = Math.round(msIn);
  const seconds = Math.floor(ms / 1000);
  const rest = ms - seconds * 1000;
  return rest === 0 ? `${seconds}s` : `${seconds}.${String(rest).padStart(3, '0')}s`;
}

/** Istio's percentage (a double, 0-100) as a FractionalPercent: 0.1% is 1000 per million. */
export function fractionalPercent(percent: number): Json {
  return { numerator: Math.round(percent * 10_000), denominator: 'MILLION' };
}

/** A whole percentage (0-100) as a FractionalPercent over HUNDRED. */
export function wholePercent(n: number): Json {
  return { numerator: n, denominator: 'HUNDRED' };
}
