"""Decima's actor: the graph encoder and two policy heads, one scoring the schedulable stages and one the
number of executors for a job (the original's `decima/actor.py`); its weights, the original's model.pt,
load as they are, and so does its encoder alone, for the LLM scheduler (the original's --pt-encoder-config).
"""
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from common.errors import InputError
from spark_sched_sim.graph_observation import NUM_DAG_FEATURES, NUM_FEATURES

from .graph_encoder import Encoder, activation_class, make_mlp


class DecimaActor(nn.Module):
    def __init__(self, num_executors: int, embed_dim: int, gnn_mlp: dict, policy_mlp: dict):
        super().__init__()
        self.num_executors = num_executors
        self.encoder = Encoder(embed_dim, gnn_mlp)
        self.stage_policy_network = nn.Module()
        self.stage_policy_network.mlp_score = make_mlp(NUM_FEATURES + 3 * embed_dim, policy_mlp["hidden_dims"], 1,
                                                       policy_mlp["activation"])
        self.exec_policy_network = nn.Module()
        self.exec_policy_network.mlp_score = make_mlp(NUM_DAG_FEATURES + 2 * embed_dim + 1,
                                                      policy_mlp["hidden_dims"], 1, policy_mlp["activation"])
        for name, parameter in self.named_parameters():  # as the original: biases start at zero
            if name.endswith("bias"):
                nn.init.zeros_(parameter)

    def stage_scores(self, batch, h_node, h_dag, h_glob):
        """Scores of the schedulable nodes of every observation, in batch order."""
        mask = batch.stage_mask
        node_job = batch.node_job[mask]
        inputs = torch.cat([batch.x[mask], h_node[mask], h_dag.index_select(0, node_job),
                            h_glob.index_select(0, batch.job_obs[node_job])], dim=1)
        return self.stage_policy_network.mlp_score(inputs).squeeze(-1)

    def exec_scores(self, batch, h_dag, h_glob, jobs: torch.Tensor):
        """Scores of committing k + 1 executors, k < the job's cap, for each job in `jobs` (concatenated)."""
        caps = batch.exec_caps[jobs]
        repeated = torch.repeat_interleave(jobs, caps)
        k = torch.cat([torch.arange(int(c), device=caps.device) for c in caps]).float() / self.num_executors
        x_dag = batch.x[batch.job_ptr[:-1][repeated], :NUM_DAG_FEATURES]
        inputs = torch.cat([x_dag, h_dag.index_select(0, repeated), h_glob.index_select(0, batch.job_obs[repeated]),
                            k[:, None]], dim=1)
        return self.exec_policy_network.mlp_score(inputs).squeeze(-1)


def build_actor(num_executors: int, agent_config: dict) -> DecimaActor:
    def mlp(config):
        return {"hidden_dims": config.hid_dims,
                "activation": activation_class(config.act_cls, **config.get("act_kwargs", {}))}

    return DecimaActor(num_executors, agent_config.embed_dim, mlp(agent_config.gnn_mlp_kwargs),
                       mlp(agent_config.policy_mlp_kwargs))


def load_state_dict(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise InputError(f"Decima weights {path} not found; run ../download_data.py --only cjs/models "
                         "or give another path", "state_dict_path")
    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:
        raise InputError(f"{path} is not a readable Decima state dict ({type(error).__name__}); "
                         "download it again or give another path", "state_dict_path") from None


def pretrained_encoder(agent_config, config_path: str, data_root: Path,
                       negative_slope: float) -> tuple[dict, dict]:
    """The sizes and trained weights (named as the encoder's own parameters) of the encoder of the Decima that
    an agent config describes, for a state encoder with LeakyReLU(negative_slope) activations; its
    state_dict_path is relative to the data root unless absolute."""
    gnn = agent_config.gnn_mlp_kwargs
    if gnn.get("act_cls") != "LeakyReLU" or gnn.get("act_kwargs", {}).get("negative_slope") != negative_slope:
        raise InputError(f"{config_path}: the state encoder needs LeakyReLU({negative_slope}) activations, as "
                         f"Decima's default; this config has {gnn.get('act_cls')} {dict(gnn.get('act_kwargs', {}))}",
                         "pt_encoder_config")
    path = Path(data_root) / agent_config.state_dict_path
    if not path.is_file():
        raise InputError(f"Decima weights {path} (state_dict_path of {config_path}) not found; run "
                         "../download_data.py --only cjs/models, or point state_dict_path at them",
                         "pt_encoder_config")
    weights = {name.removeprefix("encoder."): tensor for name, tensor in load_state_dict(path).items()
               if name.startswith("encoder.")}
    sizes = {"state_feature_dim": agent_config.embed_dim, "encoder_hidden_dims": list(gnn.hid_dims),
             "pt_encoder": str(path)}
    return sizes, weights
