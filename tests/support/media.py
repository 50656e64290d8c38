"""Sample media made with ffmpeg, and ffprobe helpers to check what a peer received.

`sample_flv()` returns the path of a small H.264/AAC FLV (lavfi testsrc + sine),
made once and cached under `<repo>/.cache/media/` keyed by its parameters, so that
every suite publishes the same bytes without re-encoding them.

    from tests.support.media import sample_flv, count_video_frames, stream_info
    path = sample_flv(seconds=6)              # 640x360, 25 fps, 2 s GOP, ~1 Mbit/s
    count_video_frames(path)                  # frames that decode
    stream_info(path)["video"]["codec_name"]  # "h264"
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CACHE_DIR = Path(os.environ.get("MPSTREAM_MEDIA_CACHE", REPO / ".cache" / "media"))


def have_ffmpeg() -> bool:
    return shutil.which("ffmpeg") is not None and shutil.which("ffprobe") is not None


def sample_flv(
    seconds: float = 6,
    width: int = 640,
    height: int = 360,
    fps: int = 25,
    gop_seconds: float = 2,
    video_kbps: int = 900,
    audio_kbps: int = 64,
) -> Path:
    """An H.264 (baseline, no B-frames) + AAC FLV; built on first use and then cached."""
    name = f"testsrc_{width}x{height}_{fps}fps_gop{gop_seconds:g}s_{video_kbps}k_{seconds:g}s.flv"
    path = CACHE_DIR / name
    if path.exists() and path.stat().st_size > 0:
        return path
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    gop = max(1, round(fps * gop_seconds))
    partial = path.with_suffix(f".{os.getpid()}.part.flv")
    cmd = [
        "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={fps}:duration={seconds}",
        "-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=44100:duration={seconds}",
        "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-profile:v", "baseline",
        "-pix_fmt", "yuv420p", "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0",
        "-b:v", f"{video_kbps}k", "-maxrate", f"{video_kbps}k", "-bufsize", f"{video_kbps}k",
        "-c:a", "aac", "-b:a", f"{audio_kbps}k", "-ac", "2",
        "-f", "flv", str(partial),
    ]
    subprocess.run(cmd, check=True, timeout=120)
    os.replace(partial, path)  # atomic: parallel test runs never see half a file
    return path


def _ffprobe(args: list[str], timeout: float = 60) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-of", "json", *args],
        check=True, capture_output=True, text=True, timeout=timeout,
    ).stdout
    return json.loads(out)


def stream_info(path: str | os.PathLike) -> dict:
    """{"video": {...}, "audio": {...}} with ffprobe's stream fields (codec_name, width, ...)."""
    data = _ffprobe(["-show_streams", str(path)])
    info: dict = {}
    for stream in data.get("streams", []):
        kind = stream.get("codec_type")
        if kind in ("video", "audio") and kind not in info:
            info[kind] = stream
    return info


def count_video_frames(path: str | os.PathLike) -> int:
    """Video frames that actually decode (ffprobe -count_frames), 0 if there is no video."""
    data = _ffprobe(["-select_streams", "v:0", "-count_frames", "-show_entries",
                     "stream=nb_read_frames", str(path)], timeout=120)
    streams = data.get("streams") or [{}]
    value = streams[0].get("nb_read_frames", "0")
    return int(value) if str(value).isdigit() else 0


def first_video_frame_is_key(path: str | os.PathLike) -> bool:
    """Whether the first video packet in the file is a keyframe."""
    data = _ffprobe(["-select_streams", "v:0", "-show_entries", "packet=flags",
                     "-read_intervals", "%+#1", str(path)])
    packets = data.get("packets") or []
    return bool(packets) and "K" in packets[0].get("flags", "")
