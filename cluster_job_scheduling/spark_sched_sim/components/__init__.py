from .executor import Executor
from .executor_tracker import COMMON_POOL, ExecutorTracker
from .job import Job
from .stage import Stage
from .timeline import Event, Timeline

__all__ = ["COMMON_POOL", "Event", "Executor", "ExecutorTracker", "Job", "Stage", "Timeline"]
