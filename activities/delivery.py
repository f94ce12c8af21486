"""Vendor hand-off: signed work orders POSTed with httpx; approved artifacts delivered to the client.

CONTRACT (being implemented): signatures below are fixed; the workflow calls these by reference.
"""

from __future__ import annotations

from temporalio import activity

from dealflow.messages import ArtifactDeliveryInput, DeliveryResult, WorkOrderInput


class DeliveryActivities:
    @activity.defn
    async def dispatch_work_order(self, input: WorkOrderInput) -> DeliveryResult:
        raise NotImplementedError

    @activity.defn
    async def deliver_artifacts(self, input: ArtifactDeliveryInput) -> DeliveryResult:
        raise NotImplementedError
