import { parseAllDocuments, LineCounter, isMap, isSeq, isScalar } from 'yaml';
const text = `# c
---
apiVersion: v1
kind: X
metadata: {name: a}
spec:
  x: [1, 2]
  y:
  - a: 1
    b: &q 2
  z: *q
  dup: 1
  dup: 2
---
---
# only comment
---
a: [1, 2
b: "x
`;
const lc = new LineCounter();
const docs = parseAllDocuments(text, { lineCounter: lc });
console.log(Array.isArray(docs), (docs as any).length);
for (const d of docs as any[]) {
  console.log('doc', d.range, d.contents?.range, d.contents === null, d.errors.map((e: any) => [e.code, e.message.split('\n')[0], e.linePos]), d.warnings.length);
}
const d0 = (docs as any)[0];
console.log(lc.linePos(d0.contents.range[0]));
console.log(JSON.stringify(d0.toJS()));
const e = parseAllDocuments('', { lineCounter: new LineCounter() }); console.log('empty', e, Array.isArray(e));
const e2 = parseAllDocuments('a: !foo x\nb: !!binary aGVsbG8=\n', { lineCounter: new LineCounter() }) as any; console.log('tag', e2[0].errors.map((x:any)=>x.message), e2[0].warnings.map((x:any)=>x.message), JSON.stringify(e2[0].toJS()));
