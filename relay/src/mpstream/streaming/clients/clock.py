"""The publisher's wall-clock start, announced so that a player can compute end-to-end latency.

The publisher stamps its stream timestamps from one moment, `start_ms` (Unix time in
milliseconds at stream timestamp 0). A frame with timestamp `ts` was sent at
`start_ms + ts`, so a player on a synchronised clock (one machine, or NTP) knows each
frame's latency on arrival. The start travels twice:

- in onMetaData as `mpstreamStartMs` (what the issue asks for; relays that pass metadata
  through, like ours, deliver it), and
- in every keyframe as an H.264 user-data SEI (decoders skip it), because relays that
  rebuild metadata from known fields (nginx-rtmp's default `meta on`) drop unknown keys.
"""

from __future__ import annotations

from mpstream import __version__
from mpstream.streaming import flv
from mpstream.streaming.clients import h264

METADATA_START_KEY = "mpstreamStartMs"
METADATA_VERSION_KEY = "mpstreamVersion"
SEI_UUID = b"mpstream-clock-1"  # 16 bytes: names our SEI among others
_SEI_PREFIX = b"start_ms="
_AVC_NALU = 1


def announce(metadata: dict, start_ms: int) -> dict:
    """`metadata` plus the start and our version."""
    return {**metadata, METADATA_START_KEY: float(start_ms), METADATA_VERSION_KEY: __version__}


def start_from_metadata(values: list) -> int | None:
    """The announced start in a decoded onMetaData / @setDataFrame data message."""
    for value in values:
        if isinstance(value, dict):
            start = value.get(METADATA_START_KEY)
            if isinstance(start, (int, float)) and not isinstance(start, bool) and start > 0:
                return int(start)
    return None


def _is_avc_frame(body: bytes) -> bool:
    return len(body) > 5 and not body[0] & flv.VIDEO_EX_HEADER and body[0] & 0x0F == flv.CODEC_AVC \
        and body[1] == _AVC_NALU


def stamp_keyframe(body: bytes, start_ms: int, length_size: int = h264.LENGTH_SIZE) -> bytes:
    """An AVC keyframe body with our clock SEI in front of its NAL units; other bodies unchanged."""
    if not flv.is_keyframe(body) or not _is_avc_frame(body):
        return body
    sei = h264.sei_user_data(SEI_UUID, _SEI_PREFIX + str(start_ms).encode())
    return body[:5] + len(sei).to_bytes(length_size, "big") + sei + body[5:]


def start_from_keyframe(body: bytes, length_size: int = h264.LENGTH_SIZE) -> int | None:
    """The start carried by `stamp_keyframe`, if this video body has it."""
    if not flv.is_keyframe(body) or not _is_avc_frame(body):
        return None
    for unit in h264.split_avcc(body[5:], length_size):
        payload = h264.sei_user_data_payload(unit, SEI_UUID)
        if payload is not None and payload.startswith(_SEI_PREFIX):
            digits = payload[len(_SEI_PREFIX):]
            return int(digits) if digits.isdigit() else None
        if unit and unit[0] & 0x1F in (h264.NAL_IDR, h264.NAL_SLICE):
            break  # SEI comes before the picture
    return None
