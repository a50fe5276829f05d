"""Generate synthetic trace sets and a synthetic video in the public data's layout and formats.

    python generate_synthetic_data.py                       # synthetic-{train,valid,test} + video 'synthetic'
    python generate_synthetic_data.py --prefix wide --min-mbps 0.1 --max-mbps 8 --test 100 --train 0 --valid 0

Use them like the real data: --trace synthetic-test --video synthetic. Same seed, same files.
"""
import argparse

from abr_sim.datasets import resolve_data_root
from common.errors import InputError, exit_on_input_error
from abr_sim.synthetic import TraceConfig, generate


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data root to write into (default: $TRAILBLAZER_DATA or ./data)")
    parser.add_argument("--prefix", default="synthetic", help="names: <prefix>-<split> trace sets, video <prefix>")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=100, help="number of training traces")
    parser.add_argument("--valid", type=int, default=30, help="number of validation traces")
    parser.add_argument("--test", type=int, default=50, help="number of test traces")
    defaults = TraceConfig()
    parser.add_argument("--min-mbps", type=float, default=defaults.min_mbps)
    parser.add_argument("--max-mbps", type=float, default=defaults.max_mbps)
    parser.add_argument("--max-hold", type=int, default=defaults.max_hold, help="samples a bandwidth level lasts at most")
    parser.add_argument("--noise", type=float, default=defaults.noise, help="std of the multiplicative noise")
    parser.add_argument("--interval-s", type=float, default=defaults.interval_s, help="seconds between samples")
    parser.add_argument("--duration-s", type=float, default=defaults.duration_s, help="trace length in seconds")
    parser.add_argument("--overwrite", action="store_true", help="regenerate sets that already exist")
    return parser.parse_args(argv)


@exit_on_input_error
def main(argv=None):
    args = parse_args(argv)
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
