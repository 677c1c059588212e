"""Trainer(eval_examples=k): the first k validation samples and the model's outputs on EVAL records."""
from __future__ import annotations

import pytest
import torch

import tunewidgets as tw


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_examples_are_the_first_validation_samples_with_the_models_outputs():
    task = tw.tasks.digits()
    cfg = tw.TrainConfig(optimizer="adam", lr=0.01, epochs=2, device="cpu", model_kwargs={"dropout": 0.5})
    seen = []

    def on_eval(record):  # the record, and the weights the model had when it was made
        seen.append((record, {k: v.clone() for k, v in trainer._model.state_dict().items()}))

    trainer = tw.Trainer(task, cfg, eval_examples=5, callbacks=[{"eval": on_eval}])
    run = trainer.fit()
    assert len(seen) == 2
    x, y = task.val.tensors
    for record, state in seen:
        ex = record["examples"]
        assert ex["inputs"].device.type == "cpu" and torch.equal(ex["inputs"], x[:5])
        assert torch.equal(ex["targets"], y[:5])
        model = task.build_model(dropout=0.5)
        model.load_state_dict(state)
        model.eval()  # outputs in eval mode (no dropout), as the evaluation computes them
        with torch.no_grad():
            assert torch.allclose(ex["outputs"], model(x[:5]), atol=1e-6)
    assert not torch.equal(seen[0][0]["examples"]["outputs"], seen[1][0]["examples"]["outputs"])
    assert "examples" not in run.evals().columns  # on the records only, not in the history


def test_examples_leave_the_run_unchanged():
    cfg = tw.TrainConfig(optimizer="sgd", lr=0.05, epochs=2, device="cpu", model_kwargs={"dropout": 0.2})
    plain = tw.engine.train(tw.tasks.digits(), cfg)
    with_examples = tw.Trainer(tw.tasks.digits(), cfg, eval_examples=16).fit()
    assert plain.history.equals(with_examples.history)


def test_no_examples_unless_asked():
    seen = []
    tw.engine.train(tw.tasks.spirals(), tw.TrainConfig(epochs=1, device="cpu"), callbacks=[{"eval": seen.append}])
    assert "examples" not in seen[0]


@pytest.mark.parametrize("bad", [-1, 1.5, True, "16"])
def test_bad_eval_examples(bad):
    with pytest.raises(ValueError, match="eval_examples: must be a whole number >= 0"):
        tw.Trainer(tw.tasks.spirals(), tw.TrainConfig(device="cpu"), eval_examples=bad)
