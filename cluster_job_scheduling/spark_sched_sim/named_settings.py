"""The named test settings of the paper's evaluation (reproduce.py), in one place: the cluster and workload
of each and what differs from the default. Schedulers are adapted on the default setting only (the recipe's
pool and validation seeds); every setting uses the TPC-H job DAGs (download_data.py) and the default
arrival rate, moving delay and warm-up delay."""
from dataclasses import dataclass


@dataclass(frozen=True)
class NamedSetting:
    name: str
    num_executors: int
    job_arrival_cap: int
    differs: str  # from the default, for tables


SETTINGS = {
    "default": NamedSetting("default", 50, 200, "none: 50 executors, 200 jobs"),
    "fewer-executors": NamedSetting("fewer-executors", 30, 200, "30 executors"),
    "more-jobs": NamedSetting("more-jobs", 50, 450, "450 jobs"),
    "both": NamedSetting("both", 30, 450, "30 executors and 450 jobs"),
}
