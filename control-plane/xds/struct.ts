// google.protobuf.Struct as @grpc/proto-loader decodes it ({ fields: { k: { string_value } } })
// -> plain JSON. Node metadata arrives this way.
type Value = { kind?: string; [k: string]: unknown };

function valueToJson(v: Value | undefined): unknown {
  if (!v) return null;
  const kind = v.kind ?? Object.keys(v).find((k) => k.endsWith('_value'));
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
