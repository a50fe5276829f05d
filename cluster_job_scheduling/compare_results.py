"""Paired comparison of two schedulers' results on the same seeds (summary.json of run_baseline.py or
run_plm.py --test): mean average JCT of each, the mean and spread of the per-seed difference, and on how
many seeds the first one wins. Each side may be several folders (e.g. one per block of seeds).

    python compare_results.py --results artifacts/tpch_best_of_n/results_seeds_{1-5,6-10,11-15,16-20} \
        --reference artifacts/tpch_best_of_n/decima_seeds_{1-5,6-10,11-15,16-20}
"""
from dataclasses import dataclass

from common import settings as cli
from common.errors import exit_on_input_error
from common.settings import setting
from spark_sched_sim.results import paired_comparison, read_per_seed


@dataclass
class Settings:
    results: list[str] = setting([], "results folders of the scheduler compared", required=True)
    reference: list[str] = setting([], "results folders of the scheduler it is compared with", required=True)


@exit_on_input_error
def main(argv=None):
    args, _ = cli.parse(Settings, argv, __doc__)
    c = paired_comparison(read_per_seed(*args.results), read_per_seed(*args.reference))
    print(f"{c['seeds']} seeds: average JCT {c['mean_jct_s']:.2f} s against {c['reference_mean_jct_s']:.2f} s; "
          f"difference {c['mean_difference_s']:+.2f} s (std {c['std_difference_s']:.2f} across seeds, "
          f"{c['mean_difference_s'] / c['reference_mean_jct_s']:+.1%}); wins {c['wins']}, losses {c['losses']}")


if __name__ == "__main__":
    main()
