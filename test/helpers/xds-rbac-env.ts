// Import this FIRST (before anything that loads @grpc/grpc-js-xds): grpc-js-xds reads
// GRPC_XDS_EXPERIMENTAL_RBAC once, when it is loaded, and without it an XdsServer rejects (NACKs)
// every Listener that carries an RBAC filter. ES modules evaluate their imports before their own
// body, so setting the variable in the test file itself would come too late.
process.env.GRPC_XDS_EXPERIMENTAL_RBAC = 'true';
