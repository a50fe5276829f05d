"""Generate a synthetic job DAG data set shaped like TPC-H's (no download needed).

    python generate_synthetic_data.py            # -> <data>/cjs/synthetic/<size>/{adj_mat,task_duration}_<q>.*
    python run_baseline.py --sched fair --dataset synthetic

Same seed, same files. Task durations are written as JSON, not pickles.
"""
from dataclasses import dataclass

from common import settings as cli
from common.errors import exit_on_input_error
from common.settings import setting
from spark_sched_sim.datasets import resolve_data_root
from spark_sched_sim.synthetic import generate


@dataclass
class Settings:
    data_dir: str | None = setting(None, "data root to write into (default: $TRAILBLAZER_DATA, else ./data)")
    name: str = setting("synthetic", "data set name: <data>/cjs/<name>/")
    seed: int = setting(0, "seeds the DAG shapes, task counts and durations")
    overwrite: bool = setting(False, "regenerate a data set that already exists")


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    print(f"wrote {generate(resolve_data_root(args.data_dir), args.name, args.seed, args.overwrite)}")


if __name__ == "__main__":
    main()
