"""`python -m customers` (or `customers`): serve the customers API (port 3001 unless PORT or
--port says otherwise)."""

from __future__ import annotations

from servicekit import cli

ENVIRONMENT = f"""{cli.COMMON_ENVIRONMENT}
  JWT_PUBLIC_KEY_FILE    the security service's public key, to check tokens (or JWT_PUBLIC_KEY)"""


main = cli.service_main(
    "customers", "Serve the organizations, customers and invitations API.", ENVIRONMENT, 3001
)

if __name__ == "__main__":
    main()
