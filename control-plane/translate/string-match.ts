// Istio StringMatch -> Envoy StringMatcher / path matcher.
import { RE2JS } from 're2js';
import type { Json } from '../json.ts';
import type { StringMatch } from '../model/types.ts';

export function stringMatcher(m: StringMatch, ignoreCase = false): Json {
  const ic = ignoreCase ? { ignore_case: true } : {};
  switch (m.kind) {
    case 'exact':
      return { exact: m.value, ...ic };
    case 'prefix':
      return { prefix: m.value, ...ic };
    case 'regex':
      return { safe_regex: { regex: ignoreCase ? `(?i)${m.value}` : m.value } };
  }
}

/** Evaluates a StringMatch against a known value (used where the answer is fixed, e.g. gRPC's POST). */
export function matchesValue(m: StringMatch, value: string): boolean {
  switch (m.kind) {
    case 'exact':
      return value === m.value;
    case 'prefix':
      return value.startsWith(m.value);
    case 'regex':
      // RE2, as Envoy and gRPC evaluate it (JS RegExp differs, e.g. on (?i) and [[:upper:]]).
      return RE2JS.compile(m.value).matches(value);
  }
}
