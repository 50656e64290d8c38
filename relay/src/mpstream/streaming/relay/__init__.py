"""`mpstream relay`: the live RTMP relay (publish once, play many) on MPTCP sockets.

Layers, each with one job:
- `config`: defaults, TOML file, flags; `access`: keys and CIDR lists.
- `connection`: the asyncio adapter (one `rtmp.ServerSession` per socket).
- `server.Relay`: the stream registry and what to do on each session event; timeouts.
- `stream.Stream`: one stream's publisher, players, GOP cache and shared-bytes fan-out.
- `outbox.Outbox`: a player's bounded queue (skip to keyframe when behind).
- `stats`: JSON and Prometheus over HTTP; `command`: the CLI.

Embedding (tests, benchmarks): `relay = Relay(load(None, {...})); await relay.start();
relay.listening` lists the bound addresses; `await relay.stop()`.
"""
