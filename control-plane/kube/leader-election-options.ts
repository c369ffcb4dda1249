// Leader election's timings: defaults and their check, apart from the elector so the command line
// can show and check them without loading the Kubernetes client.

export const LEADER_ELECTION_DEFAULTS = { leaseDurationMs: 15_000, renewDeadlineMs: 10_000, retryPeriodMs: 2_000 } as const;

export interface LeaderElectionTimings {
  /** How long a Lease nobody renews stays taken (written to the Lease in whole seconds, rounded up). */
  leaseDurationMs?: number;
  /** The leader stops leading when it could not renew for this long (less than the lease duration). */
  renewDeadlineMs?: number;
  /** How often the leader renews and the others try to take over. */
  retryPeriodMs?: number;
}

export function checkTimings(t: Required<LeaderElectionTimings>): void {
  if (t.leaseDurationMs < 1000) throw new Error('leader election: the lease duration must be at least 1 s');
  if (t.renewDeadlineMs >= t.leaseDurationMs) throw new Error('leader election: the renew deadline must be shorter than the lease duration');
  if (t.retryPeriodMs <= 0 || t.retryPeriodMs * 1.2 >= t.renewDeadlineMs) throw new Error('leader election: the retry period (times 1.2) must be shorter than the renew deadline');
}
