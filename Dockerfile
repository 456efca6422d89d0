# One image for both long-running commands: `worker` (the default) and `forwarder`.
#   docker build -t pod-responder .
#   docker run --rm pod-responder forwarder
# docker-compose.yml runs both next to a Temporal server.
#
# Node.js 22 LTS (20 is past its end of life; the code and package.json's engines accept both, and this
# machine's tests run on 20). bookworm (glibc), not alpine: @temporalio/core-bridge ships prebuilt native
# modules for glibc only.

FROM node:22-bookworm-slim AS build
WORKDIR /app
# better-sqlite3 (the forwarder's spool) is a native module: its install fetches a prebuilt binary
# and, where it cannot, compiles one, which needs these.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
# The lockfile alone first, so a code change does not redo the install layer.
COPY package.json package-lock.json ./
# Behind a TLS-intercepting proxy, pass its CA bundle as a build secret: mounted for this step alone, kept in no
# layer (docs/image.md). Without it (the usual build) NODE_EXTRA_CA_CERTS is empty, which Node ignores.
#   docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t pod-responder .
RUN --mount=type=secret,id=ca \
    NODE_EXTRA_CA_CERTS="$(test -f /run/secrets/ca && echo /run/secrets/ca)" npm ci --no-audit --no-fund
COPY . .
# tsc over everything (tsconfig.json includes test/ and devstack/, hence no excludes for them in
# .dockerignore), then dist/ from tsconfig.build.json, the Lambda bundle dist/lambda/remediation.zip,
# which the eks-lambda executor uploads and finds next to dist/config/config.js, and the workflow bundle
# dist/workflow-bundle.js, which workers run without webpack at start (readOnlyRootFilesystem: none could keep one).
RUN npm run build
# Production dependencies only, native modules built above included: the runtime image needs no compiler.
RUN npm prune --omit=dev --no-audit --no-fund

FROM node:22-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
# The forwarder's spool: mount a volume here (one per replica) so queued alerts outlive the container.
RUN mkdir -p /var/lib/pod-responder/spool && chown -R node:node /var/lib/pod-responder
ENV POD_RESPONDER_SPOOL_PATH=/var/lib/pod-responder/spool/forwarder.db
# The base image's unprivileged user (uid 1000): usually the owner of a mounted ~/.kube/config.
USER node
# The worker's Prometheus endpoint (POD_RESPONDER_METRICS_PORT); the forwarder serves /metrics on its own port.
EXPOSE 9464 8080
ENTRYPOINT ["node", "dist/client/cli.js"]
CMD ["worker"]
