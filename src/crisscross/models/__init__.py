"""Forecasting models. Importing this package registers every model (see ``registry``).

Every model maps ``past[B, T_in, J, 3]`` (metres, root-relative, predicted joints) to ``[B, T_out, J, 3]``.
``docs/models.md`` lists them with their parameter counts.
"""

from crisscross.models import (  # noqa: F401  (imported for their @register_model side effect)
    baselines,
    conv_stgat,
    cvae,
    lifters,
    lifting_references,
    seq2seq,
    simlpe,
    stacformer,
    stcformer,
    stcformer_lift,
    sttformer,
)
from crisscross.models.attention import AttentionRecord, capture_attention
from crisscross.models.registry import (
    count_parameters,
    create_model,
    describe_models,
    get_model_entry,
    list_models,
    register_model,
)

__all__ = [
    "AttentionRecord",
    "capture_attention",
    "count_parameters",
    "create_model",
    "describe_models",
    "get_model_entry",
    "list_models",
    "register_model",
]
