"""The customers service's fixtures come from tests/conftest.py (`customers_client`)."""
