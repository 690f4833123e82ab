"""The language model under torchrun on CPU (gloo): two ranks train on their own rows of the
stream, and together they equal one process on the combined rows; a run stopped mid-epoch and
resumed, each rank from its own carried state, equals the uninterrupted one bit for bit."""

import json
from pathlib import Path

import torch
from lm_ddp_worker import BPTT, ROWS, ROWS_PER_RANK, SeenWindows, config, evaluate, load_model
from safetensors.torch import load_file
from torchrun_launch import run_two_processes

from seqlstm.data.streams import StreamBatches
from seqlstm.tasks.language_modeling.language_model import LanguageModelConfig, LSTMLanguageModel
from seqlstm.text.tokenizer import SubwordTokenizer
from seqlstm.training import Trainer
from seqlstm.training.checkpoint import read_checkpoint

WORKER = Path(__file__).with_name("lm_ddp_worker.py")
RESUME_WORKER = Path(__file__).with_name("lm_ddp_resume_worker.py")


def test_two_ranks_train_on_their_shares_and_equal_one_process_on_all_rows(tmp_path):
    texts = [row["text"] for row in ROWS]
    tokenizer = SubwordTokenizer.train(texts, vocab_size=300, model_type="char")
    torch.manual_seed(0)
    no_dropout = dict(
        dropout_embedding=0.0,
        dropout_input=0.0,
        dropout_hidden=0.0,
        dropout_output=0.0,
        weight_drop=0.0,
    )  # dropout masks are drawn per rank; without them the two runs must agree
    lm_config = LanguageModelConfig(embedding_dim=12, hidden_size=20, num_layers=2, **no_dropout)
    LSTMLanguageModel(lm_config, tokenizer).save_pretrained(tmp_path / "initial")

    run_two_processes(WORKER, tmp_path, timeout=300)

    single = load_model(tmp_path / "initial")
    initial = {k: v.clone() for k, v in single.state_dict().items()}
    tok = single.tokenizer
    combined = StreamBatches.from_examples(
        single.encode(ROWS), 2 * ROWS_PER_RANK, BPTT, tok.pad_id, tok.bos_id
    )
    batches = SeenWindows(combined)
    best = Trainer(single, config(tmp_path / "single"), batches, evaluate_fn=evaluate).fit()

    # Each rank trained on rows of its own, and the two shares are the combined rows.
    rows = [load_file(tmp_path / f"rows-{rank}.safetensors")["rows"] for rank in (0, 1)]
    all_rows = torch.cat(batches.seen[: len(batches)], dim=1)
    assert rows[0].shape == rows[1].shape == (ROWS_PER_RANK, all_rows.size(1))
    assert not {tuple(r) for r in rows[0].tolist()} & {tuple(r) for r in rows[1].tolist()}
    assert sorted(torch.cat(rows).tolist()) == sorted(all_rows.tolist())
    assert len(batches) >= 4  # several windows: the carried state matters

    # The same weights and validation loss as one process on the combined rows.
    ddp_params = load_file(tmp_path / "params.safetensors")
    for name, value in single.state_dict().items():
        torch.testing.assert_close(ddp_params[name], value, rtol=0, atol=1e-9)
        assert not torch.equal(value, initial[name]), name  # training did move it
    ddp_metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert abs(ddp_metrics["loss"] - best["loss"]) < 1e-6
    assert best["loss"] < evaluate(load_model(tmp_path / "initial"))["loss"] - 0.5


def test_two_ranks_resume_mid_epoch_each_from_its_own_carried_state(tmp_path):
    texts = [row["text"] for row in ROWS]
    tokenizer = SubwordTokenizer.train(texts, vocab_size=300, model_type="char")
    torch.manual_seed(0)
    lm_config = LanguageModelConfig(
        embedding_dim=12,
        hidden_size=20,
        num_layers=2,
        dropout_embedding=0.1,
        dropout_input=0.2,
        dropout_hidden=0.2,
        dropout_output=0.2,
        weight_drop=0.2,
    )
    LSTMLanguageModel(lm_config, tokenizer).save_pretrained(tmp_path / "initial")

    run_two_processes(RESUME_WORKER, tmp_path, timeout=300)

    full = load_file(tmp_path / "full.safetensors")
    resumed = load_file(tmp_path / "resumed.safetensors")
    initial = load_model(tmp_path / "initial").state_dict()
    for name, value in full.items():
        assert torch.equal(resumed[name], value), name
    assert not torch.equal(full["decoder.weight"], initial["decoder.weight"])
    # the checkpoint of step 3 (mid-epoch) keeps each rank's own state, which differ
    tensors, state = read_checkpoint(tmp_path / "split" / "checkpoints" / "step-00000003")
    assert len(state["training_state"]) == 2
    for rank in (0, 1):
        carried = load_file(tmp_path / f"carried-{rank}.safetensors")
        assert sorted(carried) == ["c/0", "c/1", "h/0", "h/1"]
        for name, value in carried.items():
            assert torch.equal(tensors[f"training_state/{rank}/model/{name}"], value)
    assert not torch.equal(
        tensors["training_state/0/model/h/1"], tensors["training_state/1/model/h/1"]
    )
