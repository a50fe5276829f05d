"""run_plm.py end to end on tiny backbones: adaptation, checkpoints, resume, saved policies, bad input."""
import json

import pytest
import torch
from safetensors.torch import load_file

import run_plm
from plm_special.trainer import lr_factor
from conftest import run_script


def common(tiny_plms, synthetic_data):
    return ["--plm-dir", str(tiny_plms), "--data-dir", str(synthetic_data), "--video", "synthetic",
            "--valid-trace", "synthetic-valid", "--trace", "synthetic-test", "--state-feature-dim", "16",
            "--w", "5", "--batch-size", "4", "--seed", "7"]


def adapt(tiny_plms, synthetic_data, small_pool, model_dir, *flags):
    return run_plm.main(["--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--rank", "4",
                         "--exp-pool-path", str(small_pool), "--model-dir", str(model_dir),
                         *common(tiny_plms, synthetic_data), *flags])


def test_training_learns_the_pool_and_test_reloads_the_best_policy(tiny_plms, synthetic_data, small_pool, tmp_path):
    summary = adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "run", "--num-epochs", "6", "--lr", "3e-3",
                    "--test", "--results-dir", str(tmp_path / "results"))
    with open(tmp_path / "run" / "train_log.csv") as f:
        rows = [line.split(",") for line in f.read().split()[1:]]
    # what the trainer guarantees: one row per epoch, every batch of 4 episodes an optimizer step, the peak
    # learning rate after the warm-up, a validation score every epoch; and, with this seed, learning
    episodes = json.loads((small_pool / "metadata.json").read_text())["statistics"]["num_episodes"]
    assert [int(row[0]) for row in rows] == [1, 2, 3, 4, 5, 6]
    assert [int(row[1]) for row in rows] == [epoch * -(-episodes // 4) for epoch in range(1, 7)]
    assert float(rows[-1][3]) == 3e-3 and all(row[4] for row in rows)
    losses = [float(row[2]) for row in rows]
    assert losses[-1] < 0.85 * losses[0]
    assert {p.name for p in (tmp_path / "run" / "best_model").iterdir()} == {"settings.json", "modules.safetensors",
                                                                            "adapter"}
    settings = json.loads((tmp_path / "run" / "best_model" / "settings.json").read_text())
    assert settings["plm_type"] == "llama" and settings["rank"] == 4 and settings["hidden_size"] == 64
    assert settings["return_scaling"]["max_return"] > 0
    # --test alone needs no pool: everything is in the saved folder; same policy, same results
    again = run_plm.main(["--test", "--model-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "again"),
                          *common(tiny_plms, synthetic_data)])
    assert again["mean_qoe"] == summary["mean_qoe"] and again["num_traces"] == 4
    assert len(list((tmp_path / "again").glob("result_sim_abr_*"))) == 4


def test_cosine_schedule_warms_up_then_decays_to_zero(tiny_plms, synthetic_data, small_pool, tmp_path):
    assert [lr_factor(s, 4, 12, "constant") for s in (0, 3, 11)] == [0.25, 1.0, 1.0]
    cosine = [lr_factor(s, 4, 12, "cosine") for s in range(13)]
    assert cosine[:4] == [0.25, 0.5, 0.75, 1.0] and cosine[7] == pytest.approx(0.5) and cosine[11] == 0.0
    assert all(a > b for a, b in zip(cosine[3:11], cosine[4:12]))
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "run", "--num-epochs", "3", "--lr", "3e-3",
          "--lr-schedule", "cosine", "--warmup-steps", "1")
    rows = [line.split(",") for line in (tmp_path / "run" / "train_log.csv").read_text().split()[1:]]
    learning_rates = [float(row[3]) for row in rows]
    assert 3e-3 > learning_rates[0] > learning_rates[1] > learning_rates[2] == 0.0
    settings = json.loads((tmp_path / "run" / "best_model" / "settings.json").read_text())
    assert settings["lr_schedule"] == "cosine"


def test_resume_continues_exactly_where_training_stopped(tiny_plms, synthetic_data, small_pool, tmp_path):
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "straight", "--num-epochs", "2")
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "resumed", "--num-epochs", "1")
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "resumed", "--num-epochs", "2", "--resume")
    for name in ("modules.safetensors", "adapter/adapter_model.safetensors"):
        straight = load_file(tmp_path / "straight" / "checkpoint" / name)
        resumed = load_file(tmp_path / "resumed" / "checkpoint" / name)
        assert all(torch.equal(straight[k], resumed[k]) for k in straight)
    log = (tmp_path / "resumed" / "train_log.csv").read_text().split()
    assert [row.split(",")[0] for row in log[1:]] == ["1", "2"]


