# One image for both long-running commands: `worker` (the default) and `forwarder`.
#   docker build -t pod-responder .
#   docker run --rm pod-responder forwarder
# docker-compose.yml runs both next to a Temporal server.
#
# bookworm (glibc), not alpine: @temporalio/core-bridge ships prebuilt native modules for glibc only.

FROM node:20-bookworm-slim AS build
WORKDIR /app
# The lockfile alone first, so a code change does not redo the install layer.
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
# tsc over everything (tsconfig.json includes test/ and devstack/, hence no excludes for them in
# .dockerignore), then dist/ from tsconfig.build.json and the Lambda bundle dist/lambda/remediation.zip,
# which the eks-lambda executor uploads and finds next to dist/worker/config.js.
RUN npm run build

FROM node:20-bookworm-slim
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The base image's unprivileged user (uid 1000): usually the owner of a mounted ~/.kube/config.
USER node
ENTRYPOINT ["node", "dist/client/cli.js"]
CMD ["worker"]
