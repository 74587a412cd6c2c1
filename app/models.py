"""Every model, imported once so that metadata (and Alembic) sees the whole schema."""

from app.auth.models import ApiToken, User
from app.conversations.models import Approval, Call, InboundMessage, Task
from app.customer_page.models import (
    Booking,
    CustomerLink,
    LineAnswer,
    LineNote,
    LinePhoto,
    PageAnswer,
    PageVisit,
)
from app.customers.models import Consent, Customer, CustomerPhone, CustomerRef, Phone
from app.db import Base
from app.dealers.models import DealerGroup, Rooftop
from app.followups.models import FollowupLine, FollowupPlan, FollowupTouch, Recovery
from app.messaging.models import OutboundMessage
from app.ops.models import Alert, Lease
from app.repair_orders.models import (
    DmsPollState,
    QuarantinedRecord,
    RepairOrder,
    RoEvent,
    RoLine,
    UnmappedStatus,
    Vehicle,
)

__all__ = [
    "Alert",
    "ApiToken",
    "Approval",
    "Base",
    "Booking",
    "Call",
    "Consent",
    "Customer",
    "CustomerLink",
    "CustomerPhone",
    "CustomerRef",
    "DealerGroup",
    "DmsPollState",
    "FollowupLine",
    "FollowupPlan",
    "FollowupTouch",
    "InboundMessage",
    "Lease",
    "LineAnswer",
    "LineNote",
    "LinePhoto",
    "OutboundMessage",
    "PageAnswer",
    "PageVisit",
    "Phone",
    "QuarantinedRecord",
    "Recovery",
    "RepairOrder",
    "RoEvent",
    "RoLine",
    "Rooftop",
    "Task",
    "UnmappedStatus",
    "User",
    "Vehicle",
]