@pytest.mark.parametrize("flags, trainable", [
    (["--rank", "-1"], "backbone.safetensors"),
    (["--freeze-plm", "--freeze-encoder"], None),
])
def test_full_fine_tuning_and_frozen_backbones_round_trip(tiny_plms, synthetic_data, small_pool, tmp_path, flags,
                                                          trainable):
    args = ["--adapt", "--test", "--plm-type", "gpt2", "--plm-size", "tiny", "--exp-pool-path", str(small_pool),
            "--model-dir", str(tmp_path / "run"), "--num-epochs", "1", "--results-dir", str(tmp_path / "r1"),
            *common(tiny_plms, synthetic_data), *flags]
    summary = run_plm.main(args)
    files = {p.name for p in (tmp_path / "run" / "best_model").iterdir()}
    assert (trainable in files) if trainable else files == {"settings.json", "modules.safetensors"}
    again = run_plm.main(["--test", "--model-dir", str(tmp_path / "run" / "best_model"), "--results-dir",
                          str(tmp_path / "r2"), *common(tiny_plms, synthetic_data)])
    assert again["mean_qoe"] == summary["mean_qoe"]


def assert_one_line_error(result, needle):
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], result.stderr


@pytest.fixture(scope="module")
def trained(tiny_plms, synthetic_data, small_pool, tmp_path_factory):
    model_dir = tmp_path_factory.mktemp("trained") / "run"
    adapt(tiny_plms, synthetic_data, small_pool, model_dir, "--num-epochs", "1")
    return model_dir


@pytest.mark.parametrize("flags, needle", [
    (["--adapt", "--plm-type", "bert"], "argument --plm-type: invalid choice: 'bert'"),
    (["--adapt", "--plm-type", "llama", "--plm-size", "7b"], "no model in"),
    (["--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--which-layer", "9"], "--which-layer: early exit after block 9 is not possible"),
    (["--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--rank", "0"], "--rank: the LoRA rank must be -1"),
    (["--test"], "is not a saved policy (no settings.json)"),
    ([], "nothing to do"),
    (["--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--reward-floor-quantile", "0.5"],
     "--reward-floor-quantile: must be at least 0 and below 0.5"),
    (["--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--reward-floor-quantile", "0.01", "--return-unit", "2"],
     "--reward-floor-quantile: applies to min-max normalised rewards"),
])
def test_bad_backbone_flags(tiny_plms, synthetic_data, small_pool, tmp_path, flags, needle):
    result = run_script("run_plm.py", *flags, "--exp-pool-path", str(small_pool), "--model-dir", str(tmp_path / "m"),
                        *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, needle)
    assert not (tmp_path / "m").exists()


def test_bad_pools(tiny_plms, synthetic_data, small_pool, tmp_path):
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "metadata.json").write_text((small_pool / "metadata.json").read_text())
    (truncated / "transitions.npz").write_bytes((small_pool / "transitions.npz").read_bytes()[:5000])
    (tmp_path / "not_a_pool.pkl").write_bytes(b"hello")
    for pool, needle in ((truncated, "is damaged: transitions.npz is not a complete NumPy archive"),
                         (tmp_path / "not_a_pool.pkl", "not an experience pool"), (tmp_path, "not an experience pool")):
        result = run_script("run_plm.py", "--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--exp-pool-path",
                            str(pool), "--model-dir", str(tmp_path / "m"), *common(tiny_plms, synthetic_data))
        assert_one_line_error(result, needle)
        assert not (tmp_path / "m").exists()


