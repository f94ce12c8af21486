"""The deal workflow, in rooms: `workflow.DealWorkflow` and the phases it walks."""

from workflows.deal.workflow import DealWorkflow

__all__ = ["DealWorkflow"]
