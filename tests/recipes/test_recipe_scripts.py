"""Recipes run as scripts (`python -m seqlstm.recipes.NAME`): bad input ends with one line and
exit status 2, no traceback."""

import os
import subprocess
import sys
import time

from locations import ROOT

RECIPES = sorted(p for p in (ROOT / "seqlstm" / "recipes").glob("*.py") if p.name != "__init__.py")


def test_every_recipe_script_ends_through_run_recipe():
    # run_recipe (tests/experiment/test_run.py) is what turns bad input into one line
    assert len(RECIPES) == 6
    for script in RECIPES:
        text = script.read_text()
        assert text.endswith('if __name__ == "__main__":\n    sys.exit(run_recipe(main))\n'), script


def test_bad_input_and_an_offline_hub_id_end_with_one_line_and_status_2(tmp_path):
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",  # the hub id must not reach the network
        "HF_HOME": str(tmp_path / "hf"),  # an empty cache
    }
    missing = tmp_path / "no-such-dir"
    runs = {"bad dir": ["--data-dir", str(missing)], "hub id": []}
    common = ["--preset", "smoke"]
    started = time.monotonic()
    # both at once: each process spends its ~2 s importing torch and datasets
    processes = {
        name: subprocess.Popen(
            [sys.executable, "-m", "seqlstm.recipes.conll2003_ner", *options, *common]
            + ["--out", str(tmp_path / name)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, options in runs.items()
    }
    errors = {}
    for name, process in processes.items():
        out, errors[name] = process.communicate(timeout=120)
        assert (process.returncode, out) == (2, ""), errors[name]
        assert len(errors[name].splitlines()) == 1, errors[name]
        assert not (tmp_path / name).exists()  # it failed before making OUT
    assert errors["bad dir"] == f"conll2003_ner.py: error: {missing}: no such file or directory\n"
    # offline and in no cache: one line at once, not 25 s of retries and a traceback
    assert errors["hub id"].startswith(
        "conll2003_ner.py: error: eriktks/conll2003: the Hugging Face hub is off"
    )
    assert "--data-dir" in errors["hub id"]
    assert time.monotonic() - started < 60