def test_saved_policy_only_loads_into_its_backbone(tiny_plms, synthetic_data, trained, tmp_path):
    for flags, needle in ((["--plm-type", "gpt2"], "--plm-type: " + str(trained / "best_model") + " was made with plm_type = llama, not gpt2"),
                          (["--rank", "8"], "--rank: " + str(trained / "best_model") + " was made with rank = 4, not 8")):
        result = run_script("run_plm.py", "--test", "--model-dir", str(trained), "--results-dir", str(tmp_path / "r"),
                            *flags, *common(tiny_plms, synthetic_data))
        assert_one_line_error(result, needle)
        assert not (tmp_path / "r").exists()


def test_existing_runs_and_results_are_never_overwritten(tiny_plms, synthetic_data, small_pool, trained, tmp_path):
    before = (trained / "checkpoint" / "modules.safetensors").read_bytes()
    result = run_script("run_plm.py", "--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--exp-pool-path",
                        str(small_pool), "--model-dir", str(trained), *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "already holds a training run; pass --resume")
    assert (trained / "checkpoint" / "modules.safetensors").read_bytes() == before
    results = tmp_path / "results"
    results.mkdir()
    (results / "keep").write_text("x")
    result = run_script("run_plm.py", "--test", "--model-dir", str(trained), "--results-dir", str(results),
                        *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "already holds results")
    assert (results / "keep").read_text() == "x"


def test_checkpoints_restore_every_generator_training_draws_from():
    import random

    import numpy as np

    from plm_special.trainer import generator_states, restore_generator_states

    def draws(generator):
        cuda = [torch.rand(1, device=f"cuda:{i}").item() for i in range(torch.cuda.device_count())]
        return (torch.rand(1, generator=generator).item(), torch.rand(1).item(), np.random.rand(), random.random(), cuda)

    generator = torch.Generator().manual_seed(3)
    tensors, scalars = generator_states(generator)
    first = draws(generator)
    assert draws(generator) != first
    restore_generator_states(generator, tensors, json.loads(json.dumps(scalars)))  # as training_state.json holds them
    assert draws(generator) == first


def test_resume_reads_the_run_settings_back(tiny_plms, synthetic_data, small_pool, tmp_path):
    """Only the flags typed again change: the pool, backbone, learning rate... come from settings.json."""
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "run", "--num-epochs", "1", "--lr", "2e-3")
    run_plm.main(["--adapt", "--resume", "--model-dir", str(tmp_path / "run"), "--num-epochs", "2",
                  "--plm-dir", str(tiny_plms), "--data-dir", str(synthetic_data)])
    settings = json.loads((tmp_path / "run" / "checkpoint" / "settings.json").read_text())
    assert (settings["num_epochs"], settings["lr"], settings["w"], settings["video"]) == (2, 2e-3, 5, "synthetic")
    assert settings["exp_pool_path"] == str(small_pool)
    log = (tmp_path / "run" / "train_log.csv").read_text().split()
    assert [row.split(",")[0] for row in log[1:]] == ["1", "2"]


def test_weight_average_follows_its_recurrence_and_swaps_in_and_out():
    from plm_special.trainer import WeightAverage

    layer = torch.nn.Linear(3, 2)
    parameters = list(layer.parameters())
    average = WeightAverage(parameters, decay=0.5)
    expected = [p.detach().clone() for p in parameters]
    for step in range(1, 6):
        with torch.no_grad():
            for p in parameters:
                p.add_(float(step))
        average.update()
        weight = 1 - min(0.5, (1 + step) / (10 + step))  # the ramp: 0.18, 0.25, 0.31, 0.36, then the decay
        expected = [e + weight * (p.detach() - e) for e, p in zip(expected, parameters)]
    assert all(torch.allclose(a, e) for a, e in zip(average.average, expected))
    raw = [p.detach().clone() for p in parameters]
    with average.applied():
        assert all(torch.equal(p, a) for p, a in zip(parameters, average.average))
    assert all(torch.equal(p, r) for p, r in zip(parameters, raw))
    tensors, scalars = average.state()
    again = WeightAverage(parameters, decay=0.5)
    again.restore(tensors, json.loads(json.dumps(scalars)))
    assert again.steps == 5 and all(torch.equal(a, b) for a, b in zip(again.average, average.average))


