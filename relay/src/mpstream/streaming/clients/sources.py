"""What a publisher sends: metadata, sequence headers, then media tags timed from 0 ms.

`FileSource` replays an FLV file (optionally looped, timestamps continuing across
loops); `SyntheticStream` (in `synthetic`) makes media up. Both give:
`metadata() -> dict`, `header_tags() -> [Tag]` (sent at the start of every connection)
and `tags() -> Iterator[Tag]` (media in send order; timestamps start at 0).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from mpstream.streaming import flv
from mpstream.streaming.clients import h264
from mpstream.streaming.clients.playback import frame_interval_ms

# File-specific or meaningless for a live stream.
_DROPPED_METADATA = {"duration", "filesize", "datasize", "lasttimestamp", "lastkeyframetimestamp",
                     "lastkeyframelocation", "keyframes", "times", "filepositions"}


class FileSource:
    def __init__(self, path: str | Path, loop: bool = False):
        self.path = Path(path)
        self.loop = loop
        data = self.path.read_bytes()
        self._metadata: dict = {}
        self._headers: list[flv.Tag] = []
        self._media: list[flv.Tag] = []
        self.length_size = h264.LENGTH_SIZE
        for tag in flv.read_tags(data):
            if tag.type == flv.TAG_SCRIPT:
                if not self._metadata:
                    self._metadata = _file_metadata(tag.body)
            elif tag.type == flv.TAG_VIDEO and flv.is_video_sequence_header(tag.body) and not self._media:
                self._headers.append(tag)
                self.length_size = h264.length_size_of(tag.body[5:])
            elif tag.type == flv.TAG_AUDIO and flv.is_audio_sequence_header(tag.body) and not self._media:
                self._headers.append(tag)
            elif tag.type in (flv.TAG_VIDEO, flv.TAG_AUDIO):
                self._media.append(tag)
        if not self._media:
            raise flv.FLVError(f"{self.path}: no audio or video tags")
        self._first_ts = min(t.timestamp for t in self._media)
        # One loop lasts until one frame after the last video frame (the picture stays smooth
        # across the seam; audio, if it runs a little longer, overlaps by a few milliseconds).
        timeline = [t.timestamp for t in self._media if t.type == flv.TAG_VIDEO] or \
            [t.timestamp for t in self._media]
        self.loop_ms = max(timeline) - self._first_ts + round(frame_interval_ms(timeline))

    def metadata(self) -> dict:
        return dict(self._metadata)

    def header_tags(self) -> list[flv.Tag]:
        return [flv.Tag(t.type, 0, t.body) for t in self._headers]

    def tags(self) -> Iterator[flv.Tag]:
        offset = 0
        while True:
            for tag in self._media:
                yield flv.Tag(tag.type, tag.timestamp - self._first_ts + offset, tag.body)
            if not self.loop:
                return
            offset += self.loop_ms


def _file_metadata(body: bytes) -> dict:
    from mpstream.streaming.rtmp import amf0  # the protocol package, only when a file has metadata

    try:
        values = amf0.decode_all(body)
    except Exception:  # a broken script tag only costs us the descriptive metadata
        return {}
    for value in values:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in _DROPPED_METADATA}
    return {}
