"""crisscross.runtime: the CPU allocator setting keeps freed tensor memory, and says what it did.

The allocator setting is process-wide, so each case runs in a fresh interpreter.
"""

import json
import os
import platform
import subprocess
import sys

import pytest

from crisscross import runtime

# Allocate and free a 64 MiB tensor 16 times after 24 warm-up rounds; print the minor page faults per allocation.
# (The warm-up: glibc carves the first few blocks from new heap memory until freed neighbours have merged into a
# free block large enough for an aligned 64 MiB request.)
_PROBE = """
import json, resource, torch
from crisscross.runtime import capture_environment, configure_cpu_allocator
state = configure_cpu_allocator()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
x = torch.ones(16 * 1024 * 1024)  # 64 MiB of fp32
for _ in range(24):
    y = x * 2.0
    del y
before = faults()
for _ in range(16):
    y = x * 2.0
    del y
print(json.dumps({"state": state, "faults_per_alloc": (faults() - before) / 16,
                  "recorded": capture_environment()["cpu_allocator"]}))
"""

glibc_only = pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                                reason="the setting applies to glibc's malloc")


def _probe(**env: str) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if k != runtime.CPU_ALLOCATOR_ENV and not k.startswith("MALLOC_") and k not in ("GLIBC_TUNABLES",)}
    out = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120,
                         env={**clean, "OMP_NUM_THREADS": "1", **env})
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc_only
def test_retained_memory_is_reused_without_page_faults():
    retained, default = _probe(), _probe(CRISSCROSS_CPU_ALLOCATOR="default")
    assert retained["state"].startswith("retain") and retained["recorded"] == retained["state"]
    assert default["state"] == "default (CRISSCROSS_CPU_ALLOCATOR=default)" == default["recorded"]
    # glibc's default unmaps the 64 MiB block at every free, so the next one faults in again (16,384 pages of
    # 4 KiB, fewer with huge pages); retained, freed blocks are reused (seen: none of the 16 faulting in 10 of 12
    # runs, one in the other two).
    assert default["faults_per_alloc"] >= 16
    assert retained["faults_per_alloc"] * 4 < default["faults_per_alloc"]


@glibc_only
@pytest.mark.parametrize(("env", "state"), [
    ({"MALLOC_TRIM_THRESHOLD_": "131072"}, "default (the user's MALLOC_TRIM_THRESHOLD_)"),
    ({"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=65536"}, "default (the user's GLIBC_TUNABLES)"),
])
def test_a_users_own_malloc_settings_are_kept(env, state):
    assert _probe(**env)["state"] == state


def test_an_unknown_choice_names_the_variable(monkeypatch):
    monkeypatch.setenv(runtime.CPU_ALLOCATOR_ENV, "jemalloc")
    with pytest.raises(ValueError, match=r"CRISSCROSS_CPU_ALLOCATOR='jemalloc': expected one of retain, default"):
        runtime.configure_cpu_allocator()


def test_train_refuses_an_unknown_choice_in_one_line(tmp_path):
    env = {**os.environ, runtime.CPU_ALLOCATOR_ENV: "fast"}
    out = subprocess.run([sys.executable, "-m", "crisscross.cli.main", "train", "train.epochs=1",
                          f"track.root={tmp_path}"], capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.strip().splitlines() == [
        "crisscross train: error: CRISSCROSS_CPU_ALLOCATOR='fast': expected one of retain, default"]
    assert not any(tmp_path.iterdir())  # refused before a run folder was made
