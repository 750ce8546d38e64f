"""The other side: real llama.cpp (llama-cpp-python, extra `llamacpp`, installed by make test)
applies control vectors to the default model's GGUF; its last-token logit shift must agree
with steerfast's on the same model. Figures: docs/interop.md."""

import pytest
import torch
from helpers import required

from steerfast.interop.crosscheck import prepare, run
from steerfast.interop.llamacpp import LlamaCpp, cvec_buffer, dequantised_copy
from steerfast.models import _embedded_gguf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def results(default_model, tmp_path_factory):
    required("llama_cpp", "make test installs the extra llamacpp (builds llama.cpp)")
    model, tok = default_model
    d = tmp_path_factory.mktemp("llamacpp")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torch's and llama.cpp's OpenMP pools oversubscribe 2 shared cores: 4x slower
    try:
        prepared = prepare(model, tok, d)
        f32 = dequantised_copy(_embedded_gguf(), d / "f32.gguf")
        out = {
            "Q4_1": run(
                model, tok, LlamaCpp(_embedded_gguf(), n_threads=1), prepared, cases=("exported", "generator")
            ),
            "F32": run(model, tok, LlamaCpp(f32, n_threads=1), prepared),
        }  # off-by-one on identical weights
    finally:
        torch.set_num_threads(threads)
    f32.unlink()
    return out


def _print(results, weights, case):
    for a in results[weights][case]:
        print(f"{weights} {case:<10} cos {a['cosine']:.4f} rel {a['rel_error']:.3f} {a['prompt']!r}")


# Margins against llama.cpp's arithmetic come from its own measured noise on the same inputs,
# never from one machine's figures (its quantised dot products differ between instruction sets).
# noise_floor = ‖unsteered llama.cpp − unsteered steerfast‖ for that prompt, measured in the same run:
# on the Q4_1 file that is llama.cpp's quantisation gap (Q4 weights, Q8 activations) against the fp32
# dequantisation. The shift error is (steered gap) − (unsteered gap): two such gaps, each about the
# noise floor, and the steered one larger because Q8's per-block scale grows with the steered
# activations; NOISE_GAPS = 4 allows twice the triangle bound of two equal gaps.
NOISE_GAPS = 4.0
# Not vacuous: llama.cpp's shift must also be closer to steerfast's than no shift at all is
# (error < ‖shift_steerfast‖, i.e. rel_error < 1) — a zero or wrong-way shift fails whatever the
# noise. (A fixed signal-over-noise factor of 5 was machine-tuned: llama.cpp built without
# AVX2/FMA/F16C has a larger unsteered gap, signal/noise 4.2 on "The weather today is", while its
# shift error was 0.72 noise floors.)


def _within_noise(a):
    error = a["rel_error"] * a["norm_steerfast"]  # ‖shift_llama − shift_steerfast‖
    return error <= NOISE_GAPS * a["noise_floor"] and a["rel_error"] < 1.0


def _noise_report(results, weights, case):
    return [
        (
            a["prompt"],
            round(a["rel_error"] * a["norm_steerfast"] / a["noise_floor"], 2),
            round(a["cosine"], 4),
        )
        for a in results[weights][case]
    ]


def test_exported_vector_shifts_logits_like_steerfast_on_the_q4_gguf(results):
    """Q4_1 with 8-bit activations vs the fp32 dequantisation: the shifts agree within
    NOISE_GAPS x llama.cpp's own unsteered gap on each prompt."""
    _print(results, "Q4_1", "exported")
    print("Q4_1 exported error/noise_floor, cosine:", _noise_report(results, "Q4_1", "exported"))
    for a in results["Q4_1"]["exported"]:
        assert _within_noise(a), a


def test_llamacpp_generator_file_imported_steers_the_same_way(results):
    _print(results, "Q4_1", "generator")
    print("Q4_1 generator error/noise_floor, cosine:", _noise_report(results, "Q4_1", "generator"))
    for a in results["Q4_1"]["generator"]:
        assert _within_noise(a), a


def test_mapping_is_exact_on_identical_weights(results):
    """F32 copy of the same GGUF: the weights and the arithmetic are the same fp32 ops on both sides,
    only summation order differs (rounding ~1e-6 relative), so the tight bound stays: a mapping
    error (one block off, a wrong scale) moves the cosine by >= 1e-3 (test_one_block_off_is_detected)."""
    _print(results, "F32", "exported")
    _print(results, "F32", "generator")
    for case in ("exported", "generator"):
        print(f"F32 {case} error/noise_floor, cosine:", _noise_report(results, "F32", case))
        for a in results["F32"][case]:
            assert a["cosine"] >= 0.99999 and a["rel_error"] < 0.01, (case, a)


def test_one_block_off_is_detected(results):
    _print(results, "F32", "off_by_one")
    for a, same_file in zip(results["F32"]["off_by_one"], results["F32"]["exported"]):
        # llama.cpp applies the same file in both cases (the generator's 29 blocks ran in between)
        assert a["norm_llamacpp"] == pytest.approx(same_file["norm_llamacpp"], rel=1e-6), a
        assert a["cosine"] < 0.999 and a["rel_error"] > 0.1, a


def test_llamacpp_buffer_layout_and_block_0(tmp_path):
    import numpy as np

    from steerfast.interop.crosscheck import write_llamacpp_style

    write_llamacpp_style(tmp_path / "v.gguf", {1: np.full(4, 1.0), 3: np.full(4, 2.0)})
    buf = cvec_buffer(tmp_path / "v.gguf", 0.5, 4)
    assert buf.tolist() == [0.5] * 4 + [0.0] * 4 + [1.0] * 4  # layer 1 at offset 0, as llama.cpp
    write_llamacpp_style(tmp_path / "zero.gguf", {0: np.ones(4)})
    with pytest.raises(Exception, match="llama.cpp rejects"):
        cvec_buffer(tmp_path / "zero.gguf", 1.0, 4)
