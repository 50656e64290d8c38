"""Edge relays: pull streams nobody publishes locally from redundant origins, and splice when one fails.

`splice` (what players get across a change of origin) and `origins` (which origin next)
are pure; `pull` is the asyncio side of one pulled stream, `manager` the relay's hooks
(first player starts a pull, the last one leaving ends it after a linger). See
docs/edge-relays.md.
"""
