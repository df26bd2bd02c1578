"""Kinds of service a broker may provide."""

from __future__ import annotations

from enum import StrEnum


class ServiceType(StrEnum):
    PORTFOLIO = "portfolio"
    TRANSACTION = "transaction"
    DEPOSIT = "deposit"
    DIVIDEND = "dividend"
    FEE = "fee"
    ACCOUNT = "account"
    AUTHENTICATION = "authentication"
    UPDATE = "update"


class BrokerName(StrEnum):
    """The brokers the core was hard-wired with. Plugins bring new names as plain strings."""

    DEGIRO = "degiro"
    BITVAVO = "bitvavo"
    IBKR = "ibkr"
    ALPACA = "alpaca"
