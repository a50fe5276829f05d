"""Encoder of the 6x6 ABR state into six feature vectors, one per state row (the original's
`plm_special/models/state_encoder.py`)."""
import torch
from torch import nn

CONV_SIZE = 4
HISTORY = 6  # columns of the state


class StateEncoder(nn.Module):
    """Rows 0, 1, 5 (last bitrate, buffer, chunks left) use their newest value through a linear layer;
    rows 2 and 3 (throughput and download-time histories) a temporal convolution of width 4; row 4 (next
    chunk sizes, one per level) a convolution over all 6 levels. Feature sizes: D, D, 3D, 3D, D, D."""

    def __init__(self, feature_dim: int):
        super().__init__()
        self.feature_dim = feature_dim
        self.last_bitrate = nn.Linear(1, feature_dim)
        self.buffer = nn.Linear(1, feature_dim)
        self.throughput = nn.Conv1d(1, feature_dim, CONV_SIZE)
        self.download_time = nn.Conv1d(1, feature_dim, CONV_SIZE)
        self.next_sizes = nn.Conv1d(1, feature_dim, HISTORY)
        self.chunks_left = nn.Linear(1, feature_dim)
        self.activation = nn.LeakyReLU()

    @property
    def output_dims(self) -> list[int]:
        conv_dim = self.feature_dim * (HISTORY - CONV_SIZE + 1)
        return [self.feature_dim, self.feature_dim, conv_dim, conv_dim, self.feature_dim, self.feature_dim]

    def forward(self, states: torch.Tensor) -> list[torch.Tensor]:
        """(N, 6, 6) states -> six (N, dim) features."""
        act = self.activation
        return [
            act(self.last_bitrate(states[:, 0, -1:])),
            act(self.buffer(states[:, 1, -1:])),
            act(self.throughput(states[:, 2:3, :])).flatten(1),
            act(self.download_time(states[:, 3:4, :])).flatten(1),
            act(self.next_sizes(states[:, 4:5, :])).flatten(1),
            act(self.chunks_left(states[:, 5, -1:])),
        ]
