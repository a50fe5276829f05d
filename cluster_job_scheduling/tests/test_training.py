"""PPO training of Decima: a smoke run on a small cluster, resume, and the model run_baseline.py accepts."""
import yaml
from safetensors.torch import load_file

from conftest import assert_one_line_error, run_script

SMOKE = {
    "agent": {"embed_dim": 16, "gnn_mlp_kwargs": {"hid_dims": [32, 16], "act_cls": "LeakyReLU",
                                                   "act_kwargs": {"negative_slope": 0.2}},
              "policy_mlp_kwargs": {"hid_dims": [64, 64], "act_cls": "Tanh"}},
    "env": {"num_executors": 5, "job_arrival_cap": 4, "job_arrival_rate": 4e-5, "moving_delay": 2000.0,
            "warmup_delay": 1000.0, "dataset": "synthetic", "mean_time_limit": 2e7},
    "trainer": {"seed": 3, "num_iterations": 3, "num_sequences": 1, "num_rollouts": 2, "checkpointing_freq": 2,
                "num_epochs": 2, "num_batches": 2, "clip_range": 0.2, "target_kl": 0.01, "entropy_coeff": 0.04,
                "beta_discount": 5e-3, "lr": 3e-4, "max_grad_norm": 0.5},
}


def train(config_path, data, out, *flags):
    return run_script("train_baseline.py", "-f", str(config_path), "--data-dir", str(data), "--out-dir", str(out),
                      *flags)


def test_smoke_training_resumes_exactly_and_produces_a_usable_model(synthetic_data, tmp_path):
    config = tmp_path / "smoke.yaml"
    config.write_text(yaml.safe_dump(SMOKE))
    straight = train(config, synthetic_data, tmp_path / "straight")
    assert straight.returncode == 0, straight.stderr
    log = (tmp_path / "straight" / "train_log.csv").read_text().splitlines()
    assert log[0].startswith("iteration,avg_num_jobs,avg_jct_s") and len(log) == 4
    assert sorted(p.name for p in (tmp_path / "straight" / "checkpoints").iterdir()) == ["2", "3"]

    short = dict(SMOKE, trainer=dict(SMOKE["trainer"], num_iterations=2))
    (tmp_path / "short.yaml").write_text(yaml.safe_dump(short))
    assert train(tmp_path / "short.yaml", synthetic_data, tmp_path / "resumed").returncode == 0
    assert_one_line_error(train(config, synthetic_data, tmp_path / "resumed"), "already holds a training run")
    resumed = train(config, synthetic_data, tmp_path / "resumed", "--resume")
    assert resumed.returncode == 0 and "resuming after iteration 2" in resumed.stdout
    first = load_file(tmp_path / "straight" / "latest" / "training_state.safetensors")
    second = load_file(tmp_path / "resumed" / "latest" / "training_state.safetensors")
    actor = [k for k in first if k.startswith("actor.")]
    assert actor and all((first[k] == second[k]).all() for k in actor)

    model = tmp_path / "straight" / "checkpoints" / "3" / "model.safetensors"
    result = run_script("run_baseline.py", "--sched", "decima", "--state-dict-path", str(model), "--dataset",
                        "synthetic", "--data-dir", str(synthetic_data), "--num-executors", "5", "--job-arrival-cap",
                        "4", "--results-dir", str(tmp_path / "r"), "--quiet")
    assert result.returncode == 0, result.stderr
