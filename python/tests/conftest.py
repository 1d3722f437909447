"""Shared fixtures: the repository's paths, the Rust build's artefacts (the ``boltzgen``
command and the C ABI's ``libboltzgen.so``, which ``scripts/test.sh`` builds before running
pytest), and a double-well flow trained once per session through ``boltzgen.train``."""

import ctypes
import os
from pathlib import Path

import numpy as np
import pytest

import boltzgen

ROOT = Path(__file__).resolve().parents[2]
RELEASE = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target")) / "release"

# A deliberately short training: the flow is good but far from exact, so that its Hastings
# terms and importance weights are far from trivial (an untrained flow is an exact identity).
DOUBLE_WELL = {
    "seed": 3,
    "system": {"potential": "double_well", "beta": 1.0},
    "model": {"kind": "neural_spline", "layers": 4, "hidden": [16, 16], "bins": 8, "tail_bound": 5.0, "precision": "float64"},
    "train": {"learning_rate": 3e-3, "smc": {"particles": 1024, "refit_steps": 60, "final_steps": 200}},
}


def built(name):
    """An artefact of the Rust build: `cargo test` leaves the cdylib in `deps/` (only
    `cargo build` copies it up), the binary in the profile directory."""
    for path in (RELEASE / name, RELEASE / "deps" / name):
        if path.exists():
            return path
    pytest.fail(
        f"{RELEASE / name} is missing: build the Rust side first "
        "(scripts/test.sh does, with cargo test --release --features boltzgen/capi,...)"
    )


@pytest.fixture(scope="session")
def root():
    return ROOT


@pytest.fixture(scope="session")
def cli():
    return built("boltzgen")


@pytest.fixture(scope="session")
def double_well_flow(tmp_path_factory):
    """(model, path of model.json, report) of a double-well flow trained from U alone."""
    out = tmp_path_factory.mktemp("flow") / "run"
    model, report = boltzgen.train(DOUBLE_WELL, output=str(out))
    return model, out / "model.json", report


class CEngine:
    """boltzgen's C ABI through ctypes: the Rust engine behind a door other than Python's."""

    def __init__(self, model_path, config_toml):
        self.lib = ctypes.CDLL(str(built("libboltzgen.so")))
        self.lib.bg_last_error.argtypes = [ctypes.POINTER(ctypes.c_char_p)]
        self.engine = ctypes.c_void_p()
        status = self.lib.bg_engine_open(
            str(model_path).encode(), config_toml.encode(), ctypes.byref(self.engine)
        )
        self.check(status)
        dim = ctypes.c_size_t()
        self.check(self.lib.bg_engine_dim(self.engine, ctypes.byref(dim)))
        self.dim = dim.value

    def check(self, status):
        if status != 0:
            message = ctypes.c_char_p()
            self.lib.bg_last_error(ctypes.byref(message))
            raise RuntimeError(f"C ABI status {status}: {message.value.decode()}")

    def propose_batch(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        n = x.shape[0]
        out = np.empty_like(x)
        log_h = np.empty(n)
        ptr = ctypes.POINTER(ctypes.c_double)
        self.check(
            self.lib.bg_propose_batch(
                self.engine,
                x.ctypes.data_as(ptr),
                ctypes.c_size_t(n),
                ctypes.c_size_t(self.dim),
                out.ctypes.data_as(ptr),
                log_h.ctypes.data_as(ptr),
            )
        )
        return out, log_h

    def log_prob(self, x):
        x = np.ascontiguousarray(x, dtype=np.float64)
        out = np.empty(x.shape[0])
        ptr = ctypes.POINTER(ctypes.c_double)
        self.check(
            self.lib.bg_log_prob(
                self.engine,
                x.ctypes.data_as(ptr),
                ctypes.c_size_t(x.shape[0]),
                ctypes.c_size_t(self.dim),
                out.ctypes.data_as(ptr),
            )
        )
        return out

    def close(self):
        self.lib.bg_engine_free(self.engine)


@pytest.fixture
def c_engine():
    engines = []

    def open_engine(model_path, config_toml):
        engine = CEngine(model_path, config_toml)
        engines.append(engine)
        return engine

    yield open_engine
    for e in engines:
        e.close()
