"""Generate a synthetic job DAG data set shaped like TPC-H's (no download needed).

    python generate_synthetic_data.py            # -> <data>/cjs/synthetic/<size>/{adj_mat,task_duration}_<q>.*
    python run_baseline.py --sched fair --dataset synthetic

Same seed, same files. Task durations are written as JSON, not pickles.
"""
import argparse

from spark_sched_sim.datasets import resolve_data_root
from common.errors import exit_on_input_error
from spark_sched_sim.synthetic import generate


@exit_on_input_error
def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="data root to write into (default: $TRAILBLAZER_DATA or ./data)")
    parser.add_argument("--name", default="synthetic", help="data set name: <data>/cjs/<name>/")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    print(f"wrote {generate(resolve_data_root(args.data_dir), args.name, args.seed, args.overwrite)}")


if __name__ == "__main__":
    main()
