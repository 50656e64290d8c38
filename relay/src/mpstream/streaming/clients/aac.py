"""Silent AAC-LC frames of any size, so that a synthetic stream carries valid audio.

A raw_data_block is one channel pair whose two channels code no spectral bands
(silence), padded with fill elements (ID_FIL) to the byte size wanted, then ID_END.
"""

from __future__ import annotations

import functools

from mpstream.streaming.clients.bits import BitWriter

SAMPLE_RATE = 44100
SAMPLES_PER_FRAME = 1024
CHANNELS = 2
_RATE_INDEX = {96000: 0, 88200: 1, 64000: 2, 48000: 3, 44100: 4, 32000: 5, 24000: 6, 22050: 7,
               16000: 8, 12000: 9, 11025: 10, 8000: 11}
_OBJECT_AAC_LC = 2
_ID_CPE, _ID_FIL, _ID_END = 1, 6, 7
_EXT_FILL = 0
_FILL_BYTE = 0b10100101
_FIL_ESCAPE = 15
_FIL_MAX_BYTES = 15 + 255 - 1
_SILENT_BITS = 8 + 2 * 22 + 3  # CPE header, two empty channel streams, ID_END

MIN_FRAME_SIZE = (_SILENT_BITS + 7) // 8


def audio_specific_config(sample_rate: int = SAMPLE_RATE, channels: int = CHANNELS) -> bytes:
    """AudioSpecificConfig for AAC-LC (the body of the FLV AAC sequence header)."""
    w = BitWriter()
    w.u(5, _OBJECT_AAC_LC)
    w.u(4, _RATE_INDEX[sample_rate])
    w.u(4, channels)
    w.u(3, 0)  # frameLengthFlag (1024 samples), dependsOnCoreCoder, extensionFlag
    return w.aligned()


def _empty_channel(w: BitWriter) -> None:
    w.u(8, 100)  # global_gain (irrelevant without bands)
    w.u(1, 0)  # ics_reserved_bit
    w.u(2, 0)  # window_sequence ONLY_LONG_SEQUENCE
    w.u(1, 0)  # window_shape
    w.u(6, 0)  # max_sfb: no bands, so no section, scale factor or spectral data
    w.u(1, 0)  # predictor_data_present
    w.u(1, 0)  # pulse_data_present
    w.u(1, 0)  # tns_data_present
    w.u(1, 0)  # gain_control_data_present


def _fill(w: BitWriter, count: int) -> None:
    w.u(3, _ID_FIL)
    if count >= _FIL_ESCAPE:
        w.u(4, _FIL_ESCAPE)
        w.u(8, count - _FIL_ESCAPE + 1)
    else:
        w.u(4, count)
    if count:
        w.u(4, _EXT_FILL)
        w.u(4, 0)  # fill_nibble
        for _ in range(count - 1):
            w.u(8, _FILL_BYTE)


@functools.lru_cache(maxsize=64)  # a constant bitrate needs only two sizes
def silent_frame(size: int = MIN_FRAME_SIZE) -> bytes:
    """One stereo raw_data_block of exactly `size` bytes (at least MIN_FRAME_SIZE)."""
    if size < MIN_FRAME_SIZE:
        raise ValueError(f"an AAC frame needs at least {MIN_FRAME_SIZE} bytes")
    w = BitWriter()
    w.u(3, _ID_CPE)
    w.u(4, 0)  # element_instance_tag
    w.u(1, 0)  # common_window
    _empty_channel(w)
    _empty_channel(w)
    spare = size * 8 - _SILENT_BITS
    while spare >= 7:
        if spare >= 15 + 8 * _FIL_ESCAPE:
            count = min(_FIL_MAX_BYTES, (spare - 15) // 8)
            spare -= 15 + 8 * count
        else:
            count = min(_FIL_ESCAPE - 1, (spare - 7) // 8)
            spare -= 7 + 8 * count
        _fill(w, count)
    w.u(3, _ID_END)
    frame = w.aligned()
    assert len(frame) == size, (len(frame), size)
    return frame
