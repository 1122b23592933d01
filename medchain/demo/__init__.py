"""The story `medchain demo` tells (patients, doctors, grants, research, search,
anonymous contributions, attacks refused, staking, a restart) and the stages it is
told on: an in-process LocalChain, a devnet of node processes it starts, or nodes
already running. It narrates to the console the command passes in; only the CLI
imports it."""

from medchain.demo._devnet import DemoDevnet, running_devnet
from medchain.demo._local import LocalStage
from medchain.demo._narration import AuditTable, Story
from medchain.demo._network import NetworkStage
from medchain.demo._scenario import run_story
from medchain.demo._stage import Cast, Stage

__all__ = [
    "AuditTable",
    "Cast",
    "DemoDevnet",
    "LocalStage",
    "NetworkStage",
    "Stage",
    "Story",
    "run_story",
    "running_devnet",
]
