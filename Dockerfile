# One build, two images: `--target api` and `--target worker` (docker-compose.yml builds both).
# `pnpm build` also bundles the console (apps/console/dist), which the api image serves at /console.
FROM node:20-bookworm-slim AS build
RUN npm install -g pnpm@10.34.9
WORKDIR /app
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml tsconfig.base.json tsconfig.json ./
COPY packages/shared/package.json packages/shared/
COPY packages/store/package.json packages/store/
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/console/package.json apps/console/
RUN pnpm install --frozen-lockfile --filter '!./bench'
COPY packages packages
COPY apps apps
RUN pnpm build \
  && rm -rf node_modules apps/*/node_modules packages/*/node_modules \
  && CI=true pnpm install --frozen-lockfile --prod --filter '!./bench'

FROM node:20-bookworm-slim AS runtime
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build --chown=node:node /app /app
USER node

FROM runtime AS worker
ENV WORKER_PORT=4001
EXPOSE 4001
CMD ["node", "apps/worker/dist/main.js"]

FROM runtime AS api
ENV PORT=4000
EXPOSE 4000
CMD ["node", "apps/api/dist/server.js"]
