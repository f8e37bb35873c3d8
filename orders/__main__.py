"""`python -m orders` (or `orders`): serve the orders API (port 3002 unless PORT or --port says
otherwise)."""

from __future__ import annotations

from servicekit import cli

ENVIRONMENT = f"""{cli.COMMON_ENVIRONMENT}
  JWT_PUBLIC_KEY_FILE    the security service's public key, to check tokens (or JWT_PUBLIC_KEY)
  ORDERS_REQUIRE_KNOWN_PARTIES, KNOWN_PARTIES_WAIT_SECONDS
                         accept orders only for organizations and customers seen on Kafka
                         (default true), and how long to wait for one just created (5)"""


main = cli.service_main("orders", "Serve the orders and invoices API.", ENVIRONMENT, 3002)

if __name__ == "__main__":
    main()
