# syntax=docker/dockerfile:1
# meshpilot's image: one image for `serve`, `webhook` and `agent` (the command is the first argument:
# `docker run IMAGE serve --config-dir /etc/meshpilot/rules`). The runtime stage holds compiled
# JavaScript, production dependencies and the data files the CLI reads; nothing is compiled or
# written at run time, so it runs as uid 65532 with a read-only root filesystem. Give writable
# mounts for what a command writes by design: the agent's --out-dir and SDS socket, and the
# file-mode CA's --ca-dir (`serve --xds-tls` without a config cluster).
# test/dockerfile.test.ts checks this file without a Docker engine: it rebuilds the runtime stage's
# layout from the COPY lines below and runs serve, validate, inject, webhook and agent from it,
# read-only, as uid 65532.

# Build: every dependency (TypeScript among them), then control-plane/ compiled to dist/.
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# --ignore-scripts: the project's `prepare` script builds, and the sources come in only below.
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY control-plane ./control-plane
RUN npm run build

# Production dependencies only (what `npm ci --omit=dev` installs; no TypeScript, tsx or vitest).
FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# Runtime.
FROM node:20-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app/package.json ./package.json
COPY --from=deps /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# Our own .proto files (the CA service); Envoy's come from @grpc/grpc-js-xds in node_modules.
COPY proto ./proto
# The injector's settings (sidecar-config/injection.yaml) and the example bootstraps.
COPY sidecar-config ./sidecar-config
# The example mesh `npm start` serves, for a first run: serve --config-dir examples/bookinfo.
COPY examples/bookinfo ./examples/bookinfo
# The dashboard page (GET / on the admin address): static files the server reads beside dist/.
COPY control-plane/dashboard/public ./control-plane/dashboard/public
COPY bin ./bin
USER 65532:65532
ENTRYPOINT ["node", "/app/bin/meshpilot.js"]
CMD ["--help"]
