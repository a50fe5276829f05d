"""The LLM scheduler on tiny random backbones: pools, context modes, heads, run_plm.py end to end."""
import json

import numpy as np
import pytest
import torch

import run_plm
from conftest import TREE, assert_one_line_error, run_script
from plm_special.backbones import load_backbone
from plm_special.dataset import WindowDataset, collate_windows
from plm_special.return_scaling import ReturnScaling
from plm_special.experience import load_pool
from plm_special.llm_scheduler import LLMScheduler
from plm_special.rl_policy import OfflineRLPolicy
from prepare_plm import TINY
from spark_sched_sim.datasets import load_dataset
from spark_sched_sim.env import SparkSchedSimEnv
from spark_sched_sim.graph_observation import GraphObservation, GraphObserver, level_edge_masks

SCALING = ReturnScaling(reward_min=-4e5, reward_max=0.0, gamma=1.0, scale=1000, max_return=0.5)


def tiny_policy(tiny_plms, plm_type, K=4, device="cpu"):
    torch.manual_seed(0)
    model = OfflineRLPolicy(load_backbone(tiny_plms, plm_type, "tiny", -1, 4), 16, 10, 500, K)
    with torch.no_grad():  # decisive random heads: many different actions
        model.exec_head.weight.mul_(20)
        model.stage_key.weight.mul_(5)
    return model.to(device).eval()


def play(synthetic_data, scheduler, steps=60):
    env = SparkSchedSimEnv(load_dataset(synthetic_data, "synthetic"), num_executors=10, job_arrival_cap=8)
    scheduler.reset()
    observation, _ = env.reset(seed=3)
    actions = []
    for _ in range(steps):
        action = scheduler.act(observation)
        actions.append((action["stage_idx"], action["num_exec"]))
        observation, reward, done, _, _ = env.step(action)
        scheduler.observe(reward)
        if done:
            break
    return actions


@pytest.mark.parametrize("plm_type", ["smollm2", "llama", "qwen2", "mistral"])
def test_evicting_cache_equals_full_recomputation(tiny_plms, synthetic_data, plm_type, device):
    model = tiny_policy(tiny_plms, plm_type, K=4, device=device)  # 60 decisions: the cache evicts all along
    cached = play(synthetic_data, LLMScheduler(model, SCALING, mode="cache"))
    assert cached == play(synthetic_data, LLMScheduler(model, SCALING, mode="full"))
    assert len(cached) == 60 and len(set(cached)) > 10


@pytest.mark.parametrize("plm_type", ["gpt2", "opt", "t5-lm"])
def test_absolute_position_backbones_recompute_the_window(tiny_plms, synthetic_data, plm_type):
    scheduler = LLMScheduler(tiny_policy(tiny_plms, plm_type), SCALING)
    assert scheduler.mode == "window"
    actions = play(synthetic_data, scheduler, steps=30)
    assert len(set(actions)) > 5


@pytest.mark.parametrize("plm_type, mode", [("smollm2", "cache"), ("llama", "full"), ("llama", "window"),
                                           ("gpt2", "window"), ("t5-lm", "window")])
