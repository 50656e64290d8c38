"""The smallest valid H.264 pictures, so that a synthetic stream decodes without an encoder.

A Baseline-profile stream with one parameter set: an IDR picture is every macroblock
Intra16x16 DC with no residual (a grey frame), a P picture is every macroblock skipped
(the previous frame again). Filler-data NAL units pad a picture to the size the
synthetic stream wants, which decoders read past. NAL units are returned without start
codes or length prefixes; `avcc_frame` and `decoder_configuration` package them for FLV.
"""

from __future__ import annotations

import functools
import struct

from mpstream.streaming.clients.bits import BitWriter

NAL_SLICE = 1
NAL_IDR = 5
NAL_SEI = 6
NAL_SPS = 7
NAL_PPS = 8
NAL_FILLER = 12

PROFILE_BASELINE = 66
LEVEL = 40  # 4.0: 1080p30, comfortably above what the tests use
LOG2_MAX_FRAME_NUM = 4
SEI_USER_DATA_UNREGISTERED = 5
LENGTH_SIZE = 4  # bytes of the NAL unit length prefix in AVCC framing


def escape(rbsp: bytes) -> bytes:
    """Emulation prevention: no 00 00 0x (x <= 3) may appear inside a NAL unit."""
    out = bytearray()
    zeros = 0
    for byte in rbsp:
        if zeros >= 2 and byte <= 3:
            out.append(3)
            zeros = 0
        out.append(byte)
        zeros = zeros + 1 if byte == 0 else 0
    return bytes(out)


def nal(nal_type: int, ref_idc: int, rbsp: bytes) -> bytes:
    return bytes([(ref_idc << 5) | nal_type]) + escape(rbsp)


def macroblocks(width: int, height: int) -> tuple[int, int]:
    return (width + 15) // 16, (height + 15) // 16


def sps(width: int, height: int, fps: int) -> bytes:
    mbs_w, mbs_h = macroblocks(width, height)
    w = BitWriter()
    w.u(8, PROFILE_BASELINE)
    w.u(8, 0b11000000)  # constraint_set0/1: also decodable as Constrained Baseline
    w.u(8, LEVEL)
    w.ue(0)  # seq_parameter_set_id
    w.ue(LOG2_MAX_FRAME_NUM - 4)
    w.ue(2)  # pic_order_cnt_type 2: output order = decoding order (no B-frames)
    w.ue(1)  # max_num_ref_frames
    w.u(1, 0)  # gaps_in_frame_num_value_allowed_flag
    w.ue(mbs_w - 1)
    w.ue(mbs_h - 1)
    w.u(1, 1)  # frame_mbs_only_flag
    w.u(1, 1)  # direct_8x8_inference_flag
    crop_right, crop_bottom = (mbs_w * 16 - width) // 2, (mbs_h * 16 - height) // 2
    w.u(1, 1 if crop_right or crop_bottom else 0)
    if crop_right or crop_bottom:
        w.ue(0)
        w.ue(crop_right)
        w.ue(0)
        w.ue(crop_bottom)
    w.u(1, 1)  # vui_parameters_present_flag: carry the frame rate
    w.u(1, 0)  # aspect_ratio_info_present_flag
    w.u(1, 0)  # overscan_info_present_flag
    w.u(1, 0)  # video_signal_type_present_flag
    w.u(1, 0)  # chroma_loc_info_present_flag
    w.u(1, 1)  # timing_info_present_flag
    w.u(32, 1)  # num_units_in_tick
    w.u(32, 2 * fps)  # time_scale (two ticks per frame)
    w.u(1, 1)  # fixed_frame_rate_flag
    w.u(1, 0)  # nal_hrd_parameters_present_flag
    w.u(1, 0)  # vcl_hrd_parameters_present_flag
    w.u(1, 0)  # pic_struct_present_flag
    w.u(1, 0)  # bitstream_restriction_flag
    return nal(NAL_SPS, 3, w.trailing())


def pps() -> bytes:
    w = BitWriter()
    w.ue(0)  # pic_parameter_set_id
    w.ue(0)  # seq_parameter_set_id
    w.u(1, 0)  # entropy_coding_mode_flag: CAVLC
    w.u(1, 0)  # bottom_field_pic_order_in_frame_present_flag
    w.ue(0)  # num_slice_groups_minus1
    w.ue(0)  # num_ref_idx_l0_default_active_minus1
    w.ue(0)  # num_ref_idx_l1_default_active_minus1
    w.u(1, 0)  # weighted_pred_flag
    w.u(2, 0)  # weighted_bipred_idc
    w.se(0)  # pic_init_qp_minus26
    w.se(0)  # pic_init_qs_minus26
    w.se(0)  # chroma_qp_index_offset
    w.u(1, 1)  # deblocking_filter_control_present_flag
    w.u(1, 0)  # constrained_intra_pred_flag
    w.u(1, 0)  # redundant_pic_cnt_present_flag
    return nal(NAL_PPS, 3, w.trailing())


