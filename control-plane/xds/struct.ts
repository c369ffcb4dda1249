// google.protobuf.Struct as @grpc/proto-loader decodes it -> plain JSON. Node metadata arrives
// this way. protobufjs ships struct.proto with camelCase names even under keepCase, so both
// spellings (`stringValue`, `string_value`) are accepted.
type Value = { kind?: string; [k: string]: unknown };

function valueToJson(raw: Value | undefined): unknown {
  if (!raw) return null;
  const v: Value = Object.fromEntries(Object.entries(raw).map(([k, x]) => [k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`), x]));
  const kind = (typeof v.kind === 'string' ? v.kind.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) : undefined) ?? Object.keys(v).find((k) => k.endsWith('_value'));
  switch (kind) {
    case 'string_value':
      return v.string_value;
    case 'number_value':
      return v.number_value;
    case 'bool_value':
      return v.bool_value;
    case 'struct_value':
      return structToJson(v.struct_value);
    case 'list_value':
      return ((v.list_value as { values?: Value[] })?.values ?? []).map(valueToJson);
    default:
      return null;
  }
}

export function structToJson(s: unknown): Record<string, unknown> {
  const fields = (s as { fields?: Record<string, Value> } | undefined)?.fields ?? {};
  return Object.fromEntries(Object.entries(fields).map(([k, v]) => [k, valueToJson(v)]));
}
