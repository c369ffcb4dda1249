// `serve --dashboard-actions` through the built CLI (bin/meshpilot.js): the flag reaches the
// dashboard's state as `actions: true`, and without it the state says false.
import { afterAll, describe, expect, it } from 'vitest';
import type { DashboardState } from '../control-plane/dashboard/state.ts';
import { getJson } from './helpers/admin-http.ts';
import { spawnServe } from './helpers/serve-process.ts';
import { Teardown } from './helpers/test-mesh.ts';
import { waitFor } from './helpers/wait.ts';

const teardown = new Teardown();
afterAll(() => teardown.run());

async function actions(flags: string[]): Promise<boolean> {
  const serve = spawnServe(teardown, ['--config-dir', 'examples/bookinfo', '--log-level', 'info', ...flags]);
  await waitFor(() => serve.lines.some((l) => l.msg === 'admin API listening'), { timeoutMs: 30_000, description: 'serve listening' });
  const address = String(serve.lines.find((l) => l.msg === 'admin API listening')!.address);
  const state = (await getJson<DashboardState>(`http://${address}/dashboard/api/state`)).body;
  await serve.stop();
  expect(serve.child.exitCode).toBe(0);
  return state.actions;
}

describe('serve --dashboard-actions', () => {
  it('offers the canary actions on the dashboard only with the flag', async () => {
    expect(await actions(['--dashboard-actions'])).toBe(true);
    expect(await actions([])).toBe(false);
  }, 60_000);
});
