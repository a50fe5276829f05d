"""The simulation's event queue: a heap ordered by wall time, first-in first-out among equal times."""
import heapq
import itertools
from dataclasses import dataclass
from enum import Enum, auto


class EventType(Enum):
    JOB_ARRIVAL = auto()
    TASK_COMPLETION = auto()
    EXECUTOR_ARRIVAL = auto()


@dataclass
class Event:
    type: EventType
    data: dict


class Timeline:
    def __init__(self):
        self._heap = []
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._heap)

    @property
    def empty(self) -> bool:
        return not self._heap

    def push(self, time: float, event: Event) -> None:
        heapq.heappush(self._heap, (time, next(self._counter), event))

    def peek(self) -> tuple[float, Event]:
        time, _, event = self._heap[0]
        return time, event

    def pop(self) -> tuple[float, Event]:
        time, _, event = heapq.heappop(self._heap)
        return time, event
