# FlyTrap image: the CLI (`flytrap …`), the proxy, the auditor UI of `audit serve`, and the bundled anvil (see compose.yaml).
#   docker build -t flytrap .
#   docker run --rm -p 1883:1883 -e FLYTRAP_RPC=… -e FLYTRAP_CONTRACT=… flytrap proxy start --listen 0.0.0.0:1883 --broker mqtt://broker:1883
#   docker run --rm -p 8080:8080 -e FLYTRAP_RPC=… -e FLYTRAP_CONTRACT=… flytrap audit serve --host 0.0.0.0
# test/package/docker.test.ts repeats the build stage from exactly the files it copies, so a missing COPY fails a test.

FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# Scripts stay off, as in package.json's allowScripts: every native piece ships prebuilt.
RUN npm ci --ignore-scripts
COPY tsconfig.json oclif.manifest.json ./
COPY bin ./bin
COPY contracts ./contracts
COPY scripts ./scripts
COPY src ./src
# The auditor UI (vite builds web/ into web/dist; it shares src/lib's pure evidence checker).
COPY web ./web
RUN npm run build && npm run manifest && npm prune --omit=dev --ignore-scripts

FROM node:20-slim
ENV NODE_ENV=production \
    FLYTRAP_HOME=/home/node/.flytrap
WORKDIR /app
COPY --from=build /app/package.json /app/package-lock.json /app/oclif.manifest.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/bin ./bin
COPY --from=build /app/dist ./dist
COPY --from=build /app/contracts ./contracts
COPY --from=build /app/web/dist ./web/dist
# Volume mount points owned by the runtime user, so named volumes start out writable (journal, outbox, anvil state).
RUN mkdir -p /home/node/.flytrap /data && chown node:node /home/node/.flytrap /data
USER node
# 1883 MQTT, 8883 MQTT over TLS (--tls-listen), 9464 Prometheus (--metrics), 8080 auditor UI (audit serve)
EXPOSE 1883 8883 9464 8080
ENTRYPOINT ["node", "bin/run.js"]
CMD ["proxy", "start", "--listen", "0.0.0.0:1883"]
