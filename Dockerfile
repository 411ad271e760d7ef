# The Strata node agent's image: the agent bundled with all its dependencies (dist/image, made by
# scripts/build.mjs), its native addon beside it, and the tools it prepares drives with.
# Build and push: deploy/kubernetes/README.md.

FROM node:24-bookworm-slim AS build
# node-gyp compiles the addon (agent/native/extents.c).
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json ./
# Scripts off here (the dependencies' layer is cached apart from the sources): the package's own
# install (node-gyp, the addon) and the bundles need the sources, which come next.
RUN npm ci --ignore-scripts
COPY . .
RUN npm run install \
 && node scripts/build.mjs

FROM node:24-bookworm-slim
# e2fsprogs: mkfs.ext4 for a blank drive. util-linux: blkid, to never format a device that holds
# anything, and mount.
RUN apt-get update \
 && apt-get install -y --no-install-recommends e2fsprogs util-linux \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The bundle, its source map, build/Release/strata_native.node and LevelDB's prebuilt binaries.
COPY --from=build /src/dist/image/ /app/
# Root, as the DaemonSet runs it privileged: the agent formats and mounts the node's EBS drives and
# opens their block devices, which only root can.
USER root
# The V8 flag is the one every agent starts with (infra/local/agent-entry.ts, AGENT_NODE_FLAGS).
ENTRYPOINT ["node", "--enable-source-maps", "--initial-old-space-size=64", "/app/agent.mjs"]
