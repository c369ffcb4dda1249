// `--state-dir` of translate and explain: read the rollout state a file-mode serve keeps.
export const STATE_DIR_FLAG = '--state-dir <dir>';
export const STATE_DIR_HELP = "the state directory of a file-mode serve (its --state-dir): show the config with the canaries' current weights and the running fault experiments' faults, as served; without it, the VirtualServices' own weights and no experiment faults";
