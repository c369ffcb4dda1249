// In-process V8 CPU profiling for the benchmark's child processes, one profile per phase.
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

let session: Session | undefined;
const post = (method: string, params?: object) =>
  new Promise<unknown>((resolve, reject) => session!.post(method, params ?? {}, (err, res) => (err ? reject(err) : resolve(res))));

export async function profileStart(): Promise<void> {
  session ??= new Session();
  session.connect();
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: 500 });
  await post('Profiler.start');
}

export async function profileStop(file: string): Promise<void> {
  const { profile } = (await post('Profiler.stop')) as { profile: unknown };
  writeFileSync(file, JSON.stringify(profile));
  session!.disconnect();
}
