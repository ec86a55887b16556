"""The selfhosted policy pack: `pulumi preview --policy-pack policy` checks every resource with its mandatory policies."""

from pulumi_policy import EnforcementLevel, PolicyPack

from rules import POLICIES

PolicyPack(name="selfhosted", policies=list(POLICIES), enforcement_level=EnforcementLevel.MANDATORY)
