"""The settings of a cluster environment that every CJS script shares (the original's flags), and the
environment factory they describe."""
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from common.settings import setting

from .datasets import load_dataset
from .env import SparkSchedSimEnv


@dataclass
class EnvSettings:
    num_executors: int = setting(50, "executors in the cluster", kind="environment")
    job_arrival_cap: int = setting(200, "jobs per episode")
    job_arrival_rate: float = setting(4e-5, "Poisson arrival rate, jobs per ms")
    moving_delay: float = setting(2000.0, "ms for an executor to move between jobs")
    warmup_delay: float = setting(1000.0, "ms added to the first task of an idle executor when no 'fresh' "
                                          "duration is recorded")
    dataset: str = setting("tpch", "job DAGs: tpch, synthetic, or any folder under <data>/cjs/")
    data_dir: str | None = setting(None, "data root (default: $TRAILBLAZER_DATA, else the repository's data/)")
    render_mode: str | None = setting(None, "accepted for compatibility (no rendering)", choices=[None])

    def env_kwargs(self) -> dict:
        return dict(num_executors=self.num_executors, job_arrival_cap=self.job_arrival_cap,
                    job_arrival_rate=self.job_arrival_rate, moving_delay=self.moving_delay,
                    warmup_delay=self.warmup_delay)

    def env_folder_name(self) -> str:
        return (f"exe_{self.num_executors}_cap_{self.job_arrival_cap}_rate_{self.job_arrival_rate}"
                f"_md_{self.moving_delay}_wd_{self.warmup_delay}")


def make_env_factory(settings: EnvSettings, data_root: Path) -> Callable[[], SparkSchedSimEnv]:
    """Environments of these settings on the data set read once; bad settings fail here, before any work."""
    templates = load_dataset(data_root, settings.dataset)
    SparkSchedSimEnv(templates, **settings.env_kwargs())
    return lambda: SparkSchedSimEnv(templates, **settings.env_kwargs())
