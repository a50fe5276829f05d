"""Experience pools: transitions collected from conventional policies, stored without pickles.

A pool is a folder with two files:
    transitions.npz   states (N, 6, 6) float32, actions (N,) int64 bitrate indices, rewards (N,) float64 QoE,
                      dones (N,) bool (True on the last transition of an episode)
    metadata.json     task and state layout, source policies, trace set, video, seeds, counts and statistics
Transition t of an episode is (the state the policy saw after chunk t, the quality it chose for chunk t+1,
that chunk's QoE, whether it was the last chunk); chunk 0, always fetched at the lowest quality, has no
transition, so a 48-chunk episode gives 47.

Pools written by the original code (a pickled `ExperiencePool`) are read through a restricted unpickler.
"""
import json
import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from common.errors import InputError
from common.files import atomic_folder, read_pool_folder

FORMAT_VERSION = 1
TASK = "abr"
STATE_LAYOUT = "pensieve-6x6"
STATE_SHAPE = (6, 6)
NUM_ACTIONS = 6
ARRAYS = ("states", "actions", "rewards", "dones")


@dataclass
class ExperiencePool:
    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    dones: np.ndarray
    metadata: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.actions)

    def episodes(self) -> list[slice]:
        """One slice per episode (a trailing episode without a done flag counts too)."""
        ends = [int(end) + 1 for end in np.flatnonzero(self.dones)]
        if not ends or ends[-1] != len(self):
            ends.append(len(self))
        starts = [0] + ends[:-1]
        return [slice(s, e) for s, e in zip(starts, ends) if e > s]

    def statistics(self) -> dict:
        """Statistics from the pool itself, stored with it (the policy's return conditioning uses them)."""
        reward_min, reward_max = float(self.rewards.min()), float(self.rewards.max())
        span = reward_max - reward_min or 1.0
        episodes = self.episodes()
        returns = [float(self.rewards[e].sum()) for e in episodes]
        normalised = [float(((self.rewards[e] - reward_min) / span).sum()) for e in episodes]
        return {
            "num_transitions": len(self), "num_episodes": len(episodes),
            "max_timestep": max(e.stop - e.start for e in episodes) - 1,
            "reward_min": reward_min, "reward_max": reward_max,
            "episode_return_mean": float(np.mean(returns)), "episode_return_min": min(returns),
            "episode_return_max": max(returns),
            "normalized_return_max": max(normalised),  # undiscounted, rewards scaled to [0, 1]
            "action_counts": np.bincount(self.actions, minlength=NUM_ACTIONS).tolist(),
        }

    def save(self, folder: Path) -> None:
        """Write the pool atomically: a temporary folder, renamed into place once complete."""
        folder = Path(folder)
        if folder.exists():
            raise InputError(f"experience pool {folder} already exists; remove it or write another",
                             fixes=("output",))
        metadata = {"format_version": FORMAT_VERSION, "task": TASK, "state_layout": STATE_LAYOUT,
                    "state_shape": list(STATE_SHAPE), "num_actions": NUM_ACTIONS, **self.metadata,
                    "statistics": self.statistics()}
        with atomic_folder(folder) as staging:
            np.savez(staging / "transitions.npz", **{name: getattr(self, name) for name in ARRAYS})
            (staging / "metadata.json").write_text(json.dumps(metadata, indent=2) + "\n")


def _check_arrays(arrays: dict, source: Path) -> None:
    states = arrays["states"]
    if states.ndim != 3 or tuple(states.shape[1:]) != STATE_SHAPE:
        raise InputError(f"{source}: states have shape {states.shape[1:]}, not the 6x6 ABR state; "
                         "this pool was built for a different state layout")
    if not all(len(arrays[name]) == len(states) for name in ARRAYS) or len(states) == 0:
        raise InputError(f"{source}: states, actions, rewards and dones differ in length or are empty")
    if arrays["actions"].min() < 0 or arrays["actions"].max() >= NUM_ACTIONS:
        raise InputError(f"{source}: actions must be bitrate indices 0..{NUM_ACTIONS - 1}")


def load_pool(path: Path) -> ExperiencePool:
    """A pool folder (or a file in it), or a pickle written by the original code."""
    path = Path(path)
    if path.suffix == ".pkl":
        return load_original_pool(path)
    folder = path.parent if path.name in ("transitions.npz", "metadata.json") else path
    if not (folder / "metadata.json").is_file() or not (folder / "transitions.npz").is_file():
        raise InputError(f"{folder} is not an experience pool (needs metadata.json and transitions.npz); "
                         "make one with generate_exp_pool.py")
    metadata, arrays = read_pool_folder(folder, ARRAYS)
    if metadata.get("task") != TASK or metadata.get("state_layout") != STATE_LAYOUT:
        raise InputError(f"{folder} is a pool for task '{metadata.get('task')}' with state layout "
                         f"'{metadata.get('state_layout')}', not {TASK}/{STATE_LAYOUT}")
    _check_arrays(arrays, folder)
    metadata.pop("statistics", None)
    return ExperiencePool(**arrays, metadata=metadata)


class _OriginalPool:
    """Stands in for the original's `plm_special.data.exp_pool.ExperiencePool` while unpickling."""


class _PoolUnpickler(pickle.Unpickler):
    POOL_CLASS = ("plm_special.data.exp_pool", "ExperiencePool")
    NUMPY = {(module, name) for module in ("numpy.core.multiarray", "numpy._core.multiarray")
             for name in ("_reconstruct", "scalar")} | {("numpy", "ndarray"), ("numpy", "dtype")}

    def find_class(self, module, name):
        if (module, name) == self.POOL_CLASS:
            return _OriginalPool
        if (module, name) in self.NUMPY:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in an experience pool")


def load_original_pool(path: Path) -> ExperiencePool:
    """Read the original code's pickled pool, accepting only the pool class, lists, numbers and arrays."""
    try:
        with open(path, "rb") as f:
            pool = _PoolUnpickler(f).load()
        arrays = {
            "states": np.asarray(pool.states, dtype=np.float32),
            "actions": np.asarray(pool.actions, dtype=np.int64),
            "rewards": np.asarray(pool.rewards, dtype=np.float64),
            "dones": np.asarray(pool.dones, dtype=bool),
        }
    except FileNotFoundError:
        raise InputError(f"experience pool {path} does not exist") from None
    except Exception as error:
        raise InputError(f"{path} is not an experience pool of the original code ({error})") from None
    _check_arrays(arrays, path)
    return ExperiencePool(**arrays, metadata={"source": f"original pickle {path.name}"})
