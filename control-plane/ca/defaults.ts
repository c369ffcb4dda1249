// The CA's defaults, apart from the modules that use them, so the command line can show them in
// its options without loading the CA (x509, gRPC, the Kubernetes client).

/** Where a file-mode CA keeps its root (relative to the working directory). */
export const DEFAULT_CA_DIR = '.meshpilot-ca';
/** The namespace whose Secrets hold the CA when there is a config cluster. */
export const DEFAULT_CA_NAMESPACE = 'meshpilot-system';
/** The audience Kubernetes service account tokens sent to the CA must carry. */
export const DEFAULT_TOKEN_AUDIENCE = 'meshpilot-ca';
