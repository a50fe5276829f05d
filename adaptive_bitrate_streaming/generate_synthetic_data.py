"""Generate synthetic trace sets and a synthetic video in the public data's layout and formats.

    python generate_synthetic_data.py                       # synthetic-{train,valid,test} + video 'synthetic'
    python generate_synthetic_data.py --prefix wide --min-mbps 0.1 --max-mbps 8 --test 100 --train 0 --valid 0

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
    if not counts or min(counts.values()) < 0:
        raise InputError("ask for at least one trace (--train/--valid/--test)")
    for path in generate(resolve_data_root(args.data_dir), args.prefix, counts, config, args.seed, args.overwrite):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
