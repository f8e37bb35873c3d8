"""The orders service: orders and invoices with line items (port 3002)."""
