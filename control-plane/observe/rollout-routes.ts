// The admin API's rollout endpoints (the CLI's `canary` and `experiment` commands use them):
//   GET  /debug/canaries                    every Canary in force with its rollout state
//   POST /debug/canaries/:ns/:name/:cmd     promote | pause | resume | abort -> 200 {canary} | 404 | 409
//   GET  /debug/experiments                 every FaultExperiment in force with its state
//   POST /debug/experiments/:ns/:name/stop  -> 200 {experiment} | 404 | 409
// Commands are the leader's: a follower answers 409 saying so. Errors are JSON, as everywhere in admin.ts.
import type express from 'express';
import type { CanaryEntry, CommandResult, ExperimentEntry } from '../rollout/controller.ts';
import type { CanaryCommand } from '../rollout/types.ts';

/** What the routes need of the rollout controller (rollout/controller.ts's RolloutController). */
export interface RolloutAdmin {
  canaries(): CanaryEntry[];
  experiments(): ExperimentEntry[];
  command(key: string, command: CanaryCommand): Promise<CommandResult<CanaryEntry>>;
  stopExperiment(key: string): Promise<CommandResult<ExperimentEntry>>;
}

const COMMANDS: readonly string[] = ['promote', 'pause', 'resume', 'abort'] satisfies CanaryCommand[];

export function addRolloutRoutes(app: express.Express, rollouts: RolloutAdmin): void {
  app.get('/debug/canaries', (_req, res) => {
    res.json(rollouts.canaries());
  });
  app.get('/debug/experiments', (_req, res) => {
    res.json(rollouts.experiments());
  });
  app.post('/debug/canaries/:ns/:name/:cmd', (req, res, next) => {
    const { ns, name, cmd } = req.params;
    if (!COMMANDS.includes(cmd)) {
      res.status(404).json({ error: `no such canary command "${cmd}" (commands: ${COMMANDS.join(', ')})` });
      return;
    }
    rollouts
      .command(`Canary/${ns}/${name}`, cmd as CanaryCommand)
      .then((r) => (r.ok ? res.json({ canary: r.entry }) : res.status(r.status).json({ error: r.error })))
      .catch(next);
  });
  app.post('/debug/experiments/:ns/:name/stop', (req, res, next) => {
    const { ns, name } = req.params;
    rollouts
      .stopExperiment(`FaultExperiment/${ns}/${name}`)
      .then((r) => (r.ok ? res.json({ experiment: r.entry }) : res.status(r.status).json({ error: r.error })))
      .catch(next);
  });
}