def test_inference_decisions_equal_the_training_forward_pass(tiny_plms, synthetic_data, plm_type, mode, device):
    """Every decision of an episode, as the scheduler makes it, has the stage and executor distributions of the
    teacher-forced training pass at its last step: over the window of the last K decisions in "window" mode
    (what training draws), over the whole episode so far under the K-step band mask in "cache" and "full"
    modes (positions from the episode start, which rotary attention makes equal to the pass's)."""
    K = 4
    model = tiny_policy(tiny_plms, plm_type, K=K, device=device)
    scheduler = LLMScheduler(model, SCALING, mode=mode)
    stage_scores, exec_logits, inferred = model.stage_scores, model.exec_logits, {"stage": [], "exec": []}
    model.stage_scores = lambda *a: inferred["stage"].append(stage_scores(*a)) or inferred["stage"][-1]
    model.exec_logits = lambda *a: inferred["exec"].append(exec_logits(*a)[0]) or inferred["exec"][-1][None]

    env = SparkSchedSimEnv(load_dataset(synthetic_data, "synthetic"), num_executors=10, job_arrival_cap=8)
    observer, decisions = GraphObserver(10), []
    scheduler.reset()
    observation, _ = env.reset(seed=3)
    target = scheduler.initial_target
    for _ in range(30):
        graph = observer(observation)
        action = scheduler.act(observation)
        stage = np.flatnonzero(graph.stage_mask)[action["stage_idx"]]
        job = int(np.searchsorted(graph.ptr, stage, side="right") - 1)
        decisions.append((graph, action["stage_idx"], job, action["num_exec"] - 1, target))
        observation, reward, done, _, _ = env.step(action)
        scheduler.observe(reward)
        target -= SCALING.process_reward(reward)
        if done:
            break
    assert len(decisions) == 30 and len({(d[1], d[3]) for d in decisions}) > 5
    del model.stage_scores, model.exec_logits  # the training pass below uses the policy's own heads

    first_step = (lambda t: max(0, t - K + 1)) if mode == "window" else (lambda t: 0)
    windows = [list(range(first_step(t), t + 1)) for t in range(len(decisions))]
    steps = [t for window in windows for t in window]
    column = lambda i, dtype: torch.tensor([decisions[t][i] for t in steps], dtype=dtype, device=device)  # noqa: E731
    with torch.no_grad():
        stage_log_probs, exec_log_probs = model([decisions[t][0] for t in steps], [len(w) for w in windows],
                                                column(1, torch.long), column(2, torch.long), column(3, torch.long),
                                                column(4, torch.float32), torch.tensor(steps, device=device))
    counts = [int(decisions[t][0].stage_mask.sum()) for t in steps]
    for t, end in enumerate(np.cumsum([len(w) for w in windows]) - 1):
        first = sum(counts[:end])
        trained_stage = stage_log_probs[first: first + counts[end]]
        assert torch.allclose(torch.log_softmax(inferred["stage"][t], 0), trained_stage, atol=1e-4), t
        cap = int(decisions[t][0].exec_caps[decisions[t][2]])
        inferred_exec = torch.log_softmax(inferred["exec"][t], 0)[:cap]
        assert torch.allclose(inferred_exec, exec_log_probs[end, :cap], atol=1e-4), t


def test_sampling_temperatures_per_head(tiny_plms, synthetic_data):
    """--sample draws both heads at --temperature; 0 takes a head's most likely action, so sampling only the
    number of executors keeps every stage choice of the most likely decisions until the first executor
    count that differs (the episodes part there)."""
    model = tiny_policy(tiny_plms, "smollm2")
    likely = play(synthetic_data, LLMScheduler(model, SCALING))
    assert play(synthetic_data, LLMScheduler(model, SCALING, sample=True, temperature=0)) == likely
    sampled = play(synthetic_data, LLMScheduler(model, SCALING, sample=True, seed=1))
    assert sampled != likely
    assert sampled == play(synthetic_data, LLMScheduler(model, SCALING, sample=True, seed=1))
    executors_only = play(synthetic_data, LLMScheduler(model, SCALING, sample=True, seed=1, temperature=0,
                                                       exec_temperature=1))
    first = next(t for t, (a, b) in enumerate(zip(executors_only, likely)) if a != b)
    assert executors_only[first][0] == likely[first][0] and executors_only[first][1] != likely[first][1]
    cooler = play(synthetic_data, LLMScheduler(model, SCALING, sample=True, seed=1, temperature=0.05))
    agree = lambda actions: sum(a == b for a, b in zip(actions, likely))  # noqa: E731
    assert agree(cooler) > agree(sampled)


