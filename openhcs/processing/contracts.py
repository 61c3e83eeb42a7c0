"""What a processing function consumes and produces, so a pipeline can be checked before it runs.

Every plane of a well holds one :class:`Kind` of data: intensities (``image``), a binary
``mask`` (0/1) or object ``labels`` (0 = background, 1..N = objects). A function's
:class:`Contract` names the kinds it needs in its stack and the kind it returns; ``table``
means it returns per-object rows and passes its planes through unchanged, ``any -> any``
that it keeps whatever kind it is given (projections, mosaics). The compiler follows the
kinds through a pipeline and refuses a step whose input kind cannot be there.
"""

from __future__ import annotations

from enum import StrEnum


class Kind(StrEnum):
    IMAGE = "image"
    MASK = "mask"
    LABELS = "labels"
    TABLE = "table"
    ANY = "any"


# which plane kinds satisfy a declared input kind: a mask is a 0/1 image, and labels are a
# mask with object ids; label ids are not intensities, so labels never count as an image
ACCEPTS: dict[Kind, frozenset[Kind]] = {
    Kind.IMAGE: frozenset({Kind.IMAGE, Kind.MASK}),
    Kind.MASK: frozenset({Kind.MASK, Kind.LABELS}),
    Kind.LABELS: frozenset({Kind.LABELS}),
    Kind.ANY: frozenset({Kind.IMAGE, Kind.MASK, Kind.LABELS}),
}

_ARTICLE = {Kind.IMAGE: "an image", Kind.MASK: "a mask", Kind.LABELS: "labels", Kind.ANY: "planes"}


class Contract(StrEnum):
    """``inputs -> output``; several inputs are joined with `` + ``."""

    IMAGE_TO_IMAGE = "image -> image"
    IMAGE_TO_MASK = "image -> mask"
    IMAGE_TO_LABELS = "image -> labels"
    IMAGE_TO_TABLE = "image -> table"
    MASK_TO_MASK = "mask -> mask"
    MASK_TO_LABELS = "mask -> labels"
    MASK_TO_TABLE = "mask -> table"
    LABELS_TO_LABELS = "labels -> labels"
    LABELS_TO_MASK = "labels -> mask"
    LABELS_TO_TABLE = "labels -> table"
    LABELS_IMAGE_TO_TABLE = "labels + image -> table"
    ANY_TO_ANY = "any -> any"

    @property
    def inputs(self) -> tuple[Kind, ...]:
        return tuple(Kind(k) for k in self.value.split(" -> ")[0].split(" + "))

    @property
    def output(self) -> Kind:
        return Kind(self.value.split(" -> ")[1])


class ContractError(ValueError):
    """A function placed where the kind of data it needs is not available."""


def apply(contract: Contract, available: frozenset[Kind]) -> frozenset[Kind]:
    """The plane kinds after a call with ``contract`` on planes of kinds ``available``.

    Raises :class:`ContractError` (saying what is needed and what is there) when an input
    kind is missing.
    """
    missing = [k for k in contract.inputs if not ACCEPTS[k] & available]
    if missing:
        have = ", ".join(sorted(k.value for k in available)) or "nothing"
        needs = " and ".join(_ARTICLE[k] for k in contract.inputs)
        raise ContractError(f"needs {needs} ({contract.value}) but the well only holds {have} planes here")
    if contract.output in (Kind.TABLE, Kind.ANY):
        return available
    return frozenset({contract.output})


# Contracts of built-ins whose modules do not declare one in their ``@register`` (keyed by
# module.qualname); everything else registered without a contract is ``image -> image``.
BUILTIN_CONTRACTS: dict[str, Contract] = {
    "openhcs.processing.segmentation.segment_nuclei": Contract.IMAGE_TO_LABELS,
    "openhcs.processing.measurement.measure_nuclei": Contract.IMAGE_TO_TABLE,
    "openhcs.processing.projection.project_z": Contract.ANY_TO_ANY,
    "openhcs.processing.stitching.stitch_sites": Contract.ANY_TO_ANY,
}
