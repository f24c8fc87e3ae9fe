"""The sandbox's stand-ins for packages a course notebook imports but grading never uses
(grader/standins.py): transformers (with the three names part II's classes build on), datasets
and evaluate for summarization, torchvision for MAE. Each runs in a fresh interpreter with the
stand-in first on sys.path, as the sandbox puts it beside the submission."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARIZATION = ROOT / "assignments" / "summarization" / "sandbox_shims"
MAE = ROOT / "assignments" / "mae" / "sandbox_shims"


def run(folder: Path, code: str) -> dict:
    program = f"import sys\nsys.path.insert(0, {str(folder)!r})\nimport json\nout = {{}}\n{code}\nprint(json.dumps(out))\n"
    done = subprocess.run([sys.executable, "-c", program], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_transformers_stand_in_gives_the_three_base_names_without_the_real_package():
    out = run(SUMMARIZATION, """
import torch
from torch import nn
import transformers
from transformers import AutoTokenizer, Seq2SeqTrainer
from transformers.modeling_utils import PreTrainedModel
from transformers.configuration_utils import PretrainedConfig
from transformers.modeling_outputs import Seq2SeqLMOutput
out["file"] = transformers.__file__
out["version"] = transformers.__version__
config = PretrainedConfig(d_model=8, pad_token_id=0, is_encoder_decoder=True)
out["config"] = [config.d_model, config.pad_token_id, config.is_encoder_decoder, config.use_cache, config.eos_token_id]

class Stack(PreTrainedModel):
    def __init__(self, config):
        super().__init__(config)
        self.proj = nn.Linear(self.config.d_model, 2)

stack = Stack(config)
out["module"] = [isinstance(stack, nn.Module), stack.config is config, len(list(stack.parameters())), str(stack.dtype)]
logits = torch.ones(1, 2)
result = Seq2SeqLMOutput(logits=logits, past_key_values=[torch.zeros(1)])
out["output"] = [result.loss is None, bool(result.logits is logits), bool(result[0] is logits), bool(result["logits"] is logits),
                 len(result), result.keys()]
try:
    Seq2SeqLMOutput(logit=logits)
except TypeError as exc:
    out["unknown_field"] = str(exc)
try:
    AutoTokenizer.from_pretrained("t5-small")
except RuntimeError as exc:
    out["tokenizer"] = str(exc)
try:
    class Model(transformers.T5ForConditionalGeneration):
        pass
except TypeError as exc:
    out["subclass"] = str(exc)
out["real_modules"] = sorted(m for m in sys.modules if m.startswith("transformers.") and "." in m[13:])
""")
    assert out["file"].startswith(str(SUMMARIZATION)) and out["version"].endswith("dlgrade.standin")
    assert out["config"] == [8, 0, True, True, None]
    assert out["module"] == [True, True, 2, "torch.float32"]
    assert out["output"] == [True, True, True, True, 2, ["logits", "past_key_values"]]
    assert "logit" in out["unknown_field"]
    assert "transformers.AutoTokenizer.from_pretrained is not available in the grading sandbox" in out["tokenizer"]
    assert "stand-in replaces transformers" in out["tokenizer"]
    assert "T5ForConditionalGeneration" in out["subclass"]
    assert out["real_modules"] == []           # nothing of the real package was imported


def test_datasets_and_evaluate_stand_ins_import_and_refuse_to_load():
    out = run(SUMMARIZATION, """
from datasets import load_dataset
import evaluate
for name, fn, arg in (("datasets", load_dataset, "xsum"), ("evaluate", evaluate.load, "rouge")):
    try:
        fn(arg)
    except RuntimeError as exc:
        out[name] = str(exc)
""")
    assert "datasets.load_dataset is not available" in out["datasets"]
    assert "evaluate.load is not available" in out["evaluate"]


def test_the_torchvision_stand_in_still_refuses_data_loading():
    out = run(MAE, """
import torchvision
from torchvision import transforms, datasets
try:
    transforms.Compose([transforms.ToTensor()])
except RuntimeError as exc:
    out["transforms"] = str(exc)
out["file"] = torchvision.__file__
""")
    assert out["file"].startswith(str(MAE))
    assert "torchvision.transforms.ToTensor is not available in the grading sandbox" in out["transforms"]
