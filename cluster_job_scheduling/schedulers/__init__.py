"""Schedulers behind the one Scheduler interface: Fair, the original's FIFO, strict FCFS, Random and Decima."""
from pathlib import Path

import yaml
from munch import Munch, munchify

from common.errors import InputError

from .decima import DecimaScheduler
from .heuristics import FirstComeFirstServed, RandomScheduler, RoundRobin
from .scheduler import Scheduler

SCHEDULERS = ["fair", "fifo", "fcfs", "random", "decima"]
SAMPLING = {"random", "decima"}  # schedulers whose decisions are drawn from their seeded generator
DEFAULT_CONFIG = Path(__file__).resolve().parent.parent / "config" / "decima_tpch.yaml"


def load_config(path: Path = DEFAULT_CONFIG) -> Munch:
    """A YAML config (agent, env, trainer) with attribute access, as the original's loader."""
    try:
        return munchify(yaml.safe_load(Path(path).read_text()))
    except (OSError, yaml.YAMLError) as error:
        raise InputError(f"cannot read config {path} ({error})", "config") from None


def make_scheduler(name: str, num_executors: int, data_root: Path, seed: int = 0, state_dict_path=None,
                   config: Munch | None = None, device="cpu", greedy: bool = False) -> Scheduler:
    """`state_dict_path`: Decima's weights (default: the config's, under the data root)."""
    if name == "fair":
        return RoundRobin(num_executors, fair=True)
    if name == "fifo":
        return RoundRobin(num_executors, fair=False)
    if name == "fcfs":
        return FirstComeFirstServed()
    if name == "random":
        return RandomScheduler(seed)
    if name == "decima":
        agent = (config or load_config()).agent
        path = Path(state_dict_path) if state_dict_path else Path(data_root) / agent.state_dict_path
        return DecimaScheduler(num_executors, agent, path, seed=seed, greedy=greedy, device=device)
    raise InputError(f"unknown scheduler '{name}'; choose from {', '.join(SCHEDULERS)}", "sched")
