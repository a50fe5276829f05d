"""The baselines reproduce the original code's numbers on all 100 fcc-test traces (video1, fixed order)."""
import json

import pytest

import run_baseline
from abr_sim.results import read_mean_qoe

# mean QoE per chunk excluding chunk 0, measured by running the original (README, "Parity")
ORIGINAL = {"bba": 0.764151, "mpc": 0.848455, "genet": 0.847871,
            "udr_1": 0.809006, "udr_2": 0.798979, "udr_3": 0.704953, "udr_real": 0.806559}


def run(real_data, tmp_path, *flags):
    results = tmp_path / "results"
    summary = run_baseline.main(["--data-dir", str(real_data), "--trace", "fcc-test", "--video", "video1",
                                 "--results-dir", str(results), "--quiet", *flags])
    assert json.loads((results / "summary.json").read_text())["mean_qoe"] == summary["mean_qoe"]
    assert len(list(results.glob("result_sim_abr_fcc-test_*"))) == 100
    assert read_mean_qoe(results) == pytest.approx(summary["mean_qoe"], abs=1e-12)
    return summary


@pytest.mark.parametrize("model", ["bba", "mpc"])
def test_deterministic_baselines_match_the_original_exactly(real_data, tmp_path, model):
    summary = run(real_data, tmp_path, "--model", model)
    assert summary["num_traces"] == 100 and summary["num_chunks"] == 100 * 47
    assert summary["mean_qoe"] == pytest.approx(ORIGINAL[model], abs=1e-6)


@pytest.mark.parametrize("model", ["genet", "udr_1", "udr_2", "udr_3", "udr_real"])
def test_pensieve_family_sampling_as_the_original_matches_its_numbers(real_data, tmp_path, model):
    summary = run(real_data, tmp_path, "--model", model, "--seed", "100003")
    assert summary["mean_qoe"] == pytest.approx(ORIGINAL[model], abs=2e-3)


def test_genet_argmax_mode(real_data, tmp_path):
    summary = run(real_data, tmp_path, "--model", "genet", "--deterministic")
    assert summary["mean_qoe"] == pytest.approx(0.827491, abs=1e-5)


def test_summary_components_add_up_to_the_qoe(real_data, tmp_path):
    summary = run(real_data, tmp_path, "--model", "mpc")
    qoe = summary["mean_bitrate_mbps"] - 4.3 * summary["rebuffer_s"] - summary["smoothness_mbps"]
    assert qoe == pytest.approx(summary["mean_qoe"], abs=1e-9)
    assert summary["settings"]["fixed_order"] is True and summary["settings"]["trace_num"] == 100
