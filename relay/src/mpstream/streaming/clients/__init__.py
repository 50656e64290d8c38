"""The experiment's end points: `mpstream publish` (the Push) and `mpstream play` (the Client).

Pure parts (playback model, synthetic bitstreams, FLV file pacing, summaries) have no
I/O; `publisher` and `player` are thin asyncio adapters around the RTMP client session.
"""
