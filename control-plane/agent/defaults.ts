// The agent's defaults, apart from the modules that use them, so `meshpilot agent --help` shows
// them without loading gRPC.

/** The Unix socket where the agent serves SDS to Envoy (in the pod's shared emptyDir). */
export const DEFAULT_SDS_SOCKET = '/var/run/meshpilot/sds.sock';