def idr_slice(width: int, height: int, idr_pic_id: int) -> bytes:
    """A grey keyframe: every macroblock I_16x16, DC prediction, no coded coefficients."""
    mbs_w, mbs_h = macroblocks(width, height)
    w = BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(7)  # slice_type: I (all slices of the picture)
    w.ue(0)  # pic_parameter_set_id
    w.u(LOG2_MAX_FRAME_NUM, 0)  # frame_num
    w.ue(idr_pic_id % 65536)
    w.u(1, 0)  # no_output_of_prior_pics_flag
    w.u(1, 0)  # long_term_reference_flag
    w.se(0)  # slice_qp_delta
    w.ue(1)  # disable_deblocking_filter_idc: off (nothing to smooth)
    for _ in range(mbs_w * mbs_h):
        w.ue(3)  # mb_type I_16x16_2_0_0: DC prediction, no AC, no chroma coefficients
        w.ue(0)  # intra_chroma_pred_mode: DC
        w.se(0)  # mb_qp_delta
        w.u(1, 1)  # coeff_token of the luma DC block: no coefficients (nC < 2)
    return nal(NAL_IDR, 3, w.trailing())


@functools.lru_cache(maxsize=256)  # a GOP's frames repeat their frame_num in every GOP
def p_slice(width: int, height: int, frame_num: int) -> bytes:
    """A repeat of the previous picture: one run that skips every macroblock."""
    mbs_w, mbs_h = macroblocks(width, height)
    w = BitWriter()
    w.ue(0)  # first_mb_in_slice
    w.ue(5)  # slice_type: P (all slices of the picture)
    w.ue(0)  # pic_parameter_set_id
    w.u(LOG2_MAX_FRAME_NUM, frame_num % (1 << LOG2_MAX_FRAME_NUM))
    w.u(1, 0)  # num_ref_idx_active_override_flag
    w.u(1, 0)  # ref_pic_list_modification_flag_l0
    w.u(1, 0)  # adaptive_ref_pic_marking_mode_flag
    w.se(0)  # slice_qp_delta
    w.ue(1)  # disable_deblocking_filter_idc
    w.ue(mbs_w * mbs_h)  # mb_skip_run
    return nal(NAL_SLICE, 2, w.trailing())


def filler(total_size: int) -> bytes:
    """A filler-data NAL unit of exactly `total_size` bytes (at least 2)."""
    if total_size < 2:
        raise ValueError("a filler NAL unit needs at least 2 bytes")
    return bytes([NAL_FILLER]) + b"\xff" * (total_size - 2) + b"\x80"


def sei_user_data(uuid: bytes, payload: bytes) -> bytes:
    """An SEI message that decoders ignore: user data tagged with a 16-byte UUID."""
    if len(uuid) != 16:
        raise ValueError("the SEI user data UUID is 16 bytes")
    body = uuid + payload
    size = len(body)
    header = bytes([SEI_USER_DATA_UNREGISTERED]) + b"\xff" * (size // 255) + bytes([size % 255])
    return nal(NAL_SEI, 0, header + body + b"\x80")


def sei_user_data_payload(nal_unit: bytes, uuid: bytes) -> bytes | None:
    """The payload of a user-data SEI with this UUID, or None for any other NAL unit."""
    if not nal_unit or nal_unit[0] & 0x1F != NAL_SEI or len(nal_unit) < 3:
        return None
    data = unescape(nal_unit[1:])
    if data[0] != SEI_USER_DATA_UNREGISTERED:
        return None
    pos, size = 1, 0
    while pos < len(data) and data[pos] == 0xFF:
        size += 255
        pos += 1
    if pos >= len(data):
        return None
    size += data[pos]
    body = data[pos + 1:pos + 1 + size]
    if len(body) != size or body[:16] != uuid:
        return None
    return body[16:]


def unescape(data: bytes) -> bytes:
    """Remove emulation prevention bytes (00 00 03 -> 00 00)."""
    return data.replace(b"\x00\x00\x03", b"\x00\x00")


def avcc_frame(nal_units: list[bytes]) -> bytes:
    """NAL units with 4-byte length prefixes, as FLV/MP4 carry them."""
    return b"".join(struct.pack(">I", len(unit)) + unit for unit in nal_units)


def split_avcc(data: bytes, length_size: int = LENGTH_SIZE) -> list[bytes]:
    """The NAL units of a length-prefixed frame (a truncated tail is dropped)."""
    units, pos = [], 0
    while pos + length_size <= len(data):
        size = int.from_bytes(data[pos:pos + length_size], "big")
        pos += length_size
        if pos + size > len(data):
            break
        units.append(data[pos:pos + size])
        pos += size
    return units


def decoder_configuration(sps_unit: bytes, pps_unit: bytes) -> bytes:
    """AVCDecoderConfigurationRecord (ISO/IEC 14496-15), the body of the sequence header."""
    return (
        bytes([1, sps_unit[1], sps_unit[2], sps_unit[3], 0xFC | (LENGTH_SIZE - 1), 0xE0 | 1])
        + struct.pack(">H", len(sps_unit)) + sps_unit
        + bytes([1]) + struct.pack(">H", len(pps_unit)) + pps_unit
    )


def length_size_of(configuration: bytes) -> int:
    """The NAL length prefix size an AVCDecoderConfigurationRecord announces."""
    return (configuration[4] & 0x03) + 1 if len(configuration) > 4 else LENGTH_SIZE
