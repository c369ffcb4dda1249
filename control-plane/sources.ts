// The config sources of one control plane, seen as one: a rule directory, Kubernetes clusters,
// or both at once. Their results are merged (of a file object and a Kubernetes object with the
// same kind/namespace/name, the one in force stays, at first the file's; the other is reported), and the whole is ready when every
// source is (files: at once; Kubernetes: after every cluster's initial sync or the timeout).
import { assemble, holders } from './config/load.ts';
import type { FileConfigSource } from './config/file-source.ts';
import type { LoadResult } from './config/types.ts';
import type { KubeSource } from './kube/kube-source.ts';
import type { MeshState } from './model/compile.ts';

export class ConfigSources {
  constructor(readonly file: FileConfigSource | undefined, readonly kube: KubeSource | undefined) {}

  /** Rescans the files now; the clusters' state as it is. */
  load(): LoadResult {
    return this.merge(this.file?.load());
  }

  current(): LoadResult {
    return this.merge(this.file?.current());
  }

  watch(onChange: () => void): void {
    this.file?.watch(onChange);
    this.kube?.onChange(onChange);
    this.kube?.start();
  }

  ready(): boolean {
    return this.kube ? this.kube.ready() : true;
  }

  afterCompile(state: MeshState): void {
    this.kube?.afterCompile(state);
  }

  close(): void {
    this.file?.close();
    this.kube?.close();
  }

  /** Per key, which source ('1:files' or '2:kubernetes') gave the object in force last time. */
  private held = new Map<string, string>();

  private merge(files: LoadResult | undefined): LoadResult {
    const kube = this.kube?.current();
    if (!kube) return files ?? { objects: [], errors: [] };
    if (!files) return kube;
    // Of two objects with one key, the one in force stays; at first the file's.
    const fileObjects = new Set(files.objects);
    const merged = assemble(
      [
        { file: '1:files', objects: files.objects, errors: files.errors },
        { file: '2:kubernetes', objects: kube.objects, errors: kube.errors },
      ],
      this.held,
    );
    this.held = holders(merged, (o) => (fileObjects.has(o) ? '1:files' : '2:kubernetes'));
    return { ...merged, ...(kube.networkGateways ? { networkGateways: kube.networkGateways } : {}) };
  }
}
