"""Secure aggregation of small schools, after Bonawitz et al., CCS 2017 (the malicious-server variant).

The district learns the sum of the vectors of the members that reached the
masked-input round, if at least `threshold` did, and nothing about any one of
them. Spec and threat model: docs/secure-aggregation.md.
"""
from .client import MIN_COHORT, MIN_MEMBERS, Reply, SchoolClient, SentInput, check_definition, check_pool
from .messages import CohortDeclaration, Member, PoolDefinition, decode, encode
from .server import DistrictAggregator, PoolResult

__all__ = [
    "MIN_COHORT", "MIN_MEMBERS", "Reply", "SchoolClient", "SentInput", "check_definition", "check_pool", "CohortDeclaration", "Member", "PoolDefinition",
    "decode", "encode", "DistrictAggregator", "PoolResult",
]
