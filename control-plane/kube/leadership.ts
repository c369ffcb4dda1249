// Who may write to the cluster, apart from how it is decided (leader-election.ts), so that code
// needing only the notion does not load the Kubernetes client.

/** Whether this replica may write to the cluster now, and when that changes. */
export interface Leadership {
  isLeader(): boolean;
  /** Called with true when this replica starts leading, false when it stops; returns the unsubscribe. */
  onChange(listener: (leading: boolean) => void): () => void;
}

/** No election (no cluster to elect in, e.g. file mode): the one process is the leader. */
export const SOLE_REPLICA: Leadership = { isLeader: () => true, onChange: () => () => {} };
