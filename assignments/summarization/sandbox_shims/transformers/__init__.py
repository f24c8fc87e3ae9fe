"""A stand-in for Hugging Face transformers inside the summarization grading sandbox. Not
transformers.

The course's notebooks import transformers for the t5-small tokenizer, the data collator, the
trainer and, in part II, for three names their model classes build on. Grading runs only the
notebook's definitions, never its data or training cells, and the real package costs about
150 MB of the 768 MB Gradescope gives a run, so the sandbox imports this instead:

- `PreTrainedModel` (transformers.modeling_utils): an `nn.Module` that keeps its config, as
  part II's `TransformerStack(PreTrainedModel)` and `Transformer(PreTrainedModel)` use it;
- `PretrainedConfig` (transformers.configuration_utils): keyword arguments become attributes,
  as part II's test cells build their config;
- `Seq2SeqLMOutput` (transformers.modeling_outputs): loss, logits and past_key_values by name,
  or by index over the fields that are set, as `Transformer.forward` returns it.

Any other name (AutoTokenizer, Seq2SeqTrainer, ...) is a placeholder that raises a clear error
if it is used. It is only placed on the sandbox's import path for a summarization submission.
"""
from grader.standins import module_getattr

from .configuration_utils import PretrainedConfig
from .modeling_outputs import Seq2SeqLMOutput
from .modeling_utils import PreTrainedModel

__version__ = "0.0+dlgrade.standin"
__all__ = ["PreTrainedModel", "PretrainedConfig", "Seq2SeqLMOutput"]
__getattr__ = module_getattr(__name__)
