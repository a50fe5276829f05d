"""A real DASH video for emulation, encoded by ffmpeg from its own test pattern (nothing downloaded): the
six bitrates of the simulator's ladder, TOTAL_VIDEO_CHUNKS + 1 segments of 4 s (the simulator's videos hold
one more chunk for MPC's look-ahead), and the same segment sizes written as a simulator video
(<data>/abr/videos/<name>_sizes/video_size_<level>), so simulation and emulation stream the same bytes."""
import json
import shutil
import subprocess
from pathlib import Path

from abr_sim.constants import TOTAL_VIDEO_CHUNKS, VIDEO_BIT_RATE, VIDEO_CHUNK_LEN_MS
from abr_sim.synthetic import write_video
from common.errors import InputError
from common.files import atomic_folder

SEGMENT_S = int(VIDEO_CHUNK_LEN_MS / 1000)
SEGMENTS = TOTAL_VIDEO_CHUNKS + 1
FPS = 24
HEIGHTS = [240, 360, 480, 720, 1080, 1080]  # per rung of VIDEO_BIT_RATE (16:9)
MANIFEST = "manifest.mpd"


def ffmpeg_command(folder: Path, heights: list[int]) -> list[str]:
    """One ffmpeg run: the test pattern scaled to every rung, x264 at the rung's bitrate with a key frame
    every segment (so segments are exactly 4 s), packaged as one DASH adaptation set."""
    command = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
               f"testsrc2=size=1920x1080:rate={FPS}:duration={SEGMENTS * SEGMENT_S}", "-filter_complex",
               f"[0:v]split={len(VIDEO_BIT_RATE)}" + "".join(f"[s{i}]" for i in range(len(VIDEO_BIT_RATE))) + ";"
               + ";".join(f"[s{i}]scale=-2:{h}[v{i}]" for i, h in enumerate(heights))]
    for i, kbps in enumerate(VIDEO_BIT_RATE):
        command += ["-map", f"[v{i}]", f"-c:v:{i}", "libx264", f"-b:v:{i}", f"{kbps}k", f"-maxrate:v:{i}",
                    f"{kbps}k", f"-bufsize:v:{i}", f"{kbps}k"]
    command += ["-preset", "veryfast", "-pix_fmt", "yuv420p", "-g", str(FPS * SEGMENT_S), "-keyint_min",
                str(FPS * SEGMENT_S), "-sc_threshold", "0", "-f", "dash", "-seg_duration", str(SEGMENT_S),
                "-use_template", "1", "-use_timeline", "0", "-init_seg_name", "init-$RepresentationID$.m4s",
                "-media_seg_name", "chunk-$RepresentationID$-$Number%05d$.m4s", "-adaptation_sets", "id=0,streams=v",
                str(folder / MANIFEST)]
    return command


def segment_sizes(folder: Path) -> list[list[int]]:
    """Bytes of every media segment, per rung (lowest bitrate first)."""
    sizes = []
    for level in range(len(VIDEO_BIT_RATE)):
        files = sorted(folder.glob(f"chunk-{level}-*.m4s"))
        if len(files) != SEGMENTS:
            raise InputError(f"ffmpeg wrote {len(files)} segments for rung {level}, not {SEGMENTS}; "
                             "check the ffmpeg version (Debian's 5.1 is known to work)")
        sizes.append([path.stat().st_size for path in files])
    return sizes


def make_dash_video(video_dir: Path, data_root: Path, name: str, overwrite: bool = False,
                    heights: list[int] = HEIGHTS) -> list[list[int]]:
    """Encode the video into `video_dir` and write its sizes as simulator video `name` under `data_root`
    (`heights`: the rungs' picture heights; the tests use small ones, which encode in seconds)."""
    if shutil.which("ffmpeg") is None:
        raise InputError("ffmpeg is not installed; install it with: apt-get install ffmpeg")
    sizes_folder = data_root / "abr" / "videos" / f"{name}_sizes"
    for target in (video_dir, sizes_folder):
        if target.exists() and not overwrite:
            raise InputError(f"{target} already exists; pick another --name or pass --overwrite", "name",
                             fixes=("overwrite",))
    with atomic_folder(video_dir) as staging:
        result = subprocess.run(ffmpeg_command(staging, heights), capture_output=True, text=True)
        if result.returncode != 0:
            raise InputError(f"ffmpeg failed: {result.stderr.strip().splitlines()[-1] if result.stderr else ''}")
        sizes = segment_sizes(staging)
        (staging / "sizes.json").write_text(json.dumps(sizes))  # for the player's reports (nextChunkSize)
    write_video(data_root, name, sizes)
    return sizes
