"""Generate synthetic trace sets and a synthetic video in the public data's layout and formats.

    python generate_synthetic_data.py                       # synthetic-{train,valid,test} + video 'synthetic'
    python generate_synthetic_data.py --prefix wide --min-mbps 0.1 --max-mbps 8 --test 100 --train 0 --valid 0
    python generate_synthetic_data.py --prefix big --video-scale 1.3 --train 0 --valid 0 --test 0   # a video only

Use them like the real data: --trace synthetic-test --video synthetic. Same seed, same files.
"""
from dataclasses import dataclass

from abr_sim.datasets import resolve_data_root
from abr_sim.synthetic import TraceConfig, generate
from common import settings as cli
from common.errors import InputError, exit_on_input_error
from common.settings import setting

TRACES = TraceConfig()


@dataclass
class Settings:
    data_dir: str | None = setting(None, "data root to write into (default: $TRAILBLAZER_DATA, else ./data)")
    prefix: str = setting("synthetic", "names: <prefix>-<split> trace sets, video <prefix>")
    seed: int = setting(0, "seeds the trace and video generator")
    train: int = setting(100, "number of training traces")
    valid: int = setting(30, "number of validation traces")
    test: int = setting(50, "number of test traces")
    min_mbps: float = setting(TRACES.min_mbps, "lowest bandwidth level (Mbps)")
    max_mbps: float = setting(TRACES.max_mbps, "highest bandwidth level (Mbps)")
    max_hold: int = setting(TRACES.max_hold, "samples a bandwidth level lasts at most")
    noise: float = setting(TRACES.noise, "standard deviation of the multiplicative noise on every sample")
    interval_s: float = setting(TRACES.interval_s, "seconds between samples")
    duration_s: float = setting(TRACES.duration_s, "trace length in seconds")
    video_scale: float = setting(1.0, "the video's chunk sizes are this times the nominal bitrates' (an encoder "
                                      "over- or undershooting them)")
    overwrite: bool = setting(False, "regenerate sets that already exist")


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    config = TraceConfig(args.min_mbps, args.max_mbps, args.max_hold, args.noise, args.interval_s, args.duration_s)
    if not 0 < config.min_mbps <= config.max_mbps:
        raise InputError("need 0 < --min-mbps <= --max-mbps")
    if config.max_hold < 1 or config.interval_s <= 0 or config.duration_s < config.interval_s or config.noise < 0:
        raise InputError("need --max-hold >= 1, --interval-s > 0, --duration-s >= --interval-s and --noise >= 0")
    counts = {split: count for split, count in (("train", args.train), ("valid", args.valid), ("test", args.test))
              if count > 0}
    if min([args.train, args.valid, args.test]) < 0:
        raise InputError("--train, --valid and --test are numbers of traces (0 or more)")
    if args.video_scale <= 0:
        raise InputError(f"--video-scale must be positive, got {args.video_scale}")
    for path in generate(resolve_data_root(args.data_dir), args.prefix, counts, config, args.seed, args.overwrite,
                         args.video_scale):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