def test_no_cap_on_schedulable_stages(tiny_plms):
    model = tiny_policy(tiny_plms, "llama")
    n = 150  # the original's head had 100 slots
    graph = GraphObservation(np.random.default_rng(0).random((n, 5), dtype=np.float32), np.zeros((2, 0), dtype=np.int64),
                             np.array([0, n]), np.ones(n, dtype=bool), np.array([10]), level_edge_masks(np.zeros((0, 2), dtype=np.int64), n))
    with torch.no_grad():
        stage_log_probs, _ = model([graph], [1], torch.tensor([149]), torch.tensor([0]), torch.tensor([3]),
                                   torch.tensor([0.1]), torch.tensor([0]))
    assert stage_log_probs.shape == (n,) and torch.isclose(stage_log_probs.exp().sum(), torch.tensor(1.0))


def test_pool_round_trip(small_pool):
    pool = load_pool(small_pool)
    metadata = json.loads((small_pool / "metadata.json").read_text())
    assert metadata["source_schedulers"] == ["decima", "fair"] and metadata["task"] == "cjs"
    assert metadata["statistics"]["num_transitions"] == len(pool) >= 300
    graph = pool.graph(5)
    assert graph.x.shape[1] == 5 and graph.stage_mask.sum() > pool.arrays["stage_choice"][5]
    assert graph.exec_caps[pool.arrays["job_choice"][5]] > pool.arrays["exec_choice"][5]
    assert pool.arrays["dones"].sum() == len(pool.episodes())


def test_returns_in_job_time_carry_the_episode_s_job_time(small_pool):
    """--return-unit 1000: a return to go is minus the job time (s) still to accumulate in the episode / scale,
    and the test target is the best episode start's (min-max returns count mostly the decisions left)."""
    pool = load_pool(small_pool)
    rewards = pool.arrays["rewards"]
    dataset = WindowDataset(pool, K=4, sample_step=4, gamma=1.0, scale=10, unit=1000.0)
    starts = [float(rewards[e].sum()) / 1000.0 / 10 for e in pool.episodes()]
    assert [float(dataset.returns[e.start]) for e in pool.episodes()] == pytest.approx(starts, rel=1e-5)
    assert dataset.scaling.max_return == pytest.approx(max(starts), rel=1e-5) and max(starts) < 0
    first = pool.episodes()[0]
    assert all(np.diff(dataset.returns[first]) >= 0)  # job time only accumulates
    assert dataset.scaling.process_reward(-2000.0) == pytest.approx(-0.2)


def test_a_reward_floor_quantile_clips_the_extremes_below_it(small_pool):
    """--reward-floor-quantile q: the min-max floor is the q-quantile of the pool's rewards (a CJS reward's tail
    reaches far below its median), and rewards below it normalise to 0."""
    pool = load_pool(small_pool)
    rewards = pool.arrays["rewards"]
    floor = float(np.quantile(rewards, 0.1))
    dataset = WindowDataset(pool, K=4, sample_step=4, gamma=1.0, scale=10, floor_quantile=0.1)
    assert rewards.min() < floor == pytest.approx(dataset.scaling.reward_min)
    normalized = dataset.scaling.normalize(rewards)
    assert (normalized[rewards <= floor] == 0).all() and (normalized[rewards > floor] > 0).all()
    first = pool.episodes()[0]
    assert float(dataset.returns[first.start]) == pytest.approx(normalized[first].sum() / 10, rel=1e-5)


def common(tiny_plms, synthetic_data):
    return ["--plm-dir", str(tiny_plms), "--data-dir", str(synthetic_data), "--dataset", "synthetic",
            "--num-executors", "10", "--job-arrival-cap", "12", "--K", "4", "--state-feature-dim", "16",
            "--batch-size", "4", "--num-steps-per-iter", "24", "--valid-seeds", "101"]


