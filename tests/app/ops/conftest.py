"""Operations fixtures: the Twilio sandbox, a REST-bridge DMS fake, a dealer on them."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.config import Settings, load_dealer_config
from app.dealers.service import apply_dealer_config
from app.deps import Database
from app.ops.doctor_twilio import WebhookUrls
from integrations.dms.fakes.rest_fake import RestBridgeFake
from integrations.dms.fakes.server import FakeServer
from integrations.twilio.gateway import TwilioGateway
from integrations.twilio.numbers_gateway import TwilioPhoneNumbers
from integrations.twilio.sandbox import SandboxConfig, SandboxServer

ACCOUNT_SID = "AC" + "0123456789abcdef" * 2
AUTH_TOKEN = "ops-sandbox-auth-token"
PUBLIC_URL = "https://pitwall.bayview.example"
TOYOTA = "+14155550100"
TOYOTA_WHATSAPP = "+14155550101"
FORD = "+14155550200"
BRIDGE_TOKEN = "bridge-token-ops"

DEALER_TOML = """
[group]
name = "Bayview Auto Group"

[[rooftop]]
slug = "bayview-toyota"
name = "Bayview Toyota"
timezone = "America/Los_Angeles"
sms_from = "+14155550100"
whatsapp_from = "+14155550101"
{toyota_extra}

[rooftop.dms]
kind = "rest"
base_url = "{bridge_url}"
token = "{toyota_token}"

[[rooftop]]
slug = "bayview-ford"
name = "Bayview Ford"
timezone = "America/Los_Angeles"
sms_from = "+14155550200"

[rooftop.dms]
kind = "simulator"
seed = 2
"""


@pytest.fixture(scope="module")
def sandbox_server() -> Iterator[SandboxServer]:
    config = SandboxConfig(
        account_sid=ACCOUNT_SID,
        auth_token=AUTH_TOKEN,
        pitwall_public_url=PUBLIC_URL,
        callbacks=False,
        phone_numbers=(TOYOTA, TOYOTA_WHATSAPP, FORD),
    )
    with SandboxServer(config) as server:
        yield server


@pytest.fixture
def sandbox(sandbox_server: SandboxServer) -> SandboxServer:
    """The sandbox with its numbers as bought: no webhook URLs set."""
    sandbox_server.reset()
    return sandbox_server


@pytest.fixture(scope="module")
def bridge() -> Iterator[tuple[RestBridgeFake, str]]:
    fake = RestBridgeFake(token=BRIDGE_TOKEN)
    with FakeServer(fake.app) as server:
        yield fake, server.url


@dataclass
class OpsWorld:
    """Settings, database and ports of a deployment on the sandbox and the fakes."""

    settings: Settings
    database: Database
    sandbox: SandboxServer
    bridge_url: str
    tmp: Path

    def load_dealer(self, *, toyota_token: str = BRIDGE_TOKEN, toyota_extra: str = "") -> None:
        path = self.tmp / "dealer.toml"
        path.write_text(
            DEALER_TOML.format(
                bridge_url=self.bridge_url, toyota_token=toyota_token, toyota_extra=toyota_extra
            )
        )
        config = load_dealer_config(path)
        with self.database.transaction() as session:
            apply_dealer_config(session, config=config, source=str(path))

    def gateway(self, auth_token: str = AUTH_TOKEN) -> TwilioGateway:
        return TwilioGateway(ACCOUNT_SID, auth_token, api_url=self.sandbox.url, timeout=5)

    def numbers(self, auth_token: str = AUTH_TOKEN) -> TwilioPhoneNumbers:
        return TwilioPhoneNumbers(ACCOUNT_SID, auth_token, api_url=self.sandbox.url, timeout=5)

    def point_all_numbers_at_pitwall(self) -> None:
        urls = WebhookUrls.for_public_url(self.settings.public_url)
        for number in self.sandbox.state.list_numbers():
            self.sandbox.state.update_number(
                number.sid,
                {"sms_url": urls.sms, "voice_url": urls.voice, "status_callback": urls.status},
            )

    def env(self) -> dict[str, str]:
        return {
            "PITWALL_DATABASE_URL": self.settings.database_url,
            "PITWALL_PUBLIC_URL": self.settings.public_url,
            "PITWALL_SECRET_KEY": "ops-test-secret-key",
            "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
            "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "PITWALL_TWILIO_API_URL": self.sandbox.url,
        }


@pytest.fixture
def world(
    database_url: str,
    database: Database,
    sandbox: SandboxServer,
    bridge: tuple[RestBridgeFake, str],
    tmp_path: Path,
) -> OpsWorld:
    settings = Settings(
        PITWALL_DATABASE_URL=database_url,
        PITWALL_PUBLIC_URL=PUBLIC_URL,
        PITWALL_SECRET_KEY="ops-test-secret-key",
        TWILIO_ACCOUNT_SID=ACCOUNT_SID,
        TWILIO_AUTH_TOKEN=AUTH_TOKEN,
        PITWALL_TWILIO_API_URL=sandbox.url,
    )
    return OpsWorld(settings, database, sandbox, bridge[1], tmp_path)
