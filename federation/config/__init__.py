"""Configuration: partners.yaml and its YAML source, parsed once into frozen values.

``yamlsrc`` reads YAML keeping each value's line; ``reader`` validates it collecting every problem;
``model`` holds the values; ``loader`` builds them from partners.yaml, with ``policies`` (timeouts, retry,
breaker, rate limit), ``services`` (service items, inbound sections) and ``values`` (names, regions,
digests) reading the parts. Imports only the domain.
"""

from __future__ import annotations

from federation.config.loader import load_config
from federation.config.model import (
    CONFIG_FILE,
    ID_RE,
    LOCAL,
    REGION_RE,
    SERVICE_RE,
    SHA256_RE,
    BreakerPolicy,
    BrokerSettings,
    Config,
    Inbound,
    Names,
    Partner,
    ProtocolKeys,
    RateLimitPolicy,
    Region,
    Service,
    Source,
    Timeouts,
)
from federation.domain.retry import RetryPolicy

__all__ = [
    "CONFIG_FILE",
    "ID_RE",
    "LOCAL",
    "REGION_RE",
    "SERVICE_RE",
    "SHA256_RE",
    "BreakerPolicy",
    "BrokerSettings",
    "Config",
    "Inbound",
    "Names",
    "Partner",
    "ProtocolKeys",
    "RateLimitPolicy",
    "Region",
    "RetryPolicy",
    "Service",
    "Source",
    "Timeouts",
    "load_config",
]
