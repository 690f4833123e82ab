import subprocess
import sys

import seqlstm


def test_every_public_name_resolves():
    for name in seqlstm.__all__:
        obj = getattr(seqlstm, name)
        assert obj.__name__ == name
        assert name in dir(seqlstm)


def test_unknown_name_raises_attribute_error():
    try:
        seqlstm.NoSuchThing  # noqa: B018
    except AttributeError as err:
        assert "NoSuchThing" in str(err)
    else:
        raise AssertionError("expected AttributeError")


def test_import_and_cli_help_do_not_import_torch():
    code = (
        "import sys, seqlstm, seqlstm.cli; print('torch' in sys.modules, 'datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