def test_train_test_resume_and_reload(tiny_plms, synthetic_data, small_pool, tmp_path):
    train = ["--train", "--plm-type", "qwen2", "--plm-size", "tiny", "--peft-rank", "4", "--exp-pool-path",
             str(small_pool), *common(tiny_plms, synthetic_data)]
    summary = run_plm.main([*train, "--num-iters", "2", "--test", "--model-dir", str(tmp_path / "a"),
                            "--results-dir", str(tmp_path / "ra")])
    run_plm.main([*train, "--num-iters", "1", "--model-dir", str(tmp_path / "b")])
    run_plm.main([*train, "--num-iters", "2", "--model-dir", str(tmp_path / "b"), "--resume"])
    from safetensors.torch import load_file

    for name in ("modules.safetensors", "adapter/adapter_model.safetensors"):
        a, b = load_file(tmp_path / "a/checkpoint" / name), load_file(tmp_path / "b/checkpoint" / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    again = run_plm.main(["--test", "--model-dir", str(tmp_path / "a"), "--results-dir", str(tmp_path / "rb"),
                          *common(tiny_plms, synthetic_data)])
    assert again["avg_jct_s"] == summary["avg_jct_s"] > 0
    assert (tmp_path / "rb" / "jobs.csv").read_text().count("\n") == 13
    for executors in ("6", "14"):  # a policy made for 10 executors, tested on other clusters (unseen settings)
        other = run_plm.main(["--test", "--model-dir", str(tmp_path / "a"), "--results-dir", str(tmp_path / executors),
                              *common(tiny_plms, synthetic_data), "--num-executors", executors])
        assert other["settings"]["num_executors"] == int(executors) and other["avg_jct_s"] != summary["avg_jct_s"]
    result = run_script("run_plm.py", *train, "--num-iters", "3", "--model-dir", str(tmp_path / "b"), "--resume",
                        "--num-executors", "12")  # but its training goes on with the cluster it began with
    assert_one_line_error(result, "was made with num_executors = 10, not 12")


def test_weight_average_is_validated_beside_the_raw_weights(tiny_plms, synthetic_data, small_pool, tmp_path):
    train = ["--train", "--plm-type", "qwen2", "--plm-size", "tiny", "--peft-rank", "4", "--exp-pool-path",
             str(small_pool), "--num-iters", "2", "--lr", "3e-3", *common(tiny_plms, synthetic_data)]
    run_plm.main([*train, "--model-dir", str(tmp_path / "raw")])
    run_plm.main([*train, "--model-dir", str(tmp_path / "avg"), "--average-decay", "0.9"])
    raw = [line.split(",") for line in (tmp_path / "raw" / "train_log.csv").read_text().split()]
    avg = [line.split(",") for line in (tmp_path / "avg" / "train_log.csv").read_text().split()]
    assert avg[0][4:6] == ["valid_avg_jct_s", "raw_valid_avg_jct_s"]
    assert [row[2] for row in avg[1:]] == [row[2] for row in raw[1:]]  # the same training
    assert [row[5] for row in avg[1:]] == [row[4] for row in raw[1:]]  # its raw weights score as without
    from safetensors.torch import load_file

    best = load_file(tmp_path / "avg/best_model/modules.safetensors")
    last = load_file(tmp_path / "avg/checkpoint/modules.safetensors")
    raw_best = load_file(tmp_path / "raw/best_model/modules.safetensors")
    assert any(not torch.equal(best[k], last[k]) and not torch.equal(best[k], raw_best[k]) for k in best)


def test_training_in_bfloat16_prints_its_footprint_and_pace(tiny_plms, synthetic_data, small_pool, tmp_path, capsys):
    summary = run_plm.main(["--train", "--test", "--plm-type", "qwen2", "--plm-size", "tiny", "--peft-rank", "4",
                            "--exp-pool-path", str(small_pool), *common(tiny_plms, synthetic_data), "--num-iters", "1",
                            "--dtype", "bfloat16", "--model-dir", str(tmp_path / "run"),
                            "--results-dir", str(tmp_path / "results")])
    printed = capsys.readouterr()
    printed = printed.out + printed.err
    assert "everything on cpu" in printed and "computing in bfloat16" in printed
    assert "estimated memory per device (batches of 4 x " in printed and "first batch" in printed
    assert summary["settings"]["dtype"] == "bfloat16" and summary["avg_jct_s"] > 0


@pytest.mark.parametrize("flags, needle", [
    (["--train", "--plm-type", "bert"], "argument --plm-type: invalid choice: 'bert'"),
    (["--train", "--plm-type", "llama", "--plm-size", "7b"], "no model in"),
    (["--train", "--plm-type", "llama", "--plm-size", "tiny", "--valid-seeds", "1"], "overlap the test seeds"),
    (["--train", "--plm-type", "llama", "--plm-size", "tiny", "--num-executors", "50"], "collected with 10 executors"),
])
def test_bad_input(tiny_plms, synthetic_data, small_pool, tmp_path, flags, needle):
    result = run_script("run_plm.py", *common(tiny_plms, synthetic_data), "--exp-pool-path", str(small_pool),
                        "--model-dir", str(tmp_path / "m"), *flags)
    assert_one_line_error(result, needle)
    assert not (tmp_path / "m").exists()


def test_testing_a_folder_that_is_no_policy_says_what_to_pass(tiny_plms, synthetic_data, tmp_path):
    result = run_script("run_plm.py", "--test", "--model-dir", str(tmp_path), *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "--model-dir:", "is not a saved policy", "run_plm.py's training wrote")
    assert "--adapt" not in result.stderr


def test_pools_of_another_task_or_layout_are_refused(tiny_plms, synthetic_data, small_pool, tmp_path):
    import shutil

    abr = tmp_path / "abr_pool"
    shutil.copytree(small_pool, abr)
    metadata = json.loads((abr / "metadata.json").read_text())
    (abr / "metadata.json").write_text(json.dumps({**metadata, "task": "abr", "state_layout": "pensieve-6x6"}))
    result = run_script("run_plm.py", "--train", "--plm-type", "llama", "--plm-size", "tiny", "--exp-pool-path",
                        str(abr), "--model-dir", str(tmp_path / "m"), *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "task 'abr'")
    (tmp_path / "cut").mkdir()
    (tmp_path / "cut" / "metadata.json").write_text((small_pool / "metadata.json").read_text())
    (tmp_path / "cut" / "transitions.npz").write_bytes((small_pool / "transitions.npz").read_bytes()[:3000])
    result = run_script("run_plm.py", "--train", "--plm-type", "llama", "--plm-size", "tiny", "--exp-pool-path",
                        str(tmp_path / "cut"), "--model-dir", str(tmp_path / "m"), *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "is damaged: transitions.npz is not a complete NumPy archive")


def test_saved_policy_only_loads_into_its_backbone(tiny_plms, synthetic_data, small_pool, tmp_path):
    run_plm.main(["--train", "--plm-type", "llama", "--plm-size", "tiny", "--peft-rank", "4", "--exp-pool-path",
                  str(small_pool), "--num-iters", "1", "--model-dir", str(tmp_path / "run"),
                  *common(tiny_plms, synthetic_data)])
    result = run_script("run_plm.py", "--test", "--model-dir", str(tmp_path / "run"), "--plm-type", "gpt2",
                        "--results-dir", str(tmp_path / "r"), *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "--plm-type: ", "was made with plm_type = llama, not gpt2")
    assert not (tmp_path / "r").exists()


def decima_config(real_data, tmp_path, **gnn_changes):
    """config/decima_tpch.yaml with the real Decima weights' absolute path (the tests' data root is synthetic)."""
    import yaml

    config = yaml.safe_load((TREE / "config/decima_tpch.yaml").read_text())
    config["agent"]["state_dict_path"] = str(real_data / "cjs/models/decima/model.pt")
    config["agent"]["gnn_mlp_kwargs"].update(gnn_changes)
    path = tmp_path / "decima.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_encoder_starts_from_trained_decima(tiny_plms, synthetic_data, small_pool, real_data, tmp_path):
    from safetensors.torch import load_file

    run_plm.main(["--train", "--plm-type", "llama", "--plm-size", "tiny", "--peft-rank", "4", "--exp-pool-path",
                  str(small_pool), "--num-iters", "1", "--model-dir", str(tmp_path / "run"), "--freeze-encoder",
                  "--pt-encoder-config", str(decima_config(real_data, tmp_path)), *common(tiny_plms, synthetic_data)])
    saved = load_file(tmp_path / "run/best_model/modules.safetensors")
    decima = torch.load(real_data / "cjs/models/decima/model.pt", weights_only=True)
    encoder = [name for name in decima if name.startswith("encoder.")]
    assert len(encoder) == 30 and all(torch.equal(saved[name], decima[name]) for name in encoder)
    settings = json.loads((tmp_path / "run/best_model/settings.json").read_text())
    assert settings["encoder_hidden_dims"] == [32, 16] and settings["state_feature_dim"] == 16
    summary = run_plm.main(["--test", "--model-dir", str(tmp_path / "run"), "--results-dir", str(tmp_path / "r"),
                            *common(tiny_plms, synthetic_data)])
    assert summary["avg_jct_s"] > 0


def test_a_decima_encoder_of_another_activation_is_refused(tiny_plms, synthetic_data, small_pool, real_data, tmp_path):
    config = decima_config(real_data, tmp_path, act_cls="Tanh", act_kwargs={})
    result = run_script("run_plm.py", "--train", "--plm-type", "llama", "--plm-size", "tiny", "--exp-pool-path",
                        str(small_pool), "--model-dir", str(tmp_path / "m"), "--pt-encoder-config", str(config),
                        *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "needs LeakyReLU(0.2)", "Tanh")
    assert not (tmp_path / "m").exists()


def test_missing_decima_weights_say_where_they_were_looked_for(tiny_plms, synthetic_data, small_pool, tmp_path):
    import yaml

    config = yaml.safe_load((TREE / "config/decima_tpch.yaml").read_text())
    (tmp_path / "decima.yaml").write_text(yaml.safe_dump(config))  # state_dict_path under the synthetic root
    result = run_script("run_plm.py", "--train", "--plm-type", "llama", "--plm-size", "tiny", "--exp-pool-path",
                        str(small_pool), "--model-dir", str(tmp_path / "m"), "--pt-encoder-config",
                        str(tmp_path / "decima.yaml"), *common(tiny_plms, synthetic_data))
    assert_one_line_error(result, "cjs/models/decima/model.pt", "not found")
    assert not (tmp_path / "m").exists()


def test_gradients_are_bit_identical_from_call_to_call(tiny_plms, small_pool):
    """Same seed, same weights: on a multi-threaded CPU the backward of `tensor[index]` adds the rows of repeated
    indices in an order that varies with the threads' timing once a gradient outgrows one thread's share (32768
    elements), so the policy and its encoder gather with index_select. Eight threads (on any number of cores) and a
    batch big enough for every gather to be split: with `tensor[index]` the eight calls gave several gradients."""
    pool = load_pool(small_pool)
    dataset = WindowDataset(pool, 4, 1, 1.0, 1000)
    batch = collate_windows([dataset[i] for i in range(0, len(dataset), 2)])
    assert sum(int(g.stage_mask.sum()) for g in batch["graphs"]) * TINY["hidden"] > 4 * 32768
    model = tiny_policy(tiny_plms, "smollm2").train()
    threads = torch.get_num_threads()
    torch.set_num_threads(8)
    try:
        gradients = set()
        for _ in range(8):
            torch.manual_seed(0)  # LoRA's dropout
            model.zero_grad()
            model.loss(batch).backward()
            gradients.add(b"".join(p.grad.numpy().tobytes() for p in model.parameters() if p.grad is not None))
    finally:
        torch.set_num_threads(threads)
    assert len(gradients) == 1
