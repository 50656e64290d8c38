"""A synthetic live stream: valid FLV H.264 + AAC whose sizes follow a video encoder's pattern.

No input file and no encoder: pictures are grey (see `h264`) and audio is silent (see
`aac`), padded with filler so that the bytes on the wire look like video. Each GOP of
`fps * gop_s` frames spends exactly its share of the video bitrate; the keyframe is
`keyframe_ratio` times an average inter frame and inter frames vary by +/- `jitter`
(fixed seed: the same options give the same bytes). Audio is constant-bitrate AAC.
Byte budgets count FLV message bodies, i.e. what RTMP carries as audio/video payload.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass

from mpstream.streaming import flv
from mpstream.streaming.clients import aac, h264

_VIDEO_HEADER = 5  # frame type/codec, AVC packet type, composition time
_AUDIO_HEADER = 2  # sound format byte, AAC packet type
_PREFIX = h264.LENGTH_SIZE
AVC_KEY = (flv.FRAME_KEY << 4) | flv.CODEC_AVC
AVC_INTER = (flv.FRAME_INTER << 4) | flv.CODEC_AVC
AAC_STEREO_44K = (flv.SOUND_AAC << 4) | 0x0F  # AAC, 44 kHz, 16 bit, stereo (fixed for AAC)
_AVC_NALU, _AAC_RAW = 1, 1


def parse_rate(text: str) -> int:
    """'2.5M', '800k', '128000' -> bits per second."""
    text = text.strip()
    scale = {"k": 1e3, "m": 1e6, "g": 1e9}.get(text[-1:].lower(), 1)
    number = text[:-1] if scale != 1 else text
    value = int(round(float(number) * scale))
    if value <= 0:
        raise ValueError(f"not a positive rate: {text!r}")
    return value


def parse_duration(text: str) -> float:
    """'2s', '500ms', '1.5' -> seconds."""
    text = text.strip().lower()
    if text.endswith("ms"):
        return float(text[:-2]) / 1000
    return float(text[:-1] if text.endswith("s") else text)


@dataclass(frozen=True)
class SyntheticOptions:
    bitrate_bps: int = 2_500_000  # video + audio payload
    fps: int = 30
    gop_s: float = 2.0
    width: int = 1280
    height: int = 720
    audio_bps: int = 128_000
    keyframe_ratio: float = 8.0  # keyframe size / average inter frame size
    jitter: float = 0.25  # inter frame size variation, +/- this fraction
    seed: int = 1

    @property
    def video_bps(self) -> int:
        return self.bitrate_bps - self.audio_bps

    @property
    def gop_frames(self) -> int:
        return max(1, round(self.fps * self.gop_s))

    def check(self) -> None:
        if self.fps <= 0 or self.gop_s <= 0:
            raise ValueError("--fps and --gop must be positive")
        if self.audio_bps < 0 or self.video_bps <= 0:
            raise ValueError("--bitrate must exceed the audio bitrate")


class SyntheticStream:
    """The stream's metadata, sequence headers and (endless) media tags from timestamp 0."""

    def __init__(self, options: SyntheticOptions = SyntheticOptions()):
        options.check()
        self.options = options
        self._sps = h264.sps(options.width, options.height, options.fps)
        self._pps = h264.pps()
        # IDR pictures are all alike; idr_pic_id only has to alternate between neighbours.
        self._idr = [h264.idr_slice(options.width, options.height, i) for i in (0, 1)]

    def metadata(self) -> dict:
        o = self.options
        return {
            "width": float(o.width), "height": float(o.height), "framerate": float(o.fps),
            "videocodecid": float(flv.CODEC_AVC), "videodatarate": o.video_bps / 1000,
            "audiocodecid": float(flv.SOUND_AAC), "audiodatarate": o.audio_bps / 1000,
            "audiosamplerate": float(aac.SAMPLE_RATE), "audiosamplesize": 16.0,
            "stereo": aac.CHANNELS == 2, "encoder": "mpstream synthetic",
        }

    def header_tags(self) -> list[flv.Tag]:
        video = bytes([AVC_KEY, flv.AVC_SEQUENCE_HEADER, 0, 0, 0]) + h264.decoder_configuration(
            self._sps, self._pps)
        audio = bytes([AAC_STEREO_44K, flv.AAC_SEQUENCE_HEADER]) + aac.audio_specific_config()
        tags = [flv.Tag(flv.TAG_VIDEO, 0, video)]
        if self.options.audio_bps:
            tags.append(flv.Tag(flv.TAG_AUDIO, 0, audio))
        return tags

    def tags(self) -> Iterator[flv.Tag]:
        """Video and audio merged in timestamp order (video first on ties)."""
        streams = [self._video()]
        if self.options.audio_bps:
            streams.append(self._audio())
        return heapq.merge(*streams, key=lambda tag: (tag.timestamp, tag.type != flv.TAG_VIDEO))

    # Video -------------------------------------------------------------------------------

    def gop_sizes(self, gop_index: int) -> list[int]:
        """Body sizes of one GOP's frames: the keyframe first, summing to the GOP's budget."""
        o = self.options
        n = o.gop_frames
        rng = random.Random(o.seed * 1_000_003 + gop_index)
        weights = [o.keyframe_ratio] + [1 + rng.uniform(-o.jitter, o.jitter) for _ in range(n - 1)]
        first = gop_index * n
        # Cumulative rounding: every GOP (and so every second) gets its exact share of bytes.
        budget_before = round(first * o.video_bps / 8 / o.fps)
        budget = round((first + n) * o.video_bps / 8 / o.fps) - budget_before
        total = sum(weights)
        sizes, spent, acc = [], 0, 0.0
        for w in weights:
            acc += w
            target = round(budget * acc / total)
            sizes.append(target - spent)
            spent = target
        return sizes

    def video_body(self, frame_index: int, size: int) -> bytes:
        o = self.options
        n = o.gop_frames
        in_gop = frame_index % n
        if in_gop == 0:
            units, first = [self._sps, self._pps, self._idr[(frame_index // n) % 2]], AVC_KEY
        else:
            units, first = [h264.p_slice(o.width, o.height, in_gop)], AVC_INTER
        used = _VIDEO_HEADER + sum(_PREFIX + len(u) for u in units)
        pad = size - used - _PREFIX
        if pad >= 2:
            units.append(h264.filler(pad))
        return bytes([first, _AVC_NALU, 0, 0, 0]) + h264.avcc_frame(units)

    def _video(self) -> Iterator[flv.Tag]:
        o = self.options
        frame = 0
        gop = 0
        while True:
            for size in self.gop_sizes(gop):
                yield flv.Tag(flv.TAG_VIDEO, round(frame * 1000 / o.fps), self.video_body(frame, size))
                frame += 1
            gop += 1

    # Audio -------------------------------------------------------------------------------

    def _audio(self) -> Iterator[flv.Tag]:
        o = self.options
        frame_s = aac.SAMPLES_PER_FRAME / aac.SAMPLE_RATE
        per_frame = o.audio_bps / 8 * frame_s
        index = 0
        while True:
            size = round((index + 1) * per_frame) - round(index * per_frame)
            raw = aac.silent_frame(max(aac.MIN_FRAME_SIZE, size - _AUDIO_HEADER))
            yield flv.Tag(flv.TAG_AUDIO, round(index * frame_s * 1000),
                          bytes([AAC_STEREO_44K, _AAC_RAW]) + raw)
            index += 1