def log_rows(run):
    lines = (run / "train_log.csv").read_text().split()
    return lines[0].split(","), [line.split(",") for line in lines[1:]]


def test_weight_average_is_validated_and_kept_while_training_goes_on_unchanged(tiny_plms, synthetic_data,
                                                                                small_pool, tmp_path):
    flags = ("--num-epochs", "2", "--lr", "3e-3", "--eval-per-epoch", "2")  # one validation, after epoch 2
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "raw", *flags)
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "avg", *flags, "--average-decay", "0.9")
    header, raw_rows = log_rows(tmp_path / "raw")
    avg_header, avg_rows = log_rows(tmp_path / "avg")
    assert avg_header == header[:5] + ["raw_valid_mean_qoe"] + header[5:]
    # the raw weights train exactly as without the average: same losses, same validation score
    assert [row[2] for row in avg_rows] == [row[2] for row in raw_rows]
    assert avg_rows[1][5] == raw_rows[1][4] and avg_rows[1][4] and not avg_rows[0][4]
    raw_checkpoint = load_file(tmp_path / "raw" / "checkpoint" / "modules.safetensors")
    avg_checkpoint = load_file(tmp_path / "avg" / "checkpoint" / "modules.safetensors")
    assert all(torch.equal(raw_checkpoint[k], avg_checkpoint[k]) for k in raw_checkpoint)
    # what is validated and kept is the average (the checkpoint's training state holds it), not the raw weights
    best = load_file(tmp_path / "avg" / "best_model" / "modules.safetensors")
    state = load_file(tmp_path / "avg" / "checkpoint" / "training_state.safetensors")
    averages = [t for name, t in state.items() if name.startswith("average.")]
    averaged = [k for k in best if any(torch.equal(best[k], a) for a in averages)]
    assert averaged and all(not torch.equal(best[k], avg_checkpoint[k]) for k in averaged)
    assert all(torch.equal(best[k], avg_checkpoint[k]) for k in best if k not in averaged)  # buffers
    settings = json.loads((tmp_path / "avg" / "best_model" / "settings.json").read_text())
    assert settings["average_decay"] == 0.9


def test_resume_continues_the_weight_average(tiny_plms, synthetic_data, small_pool, tmp_path):
    flags = ("--lr", "3e-3", "--average-decay", "0.9")
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "straight", "--num-epochs", "2", *flags)
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "resumed", "--num-epochs", "1", *flags)
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "resumed", "--num-epochs", "2", "--resume")
    straight, resumed = log_rows(tmp_path / "straight")[1], log_rows(tmp_path / "resumed")[1]
    assert [row[2:6] for row in straight] == [row[2:6] for row in resumed]
    state = load_file(tmp_path / "resumed" / "checkpoint" / "training_state.safetensors")
    assert any(name.startswith("average.") for name in state)


def test_bad_weight_average_decay(tiny_plms, synthetic_data, small_pool, tmp_path):
    result = run_script("run_plm.py", "--adapt", "--plm-type", "llama", "--plm-size", "tiny", "--rank", "4",
                        "--exp-pool-path", str(small_pool), "--model-dir", str(tmp_path / "run"),
                        "--average-decay", "1", *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "--average-decay: the decay of the weight average must be below 1 (e.g. 0.995), or 0 for none, not 1.0")
    assert not (tmp_path / "run").exists()
    adapt(tiny_plms, synthetic_data, small_pool, tmp_path / "run", "--num-epochs", "1")
    before = (tmp_path / "run" / "checkpoint" / "modules.safetensors").read_bytes()
    result = run_script("run_plm.py", "--adapt", "--resume", "--model-dir", str(tmp_path / "run"), "--num-epochs", "2",
                        "--average-decay", "0.9", "--plm-dir", str(tiny_plms), "--data-dir", str(synthetic_data))
    assert_one_line_error(result, "was trained without a weight average; resume it with the --average-decay it began")
    assert (tmp_path / "run" / "checkpoint" / "modules.safetensors").read_bytes() == before
