"""The writeback engine: mapping expressions and attribute-mapping profiles."""

from harness.engine.expressions import CompiledExpression, ExpressionError, compile_expression
from harness.engine.rules import (
    GA,
    PREVIEW,
    Mapping,
    MappingError,
    Profile,
    ProfileError,
    load_profile,
)

__all__ = [
    "GA",
    "PREVIEW",
    "CompiledExpression",
    "ExpressionError",
    "Mapping",
    "MappingError",
    "Profile",
    "ProfileError",
    "compile_expression",
    "load_profile",
]
