"""Compression techniques as plug-ins: the ``Technique`` protocol and its ordered registry.

A built-in technique is one module of this package defining ``TECHNIQUE``; a third party's is
registered under the entry-point group ``autocl.techniques``. See ``_base`` and the README's
"Add a technique".
"""

from autocl.techniques._base import (
    ENTRY_POINT_GROUP,
    PHASES,
    BaseTechnique,
    BuildContext,
    Hold,
    Phase,
    Technique,
    register,
    technique,
    techniques,
    unregister,
    validate_sections,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "PHASES",
    "BaseTechnique",
    "BuildContext",
    "Hold",
    "Phase",
    "Technique",
    "register",
    "technique",
    "techniques",
    "unregister",
    "validate_sections",
]
